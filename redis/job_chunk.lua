-- Run one bounded chunk of a bulk-update job.
--
-- KEYS[1..3], ARGV[1..5]: the change feed and idempotency (lib.lua)
-- KEYS[4] sd:{app}:job:<n>, KEYS[5] sd:{app}:order (bucket prefix),
-- KEYS[6] sd:jobs
-- ARGV[6] key prefix "sd:{app}:", ARGV[7] the worker's token,
-- ARGV[8] now (ms), ARGV[9] lease (ms), ARGV[10] chunk size,
-- ARGV[11] the job's sd:jobs member
--
-- The customers of the chunk, their change events and the job's cursor
-- change in this one atomic step: a worker that dies between chunks leaves
-- nothing half done, and the next one goes on from the cursor, so nobody
-- is updated twice or skipped.  A matching customer the change leaves as
-- it was counts as matched, not updated, and emits nothing.
-- Returns "running", "done", or "lost" (another worker holds the lease),
-- wrapped with the count of events it appended (sd.answer).

local w = sd.writer()
local job, order, queue = KEYS[4], KEYS[5], KEYS[6]
local prefix, token = ARGV[6], ARGV[7]
local now, now_ms, lease = w.now, tonumber(ARGV[8]), tonumber(ARGV[9])
local chunk = tonumber(ARGV[10])
local member = ARGV[11]

local j = redis.call('HMGET', job, 'lease', 'status', 'cursor', 'max',
                     'filter', 'set', 'matched', 'updated')
if j[1] ~= token or j[2] ~= 'running' then
    return 'lost'
end

local cursor, max = tonumber(j[3]), tonumber(j[4])
local ok, filter = pcall(cjson.decode, j[5])
local ok2, changes = pcall(cjson.decode, j[6])
if not ok or not ok2 then
    redis.call('HSET', job, 'status', 'failed', 'u', now)
    redis.call('ZREM', queue, member)
    return 'done'
end

local set, clear = {}, {}
for i = 1, #changes, 2 do
    if changes[i + 1] == '' then
        clear[#clear + 1] = changes[i]
    else
        set[#set + 1] = changes[i]
        set[#set + 1] = changes[i + 1]
    end
end
set[#set + 1] = 'u'
set[#set + 1] = now
-- the version, set per customer below
set[#set + 1] = 'v'
set[#set + 1] = 0

local meta = filter.meta and sd.meta_filter(filter.meta)
local ids = {}
if filter.ids then
    for _, id in ipairs(filter.ids) do ids[id] = true end
end

local function matches(xid, e, n, m)
    if filter.ids and not ids[xid] then return false end
    if filter.email and not string.find(string.lower(e or ''),
                                        filter.email, 1, true) then
        return false
    end
    if filter.name and not string.find(string.lower(n or ''),
                                       filter.name, 1, true) then
        return false
    end
    if meta and not sd.meta_match(m, meta) then
        return false
    end
    return true
end

local matched, updated = tonumber(j[7]), tonumber(j[8])
local stop = math.min(max, cursor + chunk)

while cursor < stop do
    local first = cursor + 1
    local bucket = math.floor(first / 128)
    local last = math.min(stop, bucket * 128 + 127)
    local fields = {}
    for n = first, last do fields[#fields + 1] = n end
    local xids = redis.call('HMGET', order .. ':' .. bucket, unpack(fields))

    for i, xid in ipairs(xids) do
        if xid then
            local key = prefix .. 'c:' .. xid
            local r = redis.call('HMGET', key, unpack(sd.customer_fields))
            local h = {}
            for k, f in ipairs(sd.customer_fields) do h[f] = r[k] or nil end
            if h.e and matches(xid, h.e, h.n, h.m) then
                matched = matched + 1
                local changed = {}
                for k = 1, #changes, 2 do
                    local f, v = changes[k], changes[k + 1]
                    if (v == '' and h[f]) or (v ~= '' and v ~= h[f]) then
                        changed[#changed + 1] = sd.field_names[f]
                    end
                    h[f] = v ~= '' and v or nil
                end
                if #changed > 0 then
                    h.u, h.v = now, (tonumber(h.v) or 0) + 1
                    set[#set] = h.v
                    if #clear > 0 then
                        redis.call('HDEL', key, unpack(clear))
                    end
                    redis.call('HSET', key, unpack(set))
                    sd.customer_event(w, 'customer.updated', xid,
                                      sd.pairs(h, sd.customer_fields),
                                      changed)
                    updated = updated + 1
                end
            end
        end
    end

    cursor = last
end

local done = cursor >= max
redis.call('HSET', job, 'cursor', cursor, 'matched', matched,
           'updated', updated, 'u', now, 'lease_until', now_ms + lease)

if done then
    redis.call('HSET', job, 'status', 'done')
    redis.call('HDEL', job, 'lease', 'lease_until')
    redis.call('ZREM', queue, member)
    return sd.answer(w, 'done')
end

return sd.answer(w, 'running')
