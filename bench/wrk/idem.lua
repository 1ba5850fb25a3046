-- idem: send each request of an Idempotency-Key pool (bench.idem_request,
-- BENCH_IDEM_COUNT of them) once: the priming pass of the replay workload,
-- and the writes of the idempotency record memory figure.  Each of
-- BENCH_THREADS threads sends its share and stops once every one of them
-- has been answered; meanwhile its other connections send GET /bench-noop
-- (204) so nothing else is written (as seed.lua does).  Every answer must
-- be 200 without Idempotent-Replayed (a first request is no replay).
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")

local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
local first, last, n, noop

function request()
   if not first then
      local share = math.ceil(bench.idem.count / nthreads)
      first = tid * share
      last = math.min(first + share, bench.idem.count) - 1
      n = first
      noop = wrk.format("GET", "/bench-noop")
      -- wrk calls thread 0's request() once before it starts, to check the
      -- request (script_verify_request), and never sends that one
      if tid == 0 then
         return noop
      end
   end
   if n > last then
      return noop
   end
   n = n + 1
   return bench.idem_request(n - 1)
end

bench.check = function(status, headers)
   if status == 204 then
      return nil
   end
   if status ~= 200 then
      return "not 200"
   end
   if bench.replayed(headers) then
      return "replayed, but its key was new"
   end
end

bench.on_response = function()
   if first and items >= last - first + 1 then
      bench.stop()
   end
end
