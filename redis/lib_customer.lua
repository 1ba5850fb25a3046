-- The customer helpers: the ETag, If-Match / If-None-Match, the customer
-- as field/value pairs and the customer fields.  The gateway puts this file
-- behind lib.lua in front of the scripts that read or write customers
-- (upsert.lua, delete.lua, list.lua and job_chunk.lua, the last two behind
-- lib_scan.lua too) only (ngx_http_supportdesk_script.c): Redis runs what is in
-- front of a script again on every call, and these cost one about 7,500
-- redis-server instructions.  Nothing here runs by itself: it only adds to
-- the table sd (lib.lua presizes it for these names too).

-- A customer's ETag: its creation sequence and its version
function sd.etag(s, v)
    return s .. '-' .. (v or '0')
end

-- If-Match / If-None-Match, evaluated here, on the record as it is now:
-- if_match is "" (none), "*" or ETags separated by spaces; if_none "*" or "".
function sd.precondition(exists, etag, if_match, if_none)
    if if_none == '*' and exists then
        return false
    end

    if if_match == '' then
        return true
    end

    if not exists then
        return false
    end

    if if_match == '*' then
        return true
    end

    for tag in string.gmatch(if_match, '%S+') do
        if tag == etag then
            return true
        end
    end

    return false
end

-- the event of a customer as it is after the change: h is its hash as
-- field/value pairs (what HGETALL would answer)
function sd.customer_event(w, kind, xid, h, changed)
    return sd.emit(w, kind, xid, h, changed and table.concat(changed, ','))
end

-- field/value pairs of the fields of t that are set, in the order of names,
-- as HGETALL answers them: the values must be strings already (a Lua
-- number would reach the module as an integer reply)
function sd.pairs(t, names)
    -- presized for the nine customer fields (as lib.lua's sd); the
    -- slots not used are cleared, so the array ends where the pairs do
    local h = {false, false, false, false, false, false, false, false, false,
               false, false, false, false, false, false, false, false, false}
    local n = 0
    for i = 1, #names do
        local f = names[i]
        local v = t[f]
        if v then
            h[n + 1] = f
            h[n + 2] = v
            n = n + 2
        end
    end
    for i = n + 1, #h do
        h[i] = nil
    end
    return h
end

sd.customer_fields = {'s', 'e', 'n', 'p', 'a', 'm', 'c', 'u', 'v'}

-- The API names of the customer fields, for "changed"
sd.field_names = {e = 'email', n = 'name', p = 'phone', a = 'avatarUrl',
                  m = 'metadata'}

-- the fields a write may send, in the order "changed" lists them
sd.writable_fields = {'e', 'n', 'p', 'a', 'm'}

-- The email index: lowercase email -> externalId, in buckets small enough
-- to stay listpacks (an entry in one large hash costs about 98 bytes, in a
-- listpack about 40).  The buckets grow by linear hashing: with nb
-- buckets and p the largest power of two <= nb, an email whose hash h has
-- h mod p below nb - p (its bucket split already) lives in bucket h mod 2p,
-- the others in h mod p; each create past 40 entries a bucket splits the
-- next one, so a split moves at most one bucket's entries (about 80) and
-- the buckets that have not split hold at most twice the mean.
--   <prefix>:<b>  hash, bucket b (h: the first 32 bits of the SHA-1 of the
--                 lowercase email)
--   <prefix>:n    nb, negative while the one large hash <prefix> that
--                 gateways before the buckets wrote still has entries
--   <prefix>      that hash: read as a fallback, emptied 8 entries a
--                 create, deleted by Redis once empty
-- redis/sd-check and t/lib/SupportDesk/Invariants.pm compute the same
-- buckets.
sd.email_per_bucket = 40

-- The index's functions are made on the first sd.emails() of a call:
-- Redis runs a script's parts again on every call, and an update that
-- keeps its email never looks at the index (made on every call, they
-- cost upsert-update 1.4% more of Redis's instructions).
local function email_functions()
    function sd.email_bucket(ix, lower)
        -- a write looks an email up, then sets it: its hash is taken once
        if ix.lower == lower and ix.at == ix.nb then
            return ix.bucket
        end
        local h = tonumber(string.sub(redis.sha1hex(lower), 1, 8), 16)
        local nb, p = ix.nb, 1
        while p * 2 <= nb do
            p = p * 2
        end
        local b = h % p
        if b < nb - p then
            b = h % (p * 2)
        end
        ix.lower, ix.at = lower, nb
        ix.bucket = ix.prefix .. ':' .. string.format('%d', b)
        return ix.bucket
    end

    -- the externalId that holds lower, or false
    function sd.email_owner(ix, lower)
        local owner = redis.call('HGET', sd.email_bucket(ix, lower), lower)
        if not owner and ix.legacy then
            owner = redis.call('HGET', ix.prefix, lower)
        end
        return owner
    end

    local function email_store_nb(ix)
        redis.call('SET', ix.prefix .. ':n',
                   string.format('%d', ix.legacy and -ix.nb or ix.nb))
        ix.stored = true
    end

    function sd.email_set(ix, lower, xid)
        redis.call('HSET', sd.email_bucket(ix, lower), lower, xid)
        if not ix.legacy then
            if not ix.stored then
                email_store_nb(ix)
            end
            return
        end
        -- the old hash: this entry leaves it, and 8 others move to buckets
        redis.call('HDEL', ix.prefix, lower)
        local old = redis.call('HRANDFIELD', ix.prefix, 8, 'WITHVALUES')
        local fields = {}
        for i = 1, #old, 2 do
            redis.call('HSET', sd.email_bucket(ix, old[i]), old[i], old[i + 1])
            fields[#fields + 1] = old[i]
        end
        if #fields > 0 then
            redis.call('HDEL', ix.prefix, unpack(fields))
        end
        if #fields < 8 then
            ix.legacy = false
        end
        email_store_nb(ix)
    end

    -- lower's entry goes, only if it is xid's
    function sd.email_del(ix, lower, xid)
        local bucket = sd.email_bucket(ix, lower)
        if redis.call('HGET', bucket, lower) == xid then
            redis.call('HDEL', bucket, lower)
        elseif ix.legacy and redis.call('HGET', ix.prefix, lower) == xid then
            redis.call('HDEL', ix.prefix, lower)
        end
    end

    -- after a create: count customers now; one split when the buckets hold
    -- more than email_per_bucket on average
    function sd.email_grow(ix, count)
        local nb = ix.nb
        if count <= sd.email_per_bucket * nb then
            return
        end
        local p = 1
        while p * 2 <= nb do
            p = p * 2
        end
        local from = nb - p
        local src = ix.prefix .. ':' .. string.format('%d', from)
        local dst = ix.prefix .. ':' .. string.format('%d', from + p)
        local all = redis.call('HGETALL', src)
        local moved, gone = {}, {}
        for i = 1, #all, 2 do
            local h = tonumber(string.sub(redis.sha1hex(all[i]), 1, 8), 16)
            if h % (p * 2) ~= from then
                moved[#moved + 1] = all[i]
                moved[#moved + 1] = all[i + 1]
                gone[#gone + 1] = all[i]
            end
        end
        if #gone > 0 then
            redis.call('HSET', dst, unpack(moved))
            redis.call('HDEL', src, unpack(gone))
        end
        ix.nb = nb + 1
        email_store_nb(ix)
    end
end

-- the index of an app as it is now: prefix KEYS' sd:{app}:emails
function sd.emails(prefix)
    if not sd.email_owner then
        email_functions()
    end
    local n = tonumber(redis.call('GET', prefix .. ':n'))
    local ix = {prefix = prefix, nb = 1, legacy = false, stored = n ~= nil,
                lower = false, at = false, bucket = false}
    if n then
        ix.nb, ix.legacy = math.abs(n), n < 0
    else
        ix.legacy = redis.call('EXISTS', prefix) == 1
    end
    return ix
end

