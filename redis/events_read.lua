#!lua flags=no-writes
-- One page of an app's change feed, oldest first.
--
-- KEYS[1] sd:{app}:events, KEYS[2] sd:{app}:eventseq (see lib.lua)
-- ARGV[1] the cursor: the last event seen ("" for the oldest retained),
-- ARGV[2] page size
--
-- Returns {where the feed stands, entries...}, an entry being {id,
-- {field, value, ...}}: where it stands is the newest event id ever when
-- there is no cursor and nothing to return ("0-0" without any event), else
-- "0-0" (unused); or SD_CURSOR_EXPIRED when events
-- after the cursor were trimmed away (or the feed never had that event),
-- SD_BAD_CURSOR when the cursor names no event of this feed.

local after, limit = ARGV[1], tonumber(ARGV[2])
local last_n = tonumber(redis.call('HGET', KEYS[2], 'n') or '0')

local start = '-'

if after ~= '' then
    local ams, an = sd.id_parts(after)

    if an > last_n then
        return redis.error_reply('SD_CURSOR_EXPIRED after')
    end

    -- ids are <ms>-<n> with n counting every event: nothing was lost
    -- after the cursor while the event right after it is still here
    local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
    local first_n = last_n + 1
    if first[1] then
        local _, fn = sd.id_parts(first[1][1])
        first_n = fn
    end

    if an + 1 < first_n then
        return redis.error_reply('SD_CURSOR_EXPIRED after')
    end

    if an >= first_n then
        local own = redis.call('XRANGE', KEYS[1], after, after)
        if not own[1] then
            return redis.error_reply('SD_BAD_CURSOR after')
        end
    end

    start = '(' .. after
end

-- read in slices, so that the cost budget (lib_scan.lua) bounds a page of big
-- events (a customer's 16 KiB of metadata, a 64 KiB note) as well as
-- limit does: a page may be short then, its cursor the last event in it
local out, got, spent, read = {'0-0'}, 0, 3 * sd.call, 0
local count = math.min(limit, 4)

while got < limit and spent < sd.budget do
    local entries = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', count)
    spent = spent + sd.call

    for i = 1, #entries do
        local e = entries[i]
        -- read and returned
        local size = 2 * (#e[1] + sd.size(e[2]))
        spent = spent + size
        read = read + size
        got = got + 1
        out[got + 1] = e
    end

    if #entries < count or got == limit then
        break
    end

    start = '(' .. entries[#entries][1]
    -- as many as the rest of the budget holds, at the size seen so far
    count = math.floor((sd.budget - spent) / (read / got))
    count = math.max(1, math.min(count, 128, limit - got))
end

-- where the feed stands, for a client that sent no cursor and got nothing:
-- the feed is empty then (all trimmed, or never written), cheap to ask
if after == '' and got == 0 and redis.call('EXISTS', KEYS[1]) == 1 then
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    for i = 1, #info, 2 do
        if info[i] == 'last-generated-id' then
            out[1] = info[i + 1]
        end
    end
end

return out
