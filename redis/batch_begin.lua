-- Open a batch upsert under an Idempotency-Key: its items, pipelined right
-- behind, run only while this request holds the key's record.
--
-- KEYS[1..3], ARGV[1..5]: the change feed and idempotency (lib.lua)
-- ARGV[6] the request's token, ARGV[7] how long it may hold the record (ms)
--
-- Returns "go"; the answer recorded for this key (a replay); or
-- SD_IDEMPOTENCY_KEY_IN_USE while another request holds it,
-- SD_IDEMPOTENCY_KEY_REUSED for another body under the same key.

local w = sd.writer()

local replay = sd.replay(w)
if replay then
    return replay
end

redis.call('HSET', w.idem, 'f', w.fp, 'busy', ARGV[6])
redis.call('PEXPIRE', w.idem, ARGV[7])

return 'go'
