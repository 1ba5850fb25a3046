-- What the scripts that examine records the caller does not bound by
-- itself share (list.lua, note_list.lua, events_read.lua, job_chunk.lua):
-- the gateway puts this file behind lib.lua (and lib_customer.lua, for
-- list.lua and job_chunk.lua) in front of those four only
-- (ngx_http_supportdesk_script.c), so that the others stay small: after a
-- SCRIPT FLUSH every connection loads every script again, and the bytes
-- Redis compiles then are what it has to spare for requests.  Nothing here
-- runs by itself: it only adds to the table sd.

-- The metadata filters of list.lua and job_chunk.lua.
--
-- A filter is a top-level key and a text.  A member matches when it is a
-- string equal to the text, a boolean whose JSON text (true, false) it is,
-- or a number of exactly the value the text writes as a JSON number:
-- decimal values, compared digit for digit (1, 1.0, 10e-1 and 1E0 are one
-- number; 12345678901234561 is not 12345678901234560; 0.1 is 0.1), never
-- through a double.  null, objects and arrays match nothing.  The stored
-- metadata is read as the text the gateway stored (compact, numbers as the
-- client sent them) and is not decoded: only its top-level members are
-- walked, until every filtered key has been seen.

-- A JSON number's exact value as a text: its significant digits and the
-- power of ten of the first ("15e4" for 1500, 15E2, 1.5e3; "0" for zero;
-- "-15e4" for -1500); nil when text is not a JSON number.  An exponent of
-- more than 9 digits is left as written: "x" and the text, equal only to
-- itself.
function sd.number_key(text)
    local neg, int, rest = string.match(text, '^(%-?)(%d+)(.*)$')
    if not int or (#int > 1 and string.byte(int, 1) == 48) then
        return nil
    end
    local frac, exp = '', '0'
    if string.byte(rest, 1) == 46 then
        frac, rest = string.match(rest, '^%.(%d+)(.*)$')
        if not frac then return nil end
    end
    if rest ~= '' then
        local sign, digits = string.match(rest, '^[eE]([%+%-]?)(%d+)$')
        if not digits then return nil end
        digits = string.match(digits, '^0*(.-)$')
        if #digits > 9 then return 'x' .. text end
        exp = (sign == '-' and '-' or '') .. (digits == '' and '0' or digits)
    end
    local all = int .. frac
    local lead = #string.match(all, '^0*')
    local digits = string.match(string.sub(all, lead + 1), '^(.-)0*$')
    if digits == '' then
        return '0'
    end
    -- 0.digits x 10^point
    local point = #int - lead + tonumber(exp)
    return neg .. digits .. 'e' .. string.format('%d', point)
end

-- The filters {{key, text}, ...} as meta_match() takes them
function sd.meta_filter(pairs_)
    local f = {keys = {}, n = 0}
    for _, kv in ipairs(pairs_) do
        local want = f.keys[kv[1]]
        if not want then
            want = {}
            f.keys[kv[1]] = want
            f.n = f.n + 1
        end
        want[#want + 1] = {text = kv[2], number = sd.number_key(kv[2])}
    end
    return f
end

local function ws(s, i)
    return string.find(s, '[^ \t\r\n]', i) or (#s + 1)
end

-- s:byte(i) is a '"': the index of its closing quote
local function string_end(s, i)
    while true do
        local j = string.find(s, '["\\]', i + 1)
        if not j or string.byte(s, j) == 34 then
            return j
        end
        i = j + 1
    end
end

-- s:byte(i) is '{' or '[': the index of the bracket that closes it
local function nested_end(s, i)
    local depth = 0
    while true do
        local j = string.find(s, '[%[%]{}"]', i)
        if not j then return nil end
        local c = string.byte(s, j)
        if c == 34 then
            j = string_end(s, j)
            if not j then return nil end
        elseif c == 123 or c == 91 then
            depth = depth + 1
        else
            depth = depth - 1
            if depth == 0 then return j end
        end
        i = j + 1
    end
end

local function value_matches(s, i, e, want)
    local c = string.byte(s, i)
    local v = string.sub(s, i, e)
    local num, str
    if c == 34 then
        str = string.sub(v, 2, -2)
        if string.find(str, '\\', 1, true) then
            local ok, d = pcall(cjson.decode, v)
            if not ok then return false end
            str = d
        end
    elseif c == 116 or c == 102 then
        str = v
    elseif c ~= 110 then
        num = sd.number_key(v)
        if not num then return false end
    else
        return false
    end
    for _, w in ipairs(want) do
        if str then
            if str ~= w.text then return false end
        elseif num ~= w.number then
            return false
        end
    end
    return true
end

-- Whether the metadata text m (nil: none) matches every filter of f
function sd.meta_match(m, f)
    if not m or string.byte(m, 1) ~= 123 then
        return false
    end
    local found = 0
    local i = ws(m, 2)
    if string.byte(m, i) == 125 then
        return f.n == 0
    end
    while string.byte(m, i) == 34 do
        local e = string_end(m, i)
        if not e then return false end
        local k = string.sub(m, i + 1, e - 1)
        if string.find(k, '\\', 1, true) then
            local ok, d = pcall(cjson.decode, string.sub(m, i, e))
            if not ok then return false end
            k = d
        end
        i = ws(m, e + 1)
        if string.byte(m, i) ~= 58 then return false end
        i = ws(m, i + 1)
        local c = string.byte(m, i)
        if c == 34 then
            e = string_end(m, i)
        elseif c == 123 or c == 91 then
            e = nested_end(m, i)
        else
            e = (string.find(m, '[,}%s]', i) or (#m + 1)) - 1
            if e < i then return false end
        end
        if not e then return false end
        local want = f.keys[k]
        if want then
            if not value_matches(m, i, e, want) then return false end
            found = found + 1
            if found == f.n then return true end
        end
        i = ws(m, e + 1)
        if string.byte(m, i) ~= 44 then break end
        i = ws(m, i + 1)
    end
    return found == f.n
end

-- The cost budget.  A script that examines records the caller does not
-- bound by itself (a listing page, a page of notes or of the feed, a job's
-- chunk) counts what it spends and stops once it reaches sd.budget, handing
-- back a cursor to go on from: its Redis time is bounded by the bytes it
-- touches, not only by the number of records.  The units are bytes: every
-- byte read, written or returned counts 1, every byte lowercased or decoded
-- as JSON sd.work more on top, every command the script runs sd.call (its
-- fixed cost is about that of reading 2 KiB), every element of a reply
-- sd.element.  Measured on the 2-core
-- machine of README's Reliability section, a unit costs about 2 ns, so
-- the budget is about a millisecond of Redis time; a script goes past it by
-- at most one record (at most about 330,000 units: a 64 KiB note read and
-- lowercased, or a customer's 16 KiB of metadata read, walked, written and
-- emitted).
sd.budget, sd.call, sd.work, sd.element = 524288, 2048, 4, 128

-- what a reply costs: its bytes, a string or an array of strings and nils
-- (false), and sd.element for each element (made into a Lua value and
-- back: 254 short strings cost about as much as 32 KiB)
function sd.size(r)
    if type(r) == 'string' then
        return #r
    end

    local n = 0
    if type(r) == 'table' then
        n = sd.element * #r
        for i = 1, #r do
            local v = r[i]
            if type(v) == 'string' then n = n + #v end
        end
    end
    return n
end

-- the same for an array of strings and nils (false) only, the reply of an
-- HMGET or an HGETALL: without a type() call per element, a third of the
-- cost of a customer's HMGET in list.lua
function sd.strings_size(r)
    local n = sd.element * #r
    for i = 1, #r do n = n + #(r[i] or '') end
    return n
end

-- The customer filters of list.lua and job_chunk.lua (EVAL scripts cannot
-- share code otherwise).  f: email and name (lowercase substrings) or nil,
-- meta: sd.meta_prepare() of the metadata pairs, or nil; h: the fields
-- read (e, n, m).  Returns whether it matches and the work done (units):
-- sd.filter_work() of those fields at most, and sd.walk a byte more for a
-- customer whose numbers must be compared exactly.
--
-- Metadata is gone through only to filter on it, and first searched: in a
-- text without escapes (what every JSON encoder writes for plain keys and
-- values), a top-level member is written "key": and a string member
-- "key":"value", so a text without them holds no match.  What is left is
-- decoded (cjson, in C): a string or a boolean member decides at once, a
-- number whose double differs from the filter's cannot have its exact
-- value; only a number of the same double is compared exactly, by
-- sd.meta_match(), whose walk of the text keeps numbers exact but costs
-- about sd.walk units a byte (measured: about 40 ns a byte here).
sd.walk = 24

local function string_only(text)
    return not sd.number_key(text) and text ~= 'true' and text ~= 'false'
end

-- written as it is between quotes in JSON
local function literal(text)
    return not string.find(text, '["\\%c]')
end

function sd.meta_prepare(pairs_)
    local f = sd.meta_filter(pairs_)
    f.pairs = pairs_
    for _, kv in ipairs(pairs_) do
        kv.number = sd.number_key(kv[2]) and tonumber(kv[2])
        kv.search = literal(kv[1]) and ('"' .. kv[1] .. '":'
                    .. ((string_only(kv[2]) and literal(kv[2]))
                        and ('"' .. kv[2] .. '"') or ''))
    end
    return f
end

-- the decoded member v against one filter: false, true, or "exact" when
-- only the exact comparison can tell
local function member_matches(v, kv)
    local t = type(v)
    if t == 'string' then return v == kv[2] end
    if t == 'boolean' then return tostring(v) == kv[2] end
    if t == 'number' and kv.number and v == kv.number then return 'exact' end
    return false
end

function sd.matches(f, h)
    local work = 0

    if f.email then
        if not h.e then return false, work end
        work = work + sd.work * #h.e
        if not string.find(string.lower(h.e), f.email, 1, true) then
            return false, work
        end
    end

    if f.name then
        if not h.n then return false, work end
        work = work + sd.work * #h.n
        if not string.find(string.lower(h.n), f.name, 1, true) then
            return false, work
        end
    end

    local fm, m = f.meta, h.m
    if fm then
        if not m then return false, work end

        work = work + #m
        if not string.find(m, '\\', 1, true) then
            for _, kv in ipairs(fm.pairs) do
                if kv.search then
                    work = work + #m
                    if not string.find(m, kv.search, 1, true) then
                        return false, work
                    end
                end
            end
        end

        work = work + sd.work * #m
        local ok, md = pcall(cjson.decode, m)
        -- what cjson cannot take (nested deeper than it goes) is walked
        local exact = not ok
        if ok then
            if type(md) ~= 'table' then return false, work end
            for _, kv in ipairs(fm.pairs) do
                local yes = member_matches(md[kv[1]], kv)
                if not yes then return false, work end
                exact = exact or yes == 'exact'
            end
        end

        if exact then
            work = work + sd.walk * #m
            if not sd.meta_match(m, fm) then return false, work end
        end
    end

    return true, work
end

-- what sd.matches(f, ...) costs at most on the fields r it read, but for
-- the exact comparison of numbers (a customer's at most)
function sd.filter_work(f, r)
    local per = sd.work
    if f.meta then
        per = per + 1 + #f.meta.pairs + sd.work
    end
    return per * sd.size(r)
end

-- the customer fields a filter reads, and the others
function sd.filter_fields(f)
    local need, rest = {}, {}
    for _, name in ipairs(sd.customer_fields) do
        if (name == 'e' and f.email) or (name == 'n' and f.name)
           or (name == 'm' and f.meta)
        then
            need[#need + 1] = name
        else
            rest[#rest + 1] = name
        end
    end
    return need, rest
end
