-- notes-create: POST /customers/{id}/notes over the 10,000 seeded customers
-- (enable in bench/run's WORKLOADS once the route exists)
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")

function request()
   bench.pick_app()
   return bench.post(bench.random_seeded_id() .. "/notes",
                     '{"note":"Customer called about the invoice of March."}')
end
