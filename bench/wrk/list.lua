-- list: GET /customers?limit=20, the first page
-- (enable in bench/run's WORKLOADS once the route exists)
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")

local reqs = {}   -- per app (bench.pick_app)

function request()
   bench.pick_app()
   local req = reqs[bench.app]
   if not req then
      req = wrk.format("GET", "/api/v1/customers?limit=20", bench.get_headers)
      reqs[bench.app] = req
   end
   return req
end
