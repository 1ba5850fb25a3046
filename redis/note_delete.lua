-- Delete one note of a customer, with its event and its idempotency
-- record.
--
-- KEYS[1..3], ARGV[1..5]: the change feed and idempotency (lib.lua)
-- KEYS[4] sd:{app}:c:<externalId>, KEYS[5] sd:{app}:notes:<externalId>,
-- KEYS[6] sd:{app}:notez:<externalId>
-- ARGV[6] externalId, ARGV[7] note number
--
-- Returns 1, or SD_NO_CUSTOMER / SD_NO_NOTE.

local w = sd.writer()

local replay = sd.replay(w)
if replay then
    return replay
end

if redis.call('EXISTS', KEYS[4]) == 0 then
    return redis.error_reply('SD_NO_CUSTOMER externalId')
end

if redis.call('ZREM', KEYS[6], ARGV[7]) == 0 then
    return redis.error_reply('SD_NO_NOTE noteId')
end

redis.call('HDEL', KEYS[5], ARGV[7])

sd.emit(w, 'note.deleted', ARGV[6], {'note', ARGV[7]})

return sd.record(w, 1)
