-- Shared by every script: the gateway puts this file in front of each of
-- the others before it loads them (EVAL scripts cannot call each other), so
-- the change feed, idempotency records and conditional requests are written
-- once.  Nothing here runs by itself: it only defines the table sd.
--
-- Every write script opens with the same keys and arguments:
--   KEYS[1] sd:{app}:events     the change feed (a stream)
--   KEYS[2] sd:{app}:eventseq   the feed's counter: n (events ever added),
--                               ms (the newest event's time)
--   KEYS[3] sd:{app}:idem:<Idempotency-Key>, or sd:{app}:idem: when none
--   ARGV[1] now (unix seconds)
--   ARGV[2] the request's fingerprint ("" without an Idempotency-Key)
--   ARGV[3] how long an idempotency record lives (seconds)
--   ARGV[4] the feed's length bound, ARGV[5] its age bound (seconds)
-- Its own keys start at KEYS[4], its own arguments at ARGV[6].

local sd = {}

sd.KEYS, sd.ARGV = 4, 6

function sd.writer()
    return {
        events = KEYS[1], eventseq = KEYS[2], idem = KEYS[3],
        now = ARGV[1], fp = ARGV[2], ttl = tonumber(ARGV[3]),
        max = tonumber(ARGV[4]), age = tonumber(ARGV[5])
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
-- events after it were trimmed away.  Old events go as new ones come:
-- beyond the length bound, or older than the age bound.
function sd.emit(w, fields)
    local t = redis.call('TIME')
    local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local last = tonumber(redis.call('HGET', w.eventseq, 'ms') or '0')
    local n = redis.call('HINCRBY', w.eventseq, 'n', 1)

    -- a clock that went back must not break the order of the ids
    if ms < last then
        ms = last
    end

    local id = string.format('%.0f-%d', ms, n)
    local ok = redis.pcall('XADD', w.events, 'MAXLEN', '~', w.max, id,
                           unpack(fields))

    if type(ok) == 'table' and ok.err then
        -- the counter was lost (a partial restore): go on after the feed
        local info = redis.call('XINFO', 'STREAM', w.events)
        for i = 1, #info, 2 do
            if info[i] == 'last-generated-id' then
                local lms, ln = id_parts(info[i + 1])
                n = ln + 1
                if ms < lms then ms = lms end
            end
        end
        redis.call('HSET', w.eventseq, 'n', n)
        id = string.format('%.0f-%d', ms, n)
        redis.call('XADD', w.events, 'MAXLEN', '~', w.max, id,
                   unpack(fields))
    end

    redis.call('HSET', w.eventseq, 'ms', string.format('%.0f', ms))

    if ms > w.age * 1000 then
        redis.call('XTRIM', w.events, 'MINID', '~',
                   string.format('%.0f-0', ms - w.age * 1000))
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

-- the event fields of a customer hash as it is now (HGETALL), after t, x
function sd.customer_event(w, kind, xid, key, changed)
    local fields = {'t', kind, 'x', xid}
    if changed then
        fields[#fields + 1] = 'ch'
        fields[#fields + 1] = table.concat(changed, ',')
    end
    local h = redis.call('HGETALL', key)
    for i = 1, #h do
        fields[#fields + 1] = h[i]
    end
    return sd.emit(w, fields)
end

-- The API names of the customer fields, for "changed"
sd.field_names = {e = 'email', n = 'name', p = 'phone', a = 'avatarUrl',
                  m = 'metadata'}

-- EVAL scripts cannot share code otherwise: the filters of list.lua and
-- job_chunk.lua.  A metadata value as its filter text: strings as they are,
-- numbers and booleans by their JSON text.
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

