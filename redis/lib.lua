-- Shared by every script: the gateway puts this file in front of each of
-- the others before it loads them (EVAL scripts cannot call each other), so
-- the change feed, idempotency records and conditional requests are written
-- once.  Nothing here runs by itself: it only defines the table sd.
--
-- Every write script opens with the same keys and arguments:
--   KEYS[1] sd:{app}:events     the change feed (a stream)
--   KEYS[2] sd:{app}:eventseq   the feed's counter: n, events ever added
--   KEYS[3] sd:{app}:idem:<Idempotency-Key>, or sd:{app}:idem: when none
--   ARGV[1] now (unix seconds)
--   ARGV[2] the request's fingerprint ("" without an Idempotency-Key)
--   ARGV[3] how long an idempotency record lives (seconds)
--   ARGV[4] the feed's length bound, ARGV[5] its age bound (seconds)
-- Its own keys start at KEYS[4], its own arguments at ARGV[6].

local sd = {}

sd.KEYS, sd.ARGV = 4, 6

function sd.writer()
    local max = tonumber(ARGV[4])

    return {
        events = KEYS[1], eventseq = KEYS[2], idem = KEYS[3],
        now = ARGV[1], fp = ARGV[2], ttl = tonumber(ARGV[3]),
        max = max, age = tonumber(ARGV[5]),
        -- the feed may grow past its length bound by this many events (an
        -- eighth of it, at most 64) before it is trimmed back
        every = math.max(1, math.min(64, math.floor(max / 8)))
    }
end

-- The recorded answer of an earlier request with this Idempotency-Key,
-- wrapped so the gateway knows it is a replay; nil when there is none.
-- Another request under the same key is refused.
function sd.replay(w)
    if w.fp == '' then
        return nil
    end

    local rec = redis.call('HMGET', w.idem, 'f', 'r', 'busy')
    if not rec[1] then
        return nil
    end

    if rec[1] ~= w.fp then
        return redis.error_reply('SD_IDEMPOTENCY_KEY_REUSED Idempotency-Key')
    end

    if rec[3] then
        return redis.error_reply('SD_IDEMPOTENCY_KEY_IN_USE Idempotency-Key')
    end

    return {redis.status_reply('SD_REPLAY'), cmsgpack.unpack(rec[2])}
end

-- Records the answer of a change made under an Idempotency-Key, in the
-- change's own atomic step; returns the answer.
function sd.record(w, reply)
    if w.fp ~= '' then
        redis.call('HSET', w.idem, 'f', w.fp, 'r', cmsgpack.pack(reply))
        redis.call('HDEL', w.idem, 'busy')
        redis.call('EXPIRE', w.idem, w.ttl)
    end
    return reply
end

local function id_parts(id)
    local ms, n = string.match(id, '^(%d+)%-(%d+)$')
    return tonumber(ms), tonumber(n)
end

sd.id_parts = id_parts

-- Appends one event: fields are field/value pairs, "t" (type) and "x"
-- (externalId) first.  Its id is <ms>-<n>: the time it was added and its
-- number in the app's feed (1, 2, 3...), so a cursor tells exactly whether
-- events after it were trimmed away.  Old events go as new ones come: the
-- XADD itself drops those older than the age bound; the length bound is
-- applied every w.every-th event, as a trim that finds nothing still costs
-- a call (sd.writer).
function sd.emit(w, fields)
    local t = redis.call('TIME')
    local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local n = redis.call('HINCRBY', w.eventseq, 'n', 1)
    local id = string.format('%.0f-%d', ms, n)
    local cutoff = string.format('%.0f-0', math.max(0, ms - w.age * 1000))

    local ok = redis.pcall('XADD', w.events, 'MINID', '~', cutoff, id,
                           unpack(fields))

    if type(ok) == 'table' and ok.err then
        -- the clock went back, or the counter was lost (a partial
        -- restore): go on right after the feed's newest id
        local info = redis.call('XINFO', 'STREAM', w.events)
        for i = 1, #info, 2 do
            if info[i] == 'last-generated-id' then
                local lms, ln = id_parts(info[i + 1])
                if n <= ln then
                    n = ln + 1
                    redis.call('HSET', w.eventseq, 'n', n)
                end
                if ms < lms then ms = lms end
            end
        end
        id = string.format('%.0f-%d', ms, n)
        redis.call('XADD', w.events, 'MINID', '~', cutoff, id,
                   unpack(fields))
    end

    if n % w.every == 0 then
        redis.call('XTRIM', w.events, 'MAXLEN', '~', w.max)
    end

    return id
end

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
    local fields = {'t', kind, 'x', xid}
    if changed then
        fields[#fields + 1] = 'ch'
        fields[#fields + 1] = table.concat(changed, ',')
    end
    for i = 1, #h do
        fields[#fields + 1] = h[i]
    end
    return sd.emit(w, fields)
end

-- field/value pairs of the fields of t that are set, in the order of names;
-- values as strings, as HGETALL answers them (a Lua number would reach the
-- module as an integer reply)
function sd.pairs(t, names)
    local h = {}
    for _, f in ipairs(names) do
        if t[f] then
            h[#h + 1] = f
            h[#h + 1] = tostring(t[f])
        end
    end
    return h
end

sd.customer_fields = {'s', 'e', 'n', 'p', 'a', 'm', 'c', 'u', 'v'}

-- The API names of the customer fields, for "changed"
sd.field_names = {e = 'email', n = 'name', p = 'phone', a = 'avatarUrl',
                  m = 'metadata'}

-- A metadata value as its filter text: strings as they are, numbers and
-- booleans by their JSON text.
function sd.scalar_text(v)
    local t = type(v)
    if t == 'string' then return v end
    if t == 'boolean' then return v and 'true' or 'false' end
    if t == 'number' then
        if v == math.floor(v) and math.abs(v) < 1e15 then
            return string.format('%d', v)
        end
        return tostring(v)
    end
    return nil
end

-- The cost budget.  A script that examines records the caller does not
-- bound by itself (a listing page, a page of notes or of the feed, a job's
-- chunk) counts what it spends and stops once it reaches sd.budget, handing
-- back a cursor to go on from: its Redis time is bounded by the bytes it
-- touches, not only by the number of records.  The units are bytes: every
-- byte read, written or returned counts 1, every byte lowercased or decoded
-- as JSON sd.work more on top, every command the script runs sd.call (its
-- fixed cost is about that of reading 2 KiB), every element of a reply
-- sd.element.  Measured on the 2-core
-- machine of README's Reliability section, a unit costs about 2 ns, so
-- the budget is about a millisecond of Redis time; a script goes past it by
-- at most one record (at most about 330,000 units: a 64 KiB note read and
-- lowercased, or a customer's 16 KiB of metadata read, decoded, written and
-- emitted).
sd.budget, sd.call, sd.work, sd.element = 524288, 2048, 4, 128

-- what a reply costs: its bytes, a string or an array of strings and nils
-- (false), and sd.element for each element (made into a Lua value and
-- back: 254 short strings cost about as much as 32 KiB)
function sd.size(r)
    if type(r) == 'string' then
        return #r
    end

    local n = 0
    if type(r) == 'table' then
        n = sd.element * #r
        for i = 1, #r do
            if type(r[i]) == 'string' then n = n + #r[i] end
        end
    end
    return n
end

-- The customer filters of list.lua and job_chunk.lua (EVAL scripts cannot
-- share code otherwise).  f: email and name (lowercase substrings) or nil,
-- meta: {{key, value text}, ...} or nil; h: the fields read (e, n, m).
-- Returns whether it matches and the work done (units): at most
-- sd.work + 1 per metadata filter per byte of those fields.
--
-- Metadata is decoded only to filter on it, and only when its text can
-- hold every pair: a top-level key appears in the JSON as "key", a string
-- value as "value", written as they are by every JSON encoder when they
-- are made of letters, digits, '_', '-', '.', '@' and spaces.  The search
-- is for key" and value" (a quote is the commonest byte of JSON text, a
-- poor first byte to look for); it costs a unit a byte, decoding sd.work
-- more.  Values that a number or a boolean could match are not searched.
local plain = '^[%w_%-%.@ ]+$'
local not_plain = {['true'] = 1, ['false'] = 1, inf = 1, nan = 1}

local function may_hold(m, k, v)
    if string.match(k, plain)
       and not string.find(m, k .. '"', 1, true)
    then
        return false
    end
    if string.match(v, plain) and not string.match(v, '^[%-%d]')
       and not not_plain[v] and not string.find(m, v .. '"', 1, true)
    then
        return false
    end
    return true
end

function sd.matches(f, h)
    local work = 0

    if f.email then
        if not h.e then return false, work end
        work = work + sd.work * #h.e
        if not string.find(string.lower(h.e), f.email, 1, true) then
            return false, work
        end
    end

    if f.name then
        if not h.n then return false, work end
        work = work + sd.work * #h.n
        if not string.find(string.lower(h.n), f.name, 1, true) then
            return false, work
        end
    end

    if f.meta then
        local m = h.m
        if not m then return false, work end
        for _, kv in ipairs(f.meta) do
            work = work + #m
            if not may_hold(m, kv[1], kv[2]) then return false, work end
        end
        work = work + sd.work * #m
        local ok, md = pcall(cjson.decode, m)
        if not ok or type(md) ~= 'table' then return false, work end
        for _, kv in ipairs(f.meta) do
            if sd.scalar_text(md[kv[1]]) ~= kv[2] then return false, work end
        end
    end

    return true, work
end

-- the most sd.matches(f, ...) can cost on the fields r it read
function sd.filter_work(f, r)
    return (sd.work + #(f.meta or {})) * sd.size(r)
end

-- the customer fields a filter reads, and the others
function sd.filter_fields(f)
    local need, rest = {}, {}
    for _, name in ipairs(sd.customer_fields) do
        if (name == 'e' and f.email) or (name == 'n' and f.name)
           or (name == 'm' and f.meta)
        then
            need[#need + 1] = name
        else
            rest[#rest + 1] = name
        end
    end
    return need, rest
end
