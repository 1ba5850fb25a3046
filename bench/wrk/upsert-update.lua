-- upsert-update: PATCH {"phone": ...} over the 10,000 seeded customers
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")

function request()
   bench.pick_app()
   return bench.patch(bench.random_seeded_id(),
      string.format('{"phone":"+1 555 %04d"}', math.random(0, 9999)))
end
