-- Claim a pending bulk-update job for one worker.
--
-- KEYS[1] sd:jobs
-- ARGV[1] now (ms), ARGV[2] lease (ms), ARGV[3] the worker's token
--
-- A job is free when queued, or running under a lease that has run out
-- (its worker died or was reloaded away).  Returns "<app>/<n>" or nil.
-- Note: touches job keys of many apps, so it needs a single Redis (or the
-- sd:jobs queue split per slot once the pool speaks Cluster).

local now, lease, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]

for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, 15)) do
    local app, n = string.match(m, '^(.*)/(%d+)$')
    local job = app and ('sd:{' .. app .. '}:job:' .. n)
    local st = job and redis.call('HMGET', job, 'status', 'lease_until')

    if not st or not st[1] or st[1] == 'done' or st[1] == 'failed' then
        redis.call('ZREM', KEYS[1], m)
    elseif (tonumber(st[2]) or 0) < now then
        redis.call('HSET', job, 'status', 'running', 'lease', token,
                   'lease_until', now + lease)
        return m
    end
end

return false
