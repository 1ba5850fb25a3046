-- list: GET /customers?limit=20, the first page
-- (enable in bench/run's WORKLOADS once the route exists)
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")

local req

function request()
   req = req or wrk.format("GET", "/api/v1/customers?limit=20", bench.get_headers)
   return req
end
