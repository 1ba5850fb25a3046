#!lua flags=no-writes
-- A customer's notification settings, only read: what GET
-- /customers/{externalId}/notifications runs (a change is
-- notifications.lua's).  Flagged no-writes, so that Redis runs it while it
-- pauses writes (CLIENT PAUSE WRITE), and the requests pipelined behind it
-- do not wait either.
--
-- KEYS[1] sd:{app}:c:<externalId>, KEYS[2] sd:{app}:notif:<externalId>
--
-- Returns HGETALL of the settings (unset ones default to on, in the
-- gateway), or SD_NO_CUSTOMER.

if redis.call('EXISTS', KEYS[1]) == 0 then
    return redis.error_reply('SD_NO_CUSTOMER externalId')
end

return redis.call('HGETALL', KEYS[2])
