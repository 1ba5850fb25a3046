-- Run one bounded chunk of a bulk-update job.
--
-- KEYS[1..3], ARGV[1..5]: the change feed and idempotency (lib.lua)
-- KEYS[4] sd:{app}:job:<n>, KEYS[5] sd:{app}:order (bucket prefix),
-- KEYS[6] sd:{app}:jobq, KEYS[7] sd:{app}:jobids:<n>
-- ARGV[6] key prefix "sd:{app}:", ARGV[7] the runner's token,
-- ARGV[8] chunk size (customers examined at most), ARGV[9] the job number,
-- ARGV[10] how long a finished job is kept (seconds)
--
-- The customers of the chunk, their change events and the job's cursor
-- change in this one atomic step: a runner that dies between chunks leaves
-- nothing half done, and the next one goes on from the cursor, so nobody
-- is updated twice or skipped.  A matching customer the change leaves as
-- it was counts as matched, not updated, and emits nothing.
--
-- A chunk ends after the chunk size or the cost budget (lib_scan.lua: what it
-- reads, decodes and writes), whichever comes first.  The cursor is the
-- last creation sequence done, or with an externalId filter the number of
-- its ids done (sd:{app}:jobids:<n>, looked up one by one: the job does
-- not walk the app).  Then the job pauses: nobody may claim it for four
-- times the chunk's own Redis time (TIME, at its start and its end), so
-- that one job keeps Redis busy at most a fifth of the time, whoever runs
-- it, and the runner is free to serve another app meanwhile.  A finished
-- job leaves its app's queue and expires after ARGV[10] seconds.
-- Returns {"running" | "done" | "lost" (another runner holds the lease),
-- the pause in ms}, wrapped with the count of events it appended when the
-- gateway counts them (sd.answer).

local t0 = redis.call('TIME')
local w = sd.writer()
local job, order, queue, idlist = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local prefix, token = ARGV[6], ARGV[7]
local chunk, number, ttl = tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10])
local now = w.now

local j = redis.call('HMGET', job, 'lease', 'status', 'cursor', 'max',
                     'filter', 'set', 'matched', 'updated', 'ids')
if j[1] ~= token or j[2] ~= 'running' then
    return {'lost', 0}
end

local function finish(status, fields)
    redis.call('HSET', job, 'status', status, 'u', now, unpack(fields))
    redis.call('HDEL', job, 'lease', 'lease_until')
    redis.call('EXPIRE', job, ttl)
    redis.call('DEL', idlist)
    redis.call('ZREM', queue, number)
end

local cursor, max = tonumber(j[3]), tonumber(j[4])
local ok, filter = pcall(cjson.decode, j[5])
local ok2, changes = pcall(cjson.decode, j[6])
if not ok or not ok2 or type(filter) ~= 'table' then
    finish('failed', {})
    return {'done', 0}
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

local f = {email = filter.email, name = filter.name,
           meta = filter.meta and sd.meta_prepare(filter.meta)}
local need = sd.filter_fields(f)
-- the creation sequence too: a customer created after the job was
-- accepted is not part of it
table.insert(need, 1, 's')

-- a job of the first layout kept its externalIds in the filter
local legacy_ids
if type(filter.ids) == 'table' then
    legacy_ids = {}
    for _, id in ipairs(filter.ids) do legacy_ids[id] = true end
end

local matched, updated = tonumber(j[7]), tonumber(j[8])
local spent, examined = 3 * sd.call + sd.size(j), 0

-- one customer; false when the budget leaves it to the next chunk
local function apply(xid)
    local key = prefix .. 'c:' .. xid
    local r = redis.call('HMGET', key, unpack(need))
    spent = spent + sd.call + sd.size(r)

    if examined > 0 and spent + sd.filter_work(f, r) > sd.budget then
        return false
    end
    examined = examined + 1

    local h = {}
    for k, name in ipairs(need) do h[name] = r[k] or nil end
    if not h.s or tonumber(h.s) > max
       or (legacy_ids and not legacy_ids[xid])
    then
        return true
    end

    local yes, work = sd.matches(f, h)
    spent = spent + work
    if not yes then
        return true
    end

    r = redis.call('HMGET', key, unpack(sd.customer_fields))
    spent = spent + sd.call + sd.size(r)
    for k, name in ipairs(sd.customer_fields) do h[name] = r[k] or nil end
    if not h.e then
        return true
    end

    matched = matched + 1
    local changed = {}
    for k = 1, #changes, 2 do
        local name, v = changes[k], changes[k + 1]
        if (v == '' and h[name]) or (v ~= '' and v ~= h[name]) then
            changed[#changed + 1] = sd.field_names[name]
        end
        h[name] = v ~= '' and v or nil
    end

    if #changed > 0 then
        h.u, h.v = now, string.format('%d', (tonumber(h.v) or 0) + 1)
        set[#set] = h.v
        if #clear > 0 then
            redis.call('HDEL', key, unpack(clear))
        end
        redis.call('HSET', key, unpack(set))
        local event = sd.pairs(h, sd.customer_fields)
        sd.customer_event(w, 'customer.updated', xid, event, changed)
        updated = updated + 1
        -- the fields written, the event (a stream entry costs about three
        -- times its bytes); HSET, HDEL and the feed's calls
        spent = spent + sd.size(set) + 3 * sd.size(event) + 4 * sd.call
    end

    return true
end

local done

if j[9] then
    -- an externalId filter: its ids, from the cursor on
    local total = tonumber(j[9])
    local ids = redis.call('LRANGE', idlist, cursor,
                           math.min(total, cursor + chunk) - 1)
    spent = spent + sd.call + sd.size(ids)
    for _, xid in ipairs(ids) do
        if spent >= sd.budget or not apply(xid) then break end
        cursor = cursor + 1
    end
    done = cursor >= total

else
    local stop = math.min(max, cursor + chunk)

    while cursor < stop and spent < sd.budget do
        local bucket = math.floor((cursor + 1) / 128)
        local flat = redis.call('HGETALL', order .. ':' .. bucket)
        local last = math.min(stop, bucket * 128 + 127)
        local xids = {}

        spent = spent + sd.call + sd.size(flat)
        for i = 1, #flat, 2 do xids[tonumber(flat[i])] = flat[i + 1] end

        if #flat == 0 then
            cursor = last
        end

        while cursor < last do
            if spent >= sd.budget and examined > 0 then break end
            local xid = xids[cursor + 1]
            if xid and not apply(xid) then break end
            cursor = cursor + 1
            spent = spent + 16
        end

        if cursor < last then break end
    end
    done = cursor >= max
end

local t1 = redis.call('TIME')
local took = (tonumber(t1[1]) - tonumber(t0[1])) * 1000000
             + tonumber(t1[2]) - tonumber(t0[2])
-- four times the chunk's time, rounded up, and 2 ms for what the two TIMEs
-- do not see (the command's parsing, its reply) and for the runner's claim
-- of the next chunk
local pause = math.ceil(4 * took / 1000) + 2

if done then
    finish('done', {'cursor', cursor, 'matched', matched,
                    'updated', updated})
    return sd.answer(w, {'done', pause})
end

redis.call('HSET', job, 'cursor', cursor, 'matched', matched,
           'updated', updated, 'u', now,
           'lease_until', tonumber(t1[1]) * 1000
                          + math.floor(tonumber(t1[2]) / 1000) + pause)
redis.call('HDEL', job, 'lease')

return sd.answer(w, {'running', pause})
