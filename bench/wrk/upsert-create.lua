-- upsert-create: PATCH of a new customer (the seed example), unique
-- externalId and email per request: a counter per thread, prefixed with the
-- run's nonce and the thread number
dofile(os.getenv("BENCH_DIR") .. "/wrk/common.lua")

local n = 0

function request()
   bench.pick_app()
   n = n + 1
   local id = string.format("new-%s-%d-%d", bench.nonce, tid, n)
   return bench.patch(id, bench.example(id .. "@acme.com"))
end
