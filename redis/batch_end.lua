-- Close a batch upsert under an Idempotency-Key: records its whole answer
-- for replays.
--
-- KEYS[1..3], ARGV[1..5]: the change feed and idempotency (lib.lua)
-- ARGV[6] the request's token, ARGV[7] the answer's data (JSON)
--
-- Returns 1, or 0 when the request no longer held the record (its time
-- ran out): a retry then runs the batch again, its items replaying.

local w = sd.writer()

if redis.call('HGET', w.idem, 'busy') ~= ARGV[6] then
    return 0
end

sd.record(w, ARGV[7])

return 1
