-- seed: create BENCH_SEED_COUNT seed-example customers through the API,
-- <BENCH_SEED_PREFIX><12 digits>, email <BENCH_SEED_EMAIL><N>@acme.com.
-- Each of BENCH_THREADS threads creates its share and stops once every one
-- of its creates has been answered (wasCreated:true); meanwhile its other
-- connections send GET /bench-noop (204) so nothing else is written.
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")

local prefix = os.getenv("BENCH_SEED_PREFIX") or "cust-"
local email  = os.getenv("BENCH_SEED_EMAIL") or "user"
local count  = tonumber(os.getenv("BENCH_SEED_COUNT") or "10000")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
local first, last, n, noop

function request()
   if not first then
      local share = math.ceil(count / nthreads)
      first = tid * share
      last = math.min(first + share, count) - 1
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
   local id = string.format("%s%012d", prefix, n)
   local body = bench.example(email .. n .. "@acme.com")
   n = n + 1
   return bench.patch(id, body)
end

bench.on_response = function()
   if first and created + bad >= last - first + 1 then
      bench.stop()
   end
end
