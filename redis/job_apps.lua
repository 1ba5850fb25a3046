-- The registry of apps with bulk-update jobs: where job runners look for
-- work.  sd:jobapps, a sorted set: app -> its stamp, a Redis time (ms),
-- that only ever grows for an app.  The stamp orders the apps (the one
-- served least recently first: a runner that claims one of its jobs gives
-- it a new stamp, which puts it behind every other app) and names the
-- registration: a runner drops an app only under the stamp it saw.
--
-- Not an app's key: on a cluster it has a slot of its own, so this script
-- touches it alone, and the app's side (its queue, sd:{app}:jobq) is
-- changed by other scripts, in its own slot.  The order that keeps a job
-- from being lost between the two:
--   * a gateway registers the app here first, then queues the job
--     (job_create.lua, given the stamp): a gateway that dies in between
--     leaves at most an app here with nothing queued;
--   * a runner that finds an app's queue empty, with its stamp older than
--     a grace period, writes that stamp as the app's "gone" mark
--     (sd:{app}:jobgone, job_claim.lua), then drops the app here if its
--     stamp is still that one;
--   * job_create.lua refuses to queue under a stamp at or below the gone
--     mark; the gateway then registers again, passing the mark, and gets a
--     stamp above it.
-- So every queued job has its app here, whatever order the steps of
-- gateways and runners interleave in, and whoever dies between them.
--
-- KEYS[1] sd:jobapps
-- ARGV[1] "register", ARGV[2] app, ARGV[3] a gone mark a queue refused
--         ("" none): returns the app's stamp (kept if it is above the
--         mark: registering again does not send an app to the back)
-- ARGV[1] "served", ARGV[2] app, ARGV[3] the stamp the runner saw:
--         a new stamp, now, if it is still that one; returns the new
--         stamp, or 0
-- ARGV[1] "drop", ARGV[2] app, ARGV[3] the stamp the runner saw:
--         the app leaves if its stamp is still that one; returns 1 or 0

local op, app = ARGV[1], ARGV[2]
local seen = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = tonumber(redis.call('ZSCORE', KEYS[1], app))

local function stamp(n)
    return string.format('%.0f', n)
end

if op == 'register' then
    if cur and (not seen or cur > seen) then
        return stamp(cur)
    end
    local s = math.max(now, (cur or 0) + 1, (seen or 0) + 1)
    redis.call('ZADD', KEYS[1], stamp(s), app)
    return stamp(s)
end

if not cur or cur ~= seen then
    return 0
end

if op == 'served' then
    local s = stamp(math.max(now, cur + 1))
    redis.call('ZADD', KEYS[1], s, app)
    return s
end

if op == 'drop' then
    redis.call('ZREM', KEYS[1], app)
    return 1
end

return redis.error_reply('ERR job_apps.lua: unknown operation')
