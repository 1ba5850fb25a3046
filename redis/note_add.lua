-- Add a note to a customer, with its event and its idempotency record.
--
-- KEYS[1..3], ARGV[1..5]: the change feed and idempotency (lib.lua)
-- KEYS[4] sd:{app}:c:<externalId>, KEYS[5] sd:{app}:notes:<externalId>,
-- KEYS[6] sd:{app}:notez:<externalId>, KEYS[7] sd:{app}:noteseq
-- ARGV[6] externalId, ARGV[7] text (stored as sent)
--
-- Returns {the note number (unique within the app), createdAt} or
-- SD_NO_CUSTOMER.

local w = sd.writer()

local replay = sd.replay(w)
if replay then
    return replay
end

if redis.call('EXISTS', KEYS[4]) == 0 then
    return redis.error_reply('SD_NO_CUSTOMER externalId')
end

local n = redis.call('INCR', KEYS[7])
redis.call('HSET', KEYS[5], n, w.now .. ':' .. ARGV[7])
redis.call('ZADD', KEYS[6], n, n)

sd.emit(w, 'note.created', ARGV[6], {'note', n, 'c', w.now, 'text', ARGV[7]})

return sd.record(w, {n, w.now})
