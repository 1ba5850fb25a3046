-- Accept a bulk-update job, with its idempotency record.
--
-- KEYS[1..3], ARGV[1..5]: the change feed and idempotency (lib.lua)
-- KEYS[4] sd:{app}:seq, KEYS[5] sd:{app}:jobseq, KEYS[6] sd:jobs
-- ARGV[6] key prefix "sd:{app}:", ARGV[7] app, ARGV[8] filter (JSON),
-- ARGV[9] changes (JSON array of field, value)
--
-- The job covers the customers that exist now: the highest creation
-- sequence is its end.  Workers find it in sd:jobs ("<app>/<n>").
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

local n = redis.call('INCR', KEYS[5])
local max = redis.call('GET', KEYS[4]) or '0'

redis.call('HSET', prefix .. 'job:' .. n,
           'status', 'queued', 'matched', 0, 'updated', 0,
           'c', w.now, 'u', w.now, 'cursor', 0, 'max', max,
           'filter', ARGV[8], 'set', ARGV[9], 'lease_until', 0)
redis.call('ZADD', KEYS[6], w.now, ARGV[7] .. '/' .. n)

return sd.record(w, n)
