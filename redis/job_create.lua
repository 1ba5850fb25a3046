-- Accept a bulk-update job, with its idempotency record.
--
-- KEYS[1..3], ARGV[1..5]: the change feed and idempotency (lib.lua)
-- KEYS[4] sd:{app}:seq, KEYS[5] sd:{app}:jobseq, KEYS[6] sd:{app}:jobq,
-- KEYS[7] sd:{app}:jobgone
-- ARGV[6] key prefix "sd:{app}:", ARGV[7] the app's stamp in sd:jobapps
-- (job_apps.lua register, sent just before), ARGV[8] filter (JSON),
-- ARGV[9] changes (JSON array of field, value), ARGV[10..] the filter's
-- externalIds (none: the filter has no externalId)
--
-- The job covers the customers that exist now: the highest creation
-- sequence is its end.  It waits in its app's queue (sd:{app}:jobq, job
-- numbers in order), where job_claim.lua takes the oldest; runners find
-- the app in sd:jobapps.  Every key here is the app's: on a cluster this
-- runs in the app's slot, and the registration is a step of its own,
-- made first (see job_apps.lua).  A stamp at or below the app's gone mark
-- may have been dropped from sd:jobapps meanwhile: nothing is queued then,
-- and the answer is {"stale", mark}, to register again with.  Stamp 0 is
-- never queued under: a gateway sends it to learn first whether the
-- request is a replay under its Idempotency-Key, which registers nothing.
-- An externalId filter's ids, each once, go to sd:{app}:jobids:<n>, where
-- the job's chunks look them up one by one instead of walking the app.
-- Returns the job number.  The same Idempotency-Key again gets the same
-- job, or SD_IDEMPOTENCY_KEY_IN_USE while that job is not finished.

local w = sd.writer()
local prefix = ARGV[6]

if w.fp ~= '' then
    local rec = redis.call('HMGET', w.idem, 'f', 'r')
    if rec[1] then
        if rec[1] ~= w.fp then
            return redis.error_reply(
                       'SD_IDEMPOTENCY_KEY_REUSED Idempotency-Key')
        end
        local n = cmsgpack.unpack(rec[2])
        local st = redis.call('HGET', prefix .. 'job:' .. n, 'status')
        if st == 'queued' or st == 'running' then
            return redis.error_reply(
                       'SD_IDEMPOTENCY_KEY_IN_USE Idempotency-Key')
        end
        return {redis.status_reply('SD_REPLAY'), n}
    end
end

local gone = tonumber(redis.call('GET', KEYS[7]) or '0')
if gone >= tonumber(ARGV[7]) then
    return {'stale', string.format('%.0f', gone)}
end

local n = redis.call('INCR', KEYS[5])
local max = redis.call('GET', KEYS[4]) or '0'
local job = prefix .. 'job:' .. n

redis.call('HSET', job,
           'status', 'queued', 'matched', 0, 'updated', 0,
           'c', w.now, 'u', w.now, 'cursor', 0, 'max', max,
           'filter', ARGV[8], 'set', ARGV[9], 'lease_until', 0)

if #ARGV >= 10 then
    local seen, ids = {}, {}
    for i = 10, #ARGV do
        if not seen[ARGV[i]] then
            seen[ARGV[i]] = true
            ids[#ids + 1] = ARGV[i]
        end
    end
    redis.call('RPUSH', prefix .. 'jobids:' .. n, unpack(ids))
    redis.call('HSET', job, 'ids', #ids)
end

redis.call('ZADD', KEYS[6], n, n)

return sd.record(w, n)
