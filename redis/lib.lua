-- Shared by the scripts: the gateway puts this file in front of each of
-- the others that uses it before it loads them (EVAL scripts cannot call
-- each other; ngx_http_supportdesk_script.c lists which), so
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

-- Every name defined below and in lib_customer.lua is listed here: Lua
-- grows a table by rehashing it at each power of two, and this file runs
-- again on every call of every script (5 rehashes, measured 2,900
-- redis-server instructions a call).
local sd = {
    KEYS = false, ARGV = false, count_events = false, writer = false,
    replay = false, record = false, answer = false, id_parts = false,
    emit = false, etag = false, precondition = false, customer_event = false,
    pairs = false, customer_fields = false, field_names = false,
    writable_fields = false, emails = false, email_bucket = false,
    email_owner = false, email_set = false, email_del = false,
    email_grow = false, email_per_bucket = false
}

sd.KEYS, sd.ARGV = 4, 6

-- the gateway counts the events its writes append (supportdesk_metrics):
-- it then puts "sd.count_events = true" between this file and the script
sd.count_events = false

function sd.writer()
    local max = tonumber(ARGV[4])

    return {
        events = KEYS[1], eventseq = KEYS[2], idem = KEYS[3],
        now = ARGV[1], fp = ARGV[2], ttl = tonumber(ARGV[3]),
        max = max, age = tonumber(ARGV[5]),
        -- the feed may grow past its bounds by this many events (an eighth
        -- of the length bound, at most 64) before it is trimmed back
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
-- change's own atomic step; returns the answer (sd.answer).  packed: the
-- answer goes out as the record's own string, cmsgpack.pack(reply), which
-- the gateway reads in place (a customer's 18 values are otherwise 20
-- reply objects for it to build); the record is the same either way.
function sd.record(w, reply, packed)
    local text = packed and cmsgpack.pack(reply)
    if w.fp ~= '' then
        redis.call('HSET', w.idem, 'f', w.fp, 'r',
                   text or cmsgpack.pack(reply))
        redis.call('HDEL', w.idem, 'busy')
        redis.call('EXPIRE', w.idem, w.ttl)
    end
    return sd.answer(w, text or reply)
end

-- The answer of a script that appended events is wrapped with their count,
-- for the gateway's metrics (it unwraps it), only when it counts them: the
-- wrap costs the gateway the parsing of three more reply objects.  A
-- record keeps the answer bare.
function sd.answer(w, reply)
    if sd.count_events and w.emitted then
        return {redis.status_reply('SD_EVENTS'), w.emitted, reply}
    end
    return reply
end

local function id_parts(id)
    local ms, n = string.match(id, '^(%d+)%-(%d+)$')
    return tonumber(ms), tonumber(n)
end

sd.id_parts = id_parts

local function xadd(call, w, id, kind, xid, rest, ch)
    if ch then
        return call('XADD', w.events, id, 't', kind, 'x', xid, 'ch', ch,
                    unpack(rest))
    end
    return call('XADD', w.events, id, 't', kind, 'x', xid, unpack(rest))
end

-- Appends one event of type kind about externalId xid: its fields are "t"
-- (type), "x" (externalId), "ch" (changed, when given), then the pairs of
-- rest, passed to XADD as they are (no copy).  Its id is <ms>-<n>: the
-- time it was added and its number in the app's feed (1, 2, 3...), so a
-- cursor tells exactly whether events after it were trimmed away.  Old
-- events go as new ones come, every w.every-th event (sd.writer): those
-- older than the age bound, then those beyond the length bound.  A trim on
-- every XADD cost an upsert's script 5% more, even when it found nothing.
function sd.emit(w, kind, xid, rest, ch)
    local t = redis.call('TIME')
    local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local n = redis.call('HINCRBY', w.eventseq, 'n', 1)
    -- integer formats: a %f of a 13-digit time costs glibc's
    -- multi-precision float printing
    local id = string.format('%d-%d', ms, n)

    local ok = xadd(redis.pcall, w, id, kind, xid, rest, ch)

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
        id = string.format('%d-%d', ms, n)
        xadd(redis.call, w, id, kind, xid, rest, ch)
    end

    w.emitted = (w.emitted or 0) + 1

    if n % w.every == 0 then
        redis.call('XTRIM', w.events, 'MINID', '~',
                   string.format('%d-0', math.max(0, ms - w.age * 1000)))
        redis.call('XTRIM', w.events, 'MAXLEN', '~', w.max)
    end

    return id
end
