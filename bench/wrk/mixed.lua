-- mixed: 80% GET, 20% PATCH {"phone": ...} over the 10,000 seeded customers
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")

function request()
   bench.pick_app()
   local id = bench.random_seeded_id()
   if math.random() < 0.8 then
      return bench.get(id)
   end
   return bench.patch(id,
      string.format('{"phone":"+1 555 %04d"}', math.random(0, 9999)))
end
