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
