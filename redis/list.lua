#!lua flags=no-writes
-- One page of an app's customers in creation order.
--
-- KEYS[1] sd:{app}:order (the prefix of its buckets, see upsert.lua)
-- ARGV[1] key prefix "sd:{app}:", ARGV[2] last sequence seen (0: start),
-- ARGV[3] page size, ARGV[4] scan limit (sequence numbers examined at
-- most), ARGV[5] "1" to add each customer's note count,
-- ARGV[6] email filter, ARGV[7] name filter (lowercase substrings, "" none),
-- ARGV[8..] metadata key/value pairs that must all match exactly.
--
-- Returns cmsgpack.pack() of {total, next sequence or "", externalId,
-- {the customer's field values in sd.customer_fields order, false for an
-- unset one}[, notesCount], ...}: one string, which the worker walks in
-- place, instead of about 240 reply elements a page for Redis to write
-- and the worker to read one by one.  Two
-- bounds cut a call short however large the app and its records are: the
-- scan limit, and the cost budget (lib_scan.lua: the bytes read, decoded
-- and returned); a page may come back short then, with a cursor to go on
-- from.  Sequence numbers of
-- deleted customers are examined too (they are gaps in their bucket).
-- Only the fields the filters need are read for every customer; the rest
-- only for those that match.

local order = KEYS[1]
local prefix, after = ARGV[1], ARGV[2]
local limit, scan = tonumber(ARGV[3]), tonumber(ARGV[4])
local with_notes = ARGV[5] == '1'
local f = {}
if ARGV[6] ~= '' then f.email = ARGV[6] end
if ARGV[7] ~= '' then f.name = ARGV[7] end
for i = 8, #ARGV, 2 do
    f.meta = f.meta or {}
    f.meta[#f.meta + 1] = {ARGV[i], ARGV[i + 1]}
end
f.meta = f.meta and sd.meta_prepare(f.meta)
local need, rest = sd.filter_fields(f)

local max = tonumber(redis.call('GET', prefix .. 'seq') or '0')
local out = {tonumber(redis.call('GET', order .. ':n') or '0'), ''}
local found, s = 0, tonumber(after)
local first = s
local stop = math.min(max, s + scan)
local spent = 2 * sd.call
-- the budget ran out before the next customer
local full = false
-- sequence numbers an order bucket is asked for at least, and the bucket
-- whose rest is read whole
local CHUNK, sparse = 32, nil

-- one customer: its field values when it matches, nil when it does not,
-- false when the budget leaves it to the next call
local function examine(xid)
    local key = prefix .. 'c:' .. xid

    if #need == 0 then
        -- rest is every field in sd.customer_fields order: the answer
        local r = redis.call('HMGET', key, unpack(rest))
        spent = spent + sd.call + 2 * sd.strings_size(r)
        if not r[1] then return nil end
        return r
    else
        local h = {}
        local r = redis.call('HMGET', key, unpack(need))
        spent = spent + sd.call + sd.strings_size(r)
        -- the filters' work (metadata walked) could go past the budget:
        -- this customer is left for the next call
        if spent + sd.filter_work(f, r) > sd.budget and s > first + 1 then
            return false
        end
        for k, name in ipairs(need) do h[name] = r[k] or nil end
        local ok, work = sd.matches(f, h)
        spent = spent + work
        if not ok then return nil end
        r = redis.call('HMGET', key, unpack(rest))
        spent = spent + sd.call + sd.strings_size(r)
        for k, name in ipairs(rest) do h[name] = r[k] or nil end
        if not h.s then return nil end
        local values = {}
        for k, name in ipairs(sd.customer_fields) do
            values[k] = h[name] or false
        end
        -- what the reply carries
        spent = spent + sd.strings_size(values)
        return values
    end
end

while s < stop and found < limit and spent < sd.budget and not full do
    -- The next sequence numbers of the bucket, as many as the page may
    -- still need (at least CHUNK): an HMGET of 20 numbers costs Redis a
    -- fifth of an HGETALL of the 128 and their Lua strings.  A chunk
    -- that finds nobody (deleted customers, a bucket gone) has the rest of
    -- its bucket read whole: one call, however sparse.
    local bucket = math.floor((s + 1) / 128)
    local key = order .. ':' .. bucket
    local last = math.min(stop, bucket * 128 + 127)
    local xids = {}

    if sparse ~= bucket then
        last = math.min(last, s + math.max(limit - found, CHUNK))
        local want = {}
        for k = s + 1, last do want[#want + 1] = k end
        local ids = redis.call('HMGET', key, unpack(want))
        spent = spent + sd.call + sd.strings_size(ids)
        local any = false
        for k, xid in ipairs(ids) do
            if xid then
                xids[want[k]] = xid
                any = true
            end
        end
        if not any then sparse = bucket end
    else
        local flat = redis.call('HGETALL', key)
        spent = spent + sd.call + sd.strings_size(flat)
        for i = 1, #flat, 2 do xids[tonumber(flat[i])] = flat[i + 1] end
        if #flat == 0 then
            s = last
        end
    end

    while s < last and found < limit do
        -- at least one sequence number per call, so the walk goes on
        if spent >= sd.budget and s > first then break end
        s = s + 1
        spent = spent + 16
        local xid = xids[s]
        if xid then
            local values = examine(xid)
            if values == false then
                s = s - 1
                full = true
                break
            elseif values then
                out[#out + 1] = xid
                out[#out + 1] = values
                if with_notes then
                    out[#out + 1] = redis.call('ZCARD',
                                               prefix .. 'notez:' .. xid)
                    spent = spent + sd.call
                end
                found = found + 1
            end
        end
    end
end

if s < max then
    out[2] = tostring(s)
end

return cmsgpack.pack(out)
