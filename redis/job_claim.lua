-- Claim a bulk-update job of one app for one runner.
--
-- KEYS[1] sd:{app}:jobq (the app's jobs not finished, job numbers in
-- order), KEYS[2] sd:{app}:jobgone (the gone mark, see job_apps.lua)
-- ARGV[1] key prefix "sd:{app}:", ARGV[2] lease (ms), ARGV[3] the runner's
-- token, ARGV[4] the app's stamp in sd:jobapps as the runner saw it,
-- ARGV[5] the grace period (ms), ARGV[6] "" to claim, "tidy", or a job
-- to adopt
--
-- An app runs one job at a time, the oldest of its queue.  That job is
-- free when queued, or running and not held: a chunk leaves it to whoever
-- claims it next once its pause is over (job_chunk.lua), a runner that
-- died leaves it once its lease runs out.  Leases are in Redis's time
-- (TIME), so gateways whose clocks differ still agree.  Finished jobs met
-- at the head leave the queue.
--
-- Returns {"claimed", n, how}: how is "start" (it was queued), "resume"
-- (between two chunks) or "takeover" (its runner's lease ran out);
-- {"busy", ms until it is free}; {"empty", 1} when the queue is empty and
-- the app's stamp is older than the grace period: the gone mark is
-- written, the runner drops the app from sd:jobapps; {"empty", 0} when it
-- is younger (a gateway may be about to queue a job under it).
--
-- "tidy", what a runner asks right after it finished a job of the app:
-- no claim, and no grace period: {"empty", 1} when the queue is empty
-- (the gone mark written), else {"busy", 0}.  So an app leaves the
-- registry as soon as its last job is done.
--
-- A job number: a job accepted by a gateway of the first layout (listed
-- in sd:jobs) joins its app's queue: {"adopted"}, or {"stale", mark} when
-- the stamp is at or below the gone mark (register again, as
-- job_create.lua's callers do).

local prefix, lease, token = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local stamp, grace = tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local tidy = ARGV[6] == 'tidy'

if ARGV[6] ~= '' and not tidy then
    local gone = tonumber(redis.call('GET', KEYS[2]) or '0')
    if gone >= stamp then
        return {'stale', string.format('%.0f', gone)}
    end
    local st = redis.call('HGET', prefix .. 'job:' .. ARGV[6], 'status')
    if st == 'queued' or st == 'running' then
        redis.call('ZADD', KEYS[1], ARGV[6], ARGV[6])
    end
    return {'adopted'}
end

for _ = 1, 8 do
    local head = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
    if not head then
        break
    end

    local job = prefix .. 'job:' .. head
    local st = redis.call('HMGET', job, 'status', 'lease_until', 'lease')

    if not st[1] or st[1] == 'done' or st[1] == 'failed' then
        redis.call('ZREM', KEYS[1], head)

    elseif tidy then
        return {'busy', 0}

    else
        local until_ms = tonumber(st[2]) or 0
        if until_ms > now then
            -- held by a runner, or pausing between two chunks
            return {'busy', math.min(until_ms - now, lease)}
        end

        local how = st[1] == 'queued' and 'start'
                    or (st[3] and 'takeover' or 'resume')
        redis.call('HSET', job, 'status', 'running', 'lease', token,
                   'lease_until', now + lease)
        return {'claimed', head, how}
    end
end

if redis.call('EXISTS', KEYS[1]) == 1 then
    -- finished jobs still at the head: the next claim goes on
    return {'busy', 1}
end

if not tidy and now - stamp < grace then
    return {'empty', 0}
end

local gone = tonumber(redis.call('GET', KEYS[2]) or '0')
if stamp > gone then
    redis.call('SET', KEYS[2], string.format('%.0f', stamp))
end

return {'empty', 1}
