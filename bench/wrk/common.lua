-- Shared by every wrk script of `make bench` (loaded with dofile).
--
-- Environment (set by bench/run):
--   BENCH_KEY         X-API-Key
--   BENCH_KEYS        several X-API-Keys (of several apps), separated by
--                     spaces: the workloads' requests draw one per request
--                     (bench.pick_app; make bench-cluster: apps on every
--                     master); unset, every request has BENCH_KEY
--   BENCH_SEEDED      customers cust-000000000000 .. cust-<N-1> exist (10000)
--   BENCH_NONCE       unique per wrk run: ids/emails of creates never repeat
--   BENCH_STOP_AFTER  stop each thread after that many responses (exact
--                     request counts for the MONITOR sample and callgrind;
--                     with -t1 -c1 no request is left in flight)
--   BENCH_DONE_DIR    a thread that stops itself creates done.<tid> here,
--                     bench/run then ends wrk (SIGINT)
--   BENCH_IDEM_PREFIX, BENCH_IDEM_COUNT, BENCH_IDEM_IDS, BENCH_IDEM_PHONE
--                     a pool of Idempotency-Keys (bench.idem_request)
--
-- Every response is checked: a 2xx status and an envelope body starting
-- with {"success":true (a 204 has no body), then bench.check(status,
-- headers, body) when a script sets it (it returns why the answer is bad,
-- or nil).  done() prints one line that bench/run parses:
--   BENCH requests=N duration_us=N bad=N created=N sockerr=N p50=us p99=us p999=us
--         replayed=N items=N
-- (created: answers with "wasCreated":true; replayed: answers with
-- Idempotent-Replayed: true, counted by the checks of the scripts that send
-- Idempotency-Keys (bench.replayed); items: answers that are not 204, i.e.
-- not to GET /bench-noop)

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

bad, seen, created, replayed, items = 0, 0, 0, 0, 0

function init(args)
   -- each thread its own random sequence (tid is set by setup before init)
   math.randomseed((tonumber(bench.nonce:sub(-9)) or os.time()) + (tid or 0) * 7919)
   bench.apps = {}
   for key in (os.getenv("BENCH_KEYS") or ""):gmatch("%S+") do
      bench.apps[#bench.apps + 1] = key
   end
   if #bench.apps == 0 then
      bench.apps[1] = bench.key
   end
   for i, key in ipairs(bench.apps) do
      bench.apps[i] = { get = { ["X-API-Key"] = key },
                        body = { ["X-API-Key"] = key,
                                 ["Content-Type"] = "application/json" } }
   end
   bench.app = 1
   bench.get_headers = bench.apps[1].get
   bench.body_headers = bench.apps[1].body
end

-- the next request's app: one of BENCH_KEYS at random (bench.app its
-- number); with one key nothing changes
function bench.pick_app()
   if #bench.apps > 1 then
      bench.app = math.random(#bench.apps)
      bench.get_headers = bench.apps[bench.app].get
      bench.body_headers = bench.apps[bench.app].body
   end
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

-- A pool of Idempotency-Keys: request k (0 <= k < count) is always the same
-- PATCH /customers/<ids><k, 12 digits> {"phone": ...} under the key
-- <prefix><k, 12 digits> (bench/run makes the prefix UUID-shaped: keys of
-- 36 characters); the phone is BENCH_IDEM_PHONE, or "+1 555 <k mod 10000>".
bench.idem = {
   prefix = os.getenv("BENCH_IDEM_PREFIX") or "00000000-0000-4000-a000-",
   count  = tonumber(os.getenv("BENCH_IDEM_COUNT") or "1000"),
   ids    = os.getenv("BENCH_IDEM_IDS") or "cust-",
   phone  = os.getenv("BENCH_IDEM_PHONE"),
}

function bench.idem_request(k)
   local p = bench.idem
   local headers = { ["X-API-Key"] = bench.key,
                     ["Content-Type"] = "application/json",
                     ["Idempotency-Key"] = string.format("%s%012d", p.prefix, k) }
   local body = string.format('{"phone":"%s"}',
                              p.phone or string.format("+1 555 %04d", k % 10000))
   return wrk.format("PATCH", string.format("%s%s%012d", bench.base, p.ids, k),
                     headers, body)
end

-- the value of a response header, whatever its case
function bench.header(headers, name)
   local v = headers[name]
   if v == nil then
      name = name:lower()
      for k, x in pairs(headers) do
         if k:lower() == name then
            return x
         end
      end
   end
   return v
end

-- Idempotent-Replayed: true?  (counted in replayed)
function bench.replayed(headers)
   if bench.header(headers, "Idempotent-Replayed") == "true" then
      replayed = replayed + 1
      return true
   end
   return false
end

function response(status, headers, body)
   seen = seen + 1
   if status ~= 204 then
      items = items + 1
   end
   local why
   if status < 200 or status > 299
      or (status ~= 204 and body:sub(1, 15) ~= '{"success":true')
   then
      why = "not 2xx and an envelope"
   elseif bench.check then
      why = bench.check(status, headers, body)
   end
   if why then
      bad = bad + 1
      if bad <= 3 then
         io.stderr:write("bad response (", why, "): ", status, " ",
                         body:sub(1, 300), "\n")
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
   local nbad, ncreated, nreplayed, nitems = 0, 0, 0, 0
   for _, t in ipairs(threads) do
      nbad = nbad + (t:get("bad") or 0)
      ncreated = ncreated + (t:get("created") or 0)
      nreplayed = nreplayed + (t:get("replayed") or 0)
      nitems = nitems + (t:get("items") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d bad=%d created=%d sockerr=%d p50=%d p99=%d p999=%d replayed=%d items=%d\n",
      summary.requests, summary.duration, nbad, ncreated,
      e.connect + e.read + e.write + e.timeout,
      latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
      nreplayed, nitems))
end
