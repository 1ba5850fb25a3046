-- Accept a bulk-update job.
--
-- KEYS[1] sd:{app}:seq, KEYS[2] sd:{app}:jobseq, KEYS[3] sd:jobs
-- ARGV[1] key prefix "sd:{app}:", ARGV[2] app, ARGV[3] now (unix seconds),
-- ARGV[4] filter (JSON), ARGV[5] changes (JSON array of field, value)
--
-- The job covers the customers that exist now: the highest creation
-- sequence is its end.  Workers find it in sd:jobs ("<app>/<n>").
-- Returns the job number.

local n = redis.call('INCR', KEYS[2])
local max = redis.call('GET', KEYS[1]) or '0'

redis.call('HSET', ARGV[1] .. 'job:' .. n,
           'status', 'queued', 'matched', 0, 'updated', 0,
           'c', ARGV[3], 'u', ARGV[3], 'cursor', 0, 'max', max,
           'filter', ARGV[4], 'set', ARGV[5], 'lease_until', 0)
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2] .. '/' .. n)
return n
