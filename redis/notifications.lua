-- Read, and optionally change, a customer's notification settings; a
-- change comes with its event and its idempotency record.
--
-- KEYS[1..3], ARGV[1..5]: the change feed and idempotency (lib.lua)
-- KEYS[4] sd:{app}:c:<externalId>, KEYS[5] sd:{app}:notif:<externalId>
-- ARGV[6] externalId, ARGV[7..] setting/value pairs to store ("0" or
-- "1"), none to only read.
--
-- Returns HGETALL of the settings (unset ones default to on, in the
-- gateway), or SD_NO_CUSTOMER.

local w = sd.writer()

local replay = sd.replay(w)
if replay then
    return replay
end

if redis.call('EXISTS', KEYS[4]) == 0 then
    return redis.error_reply('SD_NO_CUSTOMER externalId')
end

local changed = false
for i = 7, #ARGV, 2 do
    local was = redis.call('HGET', KEYS[5], ARGV[i]) or '1'
    if was ~= ARGV[i + 1] then
        changed = true
    end
end

-- one HGETALL serves the event, the record and the answer
if changed then
    redis.call('HSET', KEYS[5], unpack(ARGV, 7))
end

local settings = redis.call('HGETALL', KEYS[5])

if changed then
    sd.emit(w, 'notifications.updated', ARGV[6], settings)
end

if #ARGV < 7 then
    return settings
end

return sd.record(w, settings)
