-- Shared by every wrk script of `make bench` (loaded with dofile).
--
-- Environment (set by bench/run):
--   BENCH_KEY         X-API-Key
--   BENCH_SEEDED      customers cust-000000000000 .. cust-<N-1> exist (10000)
--   BENCH_NONCE       unique per wrk run: ids/emails of creates never repeat
--   BENCH_STOP_AFTER  stop each thread after that many responses (exact
--                     request counts for the MONITOR sample and callgrind;
--                     with -t1 -c1 no request is left in flight)
--   BENCH_DONE_DIR    a thread that stops itself creates done.<tid> here,
--                     bench/run then ends wrk (SIGINT)
--
-- Every response is checked: a 2xx status and an envelope body starting
-- with {"success":true (a 204 has no body).  done() prints one line that
-- bench/run parses:
--   BENCH requests=N duration_us=N bad=N created=N sockerr=N p50=us p99=us p999=us
-- (created: answers with "wasCreated":true)

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   threads[#threads + 1] = thread
end

bench = {
   key    = os.getenv("BENCH_KEY") or "",
   seeded = tonumber(os.getenv("BENCH_SEEDED") or "10000"),
   nonce  = os.getenv("BENCH_NONCE") or "0",
   stop_after = tonumber(os.getenv("BENCH_STOP_AFTER") or "0"),
   base   = "/api/v1/customers/",
}

bad, seen, created = 0, 0, 0

function init(args)
   -- each thread its own random sequence (tid is set by setup before init)
   math.randomseed((tonumber(bench.nonce:sub(-9)) or os.time()) + (tid or 0) * 7919)
   bench.get_headers = { ["X-API-Key"] = bench.key }
   bench.body_headers = { ["X-API-Key"] = bench.key,
                          ["Content-Type"] = "application/json" }
end

-- a seeded customer id, the same format redis-benchmark's __rand_int__ makes
function bench.seeded_id(n)
   return string.format("cust-%012d", n)
end

function bench.random_seeded_id()
   return bench.seeded_id(math.random(0, bench.seeded - 1))
end

function bench.get(id)
   return wrk.format("GET", bench.base .. id, bench.get_headers)
end

function bench.patch(id, body)
   return wrk.format("PATCH", bench.base .. id, bench.body_headers, body)
end

function bench.post(path, body)
   return wrk.format("POST", bench.base .. path, bench.body_headers, body)
end

function bench.example(email)
   return '{"email":"' .. email .. '","name":"John Doe","phone":"+1 555 0100",'
          .. '"metadata":{"plan":"premium","companyName":"Acme"}}'
end

function response(status, headers, body)
   seen = seen + 1
   if status < 200 or status > 299
      or (status ~= 204 and body:sub(1, 15) ~= '{"success":true')
   then
      bad = bad + 1
      if bad <= 3 then
         io.stderr:write("bad response: ", status, " ", body:sub(1, 300), "\n")
      end
   elseif status == 200 and body:find('"wasCreated":true', 1, true) then
      created = created + 1
   end
   if bench.on_response then
      bench.on_response()
   end
   if bench.stop_after > 0 and seen >= bench.stop_after then
      bench.stop()
   end
end

function bench.stop()
   if not bench.stopped then
      bench.stopped = true
      wrk.thread:stop()
      local dir = os.getenv("BENCH_DONE_DIR")
      if dir then
         local f = io.open(dir .. "/done." .. tid, "w")
         if f then f:close() end
      end
   end
end

function done(summary, latency, requests)
   local nbad, ncreated = 0, 0
   for _, t in ipairs(threads) do
      nbad = nbad + (t:get("bad") or 0)
      ncreated = ncreated + (t:get("created") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d bad=%d created=%d sockerr=%d p50=%d p99=%d p999=%d\n",
      summary.requests, summary.duration, nbad, ncreated,
      e.connect + e.read + e.write + e.timeout,
      latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
