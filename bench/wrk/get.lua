-- get: GET /customers/{id} over the 10,000 seeded customers
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")

function request()
   bench.pick_app()
   return bench.get(bench.random_seeded_id())
end
