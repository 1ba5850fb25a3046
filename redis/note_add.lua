-- Add a note to a customer.
--
-- KEYS[1] sd:{app}:c:<externalId>, KEYS[2] sd:{app}:notes:<externalId>,
-- KEYS[3] sd:{app}:notez:<externalId>, KEYS[4] sd:{app}:noteseq
-- ARGV[1] now (unix seconds), ARGV[2] text (stored as sent)
--
-- Returns the note number (unique within the app) or SD_NO_CUSTOMER.

if redis.call('EXISTS', KEYS[1]) == 0 then
    return redis.error_reply('SD_NO_CUSTOMER externalId')
end

local n = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[2], n, ARGV[1] .. ':' .. ARGV[2])
redis.call('ZADD', KEYS[3], n, n)
return n
