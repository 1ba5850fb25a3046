-- Read, and optionally change, a customer's notification settings.
--
-- KEYS[1] sd:{app}:c:<externalId>, KEYS[2] sd:{app}:notif:<externalId>
-- ARGV: setting/value pairs to store ("0" or "1"), none to only read.
--
-- Returns HGETALL of the settings (unset ones default to on, in the
-- gateway), or SD_NO_CUSTOMER.

if redis.call('EXISTS', KEYS[1]) == 0 then
    return redis.error_reply('SD_NO_CUSTOMER externalId')
end

if #ARGV > 0 then
    redis.call('HSET', KEYS[2], unpack(ARGV))
end

return redis.call('HGETALL', KEYS[2])
