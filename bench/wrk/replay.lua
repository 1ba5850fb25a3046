-- replay: PATCH /customers/{id} under an Idempotency-Key that was recorded
-- before (bench/wrk/idem.lua, the priming pass over the same pool): a random
-- key of the pool (BENCH_IDEM_COUNT, 1,000) with the very request it was
-- recorded with, so every answer is a replay.  An answer without
-- Idempotent-Replayed: true counts as bad.
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")

local reqs = {}

function request()
   local k = math.random(0, bench.idem.count - 1)
   local r = reqs[k]
   if not r then
      r = bench.idem_request(k)
      reqs[k] = r
   end
   return r
end

bench.check = function(status, headers)
   if status ~= 200 then
      return "not 200"
   end
   if not bench.replayed(headers) then
      return "no Idempotent-Replayed: true"
   end
end
