#!lua flags=no-writes
-- One page of an app's customers in creation order.
--
-- KEYS[1] sd:{app}:order (the prefix of its buckets, see upsert.lua)
-- ARGV[1] key prefix "sd:{app}:", ARGV[2] last sequence seen (0: start),
-- ARGV[3] page size, ARGV[4] scan budget (records examined at most),
-- ARGV[5] "1" to add each customer's note count,
-- ARGV[6] email filter, ARGV[7] name filter (lowercase substrings, "" none),
-- ARGV[8..] metadata key/value pairs that must all match exactly.
--
-- Returns {total, next sequence or "", externalId, HGETALL[, notesCount],...}.
-- The budget bounds the work of one call however large the app is: a page
-- may come back short, with a cursor to go on from.  Sequence numbers of
-- deleted customers are examined too (they are gaps in their bucket).

local order = KEYS[1]
local prefix, after = ARGV[1], ARGV[2]
local limit, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
local with_notes = ARGV[5] == '1'
local femail, fname = ARGV[6], ARGV[7]
local meta = {}
for i = 8, #ARGV, 2 do
    meta[#meta + 1] = {ARGV[i], ARGV[i + 1]}
end
meta = #meta > 0 and sd.meta_filter(meta) or nil

-- the filters match job_chunk.lua's: change both together
local function matches(h)
    if femail ~= '' then
        if not h.e or not string.find(string.lower(h.e), femail, 1, true) then
            return false
        end
    end
    if fname ~= '' then
        if not h.n or not string.find(string.lower(h.n), fname, 1, true) then
            return false
        end
    end
    if meta and not sd.meta_match(h.m, meta) then
        return false
    end
    return true
end

local max = tonumber(redis.call('GET', prefix .. 'seq') or '0')
local out = {tonumber(redis.call('GET', order .. ':n') or '0'), ''}
local found, s = 0, tonumber(after)
local stop = math.min(max, s + budget)

while s < stop and found < limit do
    -- the rest of this bucket, at most up to stop
    local first = s + 1
    local bucket = math.floor(first / 128)
    local last = math.min(stop, bucket * 128 + 127)
    local fields = {}
    for n = first, last do fields[#fields + 1] = n end
    local xids = redis.call('HMGET', order .. ':' .. bucket, unpack(fields))

    for i, xid in ipairs(xids) do
        s = first + i - 1
        if xid then
            local flat = redis.call('HGETALL', prefix .. 'c:' .. xid)
            local h = {}
            for j = 1, #flat, 2 do h[flat[j]] = flat[j + 1] end
            if #flat > 0 and matches(h) then
                out[#out + 1] = xid
                out[#out + 1] = flat
                if with_notes then
                    out[#out + 1] = redis.call('ZCARD',
                                               prefix .. 'notez:' .. xid)
                end
                found = found + 1
                if found == limit then break end
            end
        end
    end
end

if s < max then
    out[2] = tostring(s)
end

return out
