-- Delete one note of a customer.
--
-- KEYS[1] sd:{app}:c:<externalId>, KEYS[2] sd:{app}:notes:<externalId>,
-- KEYS[3] sd:{app}:notez:<externalId>
-- ARGV[1] note number
--
-- Returns 1, or SD_NO_CUSTOMER / SD_NO_NOTE.

if redis.call('EXISTS', KEYS[1]) == 0 then
    return redis.error_reply('SD_NO_CUSTOMER externalId')
end

if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then
    return redis.error_reply('SD_NO_NOTE noteId')
end

redis.call('HDEL', KEYS[2], ARGV[1])
return 1
