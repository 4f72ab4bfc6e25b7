-- cluster.lua - distributed mode's state changes and queries, run atomically
-- by Redis (EVAL/EVALSHA with no keys; a single Redis or a Sentinel-managed
-- master, never Redis Cluster). shared/cluster.c builds the calls and
-- parses the answers; docs/architecture.md ("Cluster state") describes the
-- keys. ARGV[1] is the operation, ARGV[2] the prefix "mn:{database}:",
-- ARGV[3] the calling node's id.
--
-- Keys, after the prefix P:
--   #nodes             zset node id -> last heartbeat (ms, Redis TIME); 0 = left
--   #node:{id}         hash of what node id holds: "n\0app\0chan" -> its
--                      subscriber count, "m\0app\0chan\0user" -> 1,
--                      "u\0app\0user" -> 1 (signed in there)
--   #dead:{id}         a node declared dead (1 h), so it can tell when it returns
--   #token             counter behind the tokens of delayed webhooks
--   {app}:chans        set of occupied channels
--   {app}:n:{chan}     hash node id -> subscriber count on that node
--   {app}:m:{chan}     hash user id -> nodes holding the user (presence)
--   {app}:i:{chan}     hash user id -> user_info JSON
--   {app}:u            hash user id -> nodes where the user is signed in
--   {app}:c:{chan}     the cache channel's last event: "{event length}:{event}{data}"
--   {app}:wv:{chan}    token of a channel_vacated webhook waiting its 3 s
--   {app}:wm:{chan}\0{user}  the same for member_removed
--   {app}:cm:{chan}    a cache_miss webhook was sent (5 s)
-- Pub/sub: P{app}:{chan} carries a channel's events as
-- "{node}\n{excluded socket_id}\n{frame}"; P#node:{id} carries what one node
-- is told alone (join and watchlist snapshots); P#ctl carries fleet-wide
-- news: "w\n{app}\n{1|0}{user}" (a user came online, went offline) and
-- "t\n{app}\n{user}" (terminate_connections, published by the nodes).
--
-- Transitions come back as groups of five strings: kind, app, channel, a, b.
--   o / O  channel occupied (O: again within a vacated's delay; no webhook)
--   v      channel vacated, a = token (send after 3 s if confirm says so)
--   a / A  member added, a = user (A: back within a member_removed's delay)
--   r      member removed, a = user, b = token
--   c      subscription count changed, a = the count
--   m      a cache channel's join found no cached event (first in 5 s: cache_miss)
local op, P, node = ARGV[1], ARGV[2], ARGV[3]
local NODES = P .. '#nodes'
local ANY = '0000000000000000\n\n' -- envelope: every node delivers, nobody excluded
local out = {}
local silent = false

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function push(kind, app, chan, a, b)
    out[#out + 1] = kind
    out[#out + 1] = app
    out[#out + 1] = chan
    out[#out + 1] = a or ''
    out[#out + 1] = b or ''
end

local function token()
    return node .. ':' .. redis.call('INCR', P .. '#token')
end

local function total(key)
    local s = 0
    for _, v in ipairs(redis.call('HVALS', key)) do
        s = s + tonumber(v)
    end
    return s
end

local function publish(app, chan, event, inner)
    redis.call('PUBLISH', P .. app .. ':' .. chan,
        ANY .. '{"event":"' .. event .. '","channel":' .. cjson.encode(chan) ..
        ',"data":' .. cjson.encode(inner) .. '}')
end

-- Node n's subscriber count of app/chan becomes c.
local function set_count(n, app, chan, c)
    local ck = P .. app .. ':n:' .. chan
    local f = 'n\0' .. app .. '\0' .. chan
    local before = total(ck)
    if c > 0 then
        redis.call('HSET', ck, n, c)
        redis.call('HSET', P .. '#node:' .. n, f, c)
    else
        redis.call('HDEL', ck, n)
        redis.call('HDEL', P .. '#node:' .. n, f)
    end
    local after = total(ck)
    if before == after then
        return
    end
    local wk = P .. app .. ':wv:' .. chan
    if before == 0 then
        redis.call('SADD', P .. app .. ':chans', chan)
        if redis.call('DEL', wk) == 1 then
            push('O', app, chan)
        elseif not silent then
            push('o', app, chan)
        end
    elseif after == 0 then
        redis.call('SREM', P .. app .. ':chans', chan)
        local tok = token()
        redis.call('SET', wk, tok, 'PX', 5000)
        push('v', app, chan, tok)
    end
    push('c', app, chan, tostring(after))
end

-- Whether node n holds user in app/chan becomes present; false when the
-- channel is full (max: the most members, nil for no limit).
local function set_member(n, app, chan, user, info, present, max)
    local nk = P .. '#node:' .. n
    local f = 'm\0' .. app .. '\0' .. chan .. '\0' .. user
    local had = redis.call('HEXISTS', nk, f) == 1
    if had == present then
        return true
    end
    local mk, ik = P .. app .. ':m:' .. chan, P .. app .. ':i:' .. chan
    if present and max and redis.call('HEXISTS', mk, user) == 0 and
        redis.call('HLEN', mk) >= max then
        return false
    end
    local wk = P .. app .. ':wm:' .. chan .. '\0' .. user
    if present then
        redis.call('HSET', nk, f, 1)
        if redis.call('HINCRBY', mk, user, 1) == 1 then
            redis.call('HSET', ik, user, info)
            if not silent then
                publish(app, chan, 'pusher_internal:member_added',
                    '{"user_id":' .. cjson.encode(user) .. ',"user_info":' .. info .. '}')
                if redis.call('DEL', wk) == 1 then
                    push('A', app, chan, user)
                else
                    push('a', app, chan, user)
                end
            end
        end
    else
        redis.call('HDEL', nk, f)
        if redis.call('HINCRBY', mk, user, -1) <= 0 then
            redis.call('HDEL', mk, user)
            redis.call('HDEL', ik, user)
            publish(app, chan, 'pusher_internal:member_removed',
                '{"user_id":' .. cjson.encode(user) .. '}')
            local tok = token()
            redis.call('SET', wk, tok, 'PX', 5000)
            push('r', app, chan, user, tok)
        end
    end
    return true
end

-- Whether node n has user signed in (in app) becomes present.
local function set_user(n, app, user, present)
    local nk = P .. '#node:' .. n
    local f = 'u\0' .. app .. '\0' .. user
    local had = redis.call('HEXISTS', nk, f) == 1
    if had == present then
        return
    end
    local uk = P .. app .. ':u'
    if present then
        redis.call('HSET', nk, f, 1)
        if redis.call('HINCRBY', uk, user, 1) == 1 and not silent then
            redis.call('PUBLISH', P .. '#ctl', 'w\n' .. app .. '\n1' .. user)
        end
    else
        redis.call('HDEL', nk, f)
        if redis.call('HINCRBY', uk, user, -1) <= 0 then
            redis.call('HDEL', uk, user)
            redis.call('PUBLISH', P .. '#ctl', 'w\n' .. app .. '\n0' .. user)
        end
    end
end

-- "n\0app\0chan", "m\0app\0chan\0user" or "u\0app\0user" -> kind, app,
-- chan (the user for 'u'), user.
local function split(f)
    local a = string.find(f, '\0', 3, true)
    local app = string.sub(f, 3, a - 1)
    local c = string.find(f, '\0', a + 1, true)
    if c == nil then
        return string.sub(f, 1, 1), app, string.sub(f, a + 1)
    end
    return string.sub(f, 1, 1), app, string.sub(f, a + 1, c - 1), string.sub(f, c + 1)
end

-- Removes everything node n holds.
local function release(n, keep)
    for _, f in ipairs(redis.call('HKEYS', P .. '#node:' .. n)) do
        if keep == nil or not keep[f] then
            local kind, app, chan, user = split(f)
            if kind == 'n' then
                set_count(n, app, chan, 0)
            elseif kind == 'm' then
                set_member(n, app, chan, user, nil, false)
            elseif kind == 'u' then
                set_user(n, app, chan, false)
            end
        end
    end
end

local function registered()
    return redis.call('ZSCORE', NODES, node) ~= false
end

-- Whether the calling node may change state: registered, or registering
-- now (fresh: it never registered; not if it was declared dead).
local function may_change(fresh)
    if registered() then
        return true
    end
    if fresh ~= '1' or redis.call('EXISTS', P .. '#dead:' .. node) == 1 then
        return false
    end
    redis.call('ZADD', NODES, now_ms(), node)
    return true
end

local function answer(status)
    table.insert(out, 1, status)
    return out
end

if op == 'sub' then
    -- app, chan, count ('-': unchanged), member ('-' none, '1' present, '0' absent), user,
    -- info, join token ('' none), cache ('1': a cache channel's join), fresh
    -- ('1': the node never registered yet; it does now), the most members
    -- ('' no limit). A join's snapshot names the user (member '1' again, or
    -- '-' when the node no longer holds it): if the node does not hold it
    -- (the channel was full), the snapshot says 'f'.
    local app, chan = ARGV[4], ARGV[5]
    if not may_change(ARGV[12]) then
        return {'unregistered'}
    end
    if ARGV[6] ~= '-' then
        set_count(node, app, chan, tonumber(ARGV[6]))
    end
    local status = 'ok'
    if ARGV[7] ~= '-' and
        not set_member(node, app, chan, ARGV[8], ARGV[9], ARGV[7] == '1', tonumber(ARGV[13])) then
        status = 'full'
    end
    if ARGV[10] ~= '' and ARGV[8] ~= '' and
        redis.call('HEXISTS', P .. '#node:' .. node, 'm\0' .. app .. '\0' .. chan .. '\0' .. ARGV[8]) == 0 then
        redis.call('PUBLISH', P .. '#node:' .. node, ARGV[10] .. '\nf')
    elseif ARGV[10] ~= '' then
        -- The joiner's snapshot, published after everything above, so that
        -- the node's pub/sub connection sees it in order with the channel's
        -- events: "{token}\n{cache part}{presence part}"; cache part '-'
        -- (not a cache channel), 'x' (miss) or 'c{length}:{entry}';
        -- presence part: "{length}:{id}{length}:{info}" per member.
        local parts = {ARGV[10], '\n'}
        if ARGV[11] == '1' then
            local e = redis.call('GET', P .. app .. ':c:' .. chan)
            if e then
                parts[#parts + 1] = 'c' .. #e .. ':' .. e
            else
                parts[#parts + 1] = 'x'
                if redis.call('SET', P .. app .. ':cm:' .. chan, 1, 'PX', 5000, 'NX') then
                    push('m', app, chan)
                end
            end
        else
            parts[#parts + 1] = '-'
        end
        if string.sub(chan, 1, 9) == 'presence-' then
            local h = redis.call('HGETALL', P .. app .. ':i:' .. chan)
            for i = 1, #h do
                parts[#parts + 1] = #h[i] .. ':' .. h[i]
            end
        end
        redis.call('PUBLISH', P .. '#node:' .. node, table.concat(parts))
    end
    return answer(status)
elseif op == 'user' then
    -- app, user, '1' signed in / '0' not any more on this node, fresh
    if not may_change(ARGV[7]) then
        return {'unregistered'}
    end
    set_user(node, ARGV[4], ARGV[5], ARGV[6] == '1')
    return answer('ok')
elseif op == 'watch' then
    -- app, token, user ids: publishes "{token}\nw{flags}" to the node's own
    -- name, one '1' (online) or '0' per id, in order with P#ctl's news.
    local uk = P .. ARGV[4] .. ':u'
    local flags = {}
    for i = 6, #ARGV do
        flags[#flags + 1] = redis.call('HEXISTS', uk, ARGV[i]) == 1 and '1' or '0'
    end
    redis.call('PUBLISH', P .. '#node:' .. node, ARGV[5] .. '\nw' .. table.concat(flags))
    return {'ok'}
elseif op == 'beat' then
    -- timeout ms, '1' to record the heartbeat. Answers the node's state
    -- ('ok', 'lost': unknown to Redis, 'dead': declared dead), how many
    -- nodes are live (heartbeat within the timeout) and the nodes past it.
    local now = now_ms()
    local state = 'ok'
    if not registered() then
        if redis.call('EXISTS', P .. '#dead:' .. node) == 1 then
            state = 'dead'
        else
            state = 'lost'
        end
    elseif ARGV[5] == '1' then
        redis.call('ZADD', NODES, now, node)
    end
    local res = {state, tostring(redis.call('ZCOUNT', NODES, now - tonumber(ARGV[4]), '+inf'))}
    for _, n in ipairs(redis.call('ZRANGEBYSCORE', NODES, '-inf', now - tonumber(ARGV[4]))) do
        if n ~= node then
            res[#res + 1] = n
        end
    end
    return res
elseif op == 'reap' then
    -- dead node, timeout ms: removes its traces if it is still overdue.
    local dead = ARGV[4]
    local s = redis.call('ZSCORE', NODES, dead)
    if not s or tonumber(s) > now_ms() - tonumber(ARGV[5]) then
        return {'ok'}
    end
    release(dead, nil)
    redis.call('DEL', P .. '#node:' .. dead)
    redis.call('ZREM', NODES, dead)
    redis.call('SET', P .. '#dead:' .. dead, 1, 'EX', 3600)
    return answer('ok')
elseif op == 'sync' then
    -- '1' silent (Redis lost our state: restore it without telling anyone),
    -- then 'n', app, chan, count | 'm', app, chan, user, info | 'u', app,
    -- user: all the node holds. Registers the node.
    silent = ARGV[4] == '1'
    local keep = {}
    local i = 5
    while i <= #ARGV do
        if ARGV[i] == 'n' then
            keep['n\0' .. ARGV[i + 1] .. '\0' .. ARGV[i + 2]] = true
            set_count(node, ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]))
            i = i + 4
        elseif ARGV[i] == 'u' then
            keep['u\0' .. ARGV[i + 1] .. '\0' .. ARGV[i + 2]] = true
            set_user(node, ARGV[i + 1], ARGV[i + 2], true)
            i = i + 3
        else
            keep['m\0' .. ARGV[i + 1] .. '\0' .. ARGV[i + 2] .. '\0' .. ARGV[i + 3]] = true
            set_member(node, ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], true)
            i = i + 5
        end
    end
    release(node, keep)
    redis.call('ZADD', NODES, now_ms(), node)
    redis.call('DEL', P .. '#dead:' .. node)
    return answer('ok')
elseif op == 'ready' then
    -- timeout ms, nodes live before the outage: whether every live node
    -- (heartbeat within the timeout, or as many as the caller knew, for a
    -- Redis that lost its data) is subscribed to P#ctl again (1/0), e.g.
    -- after a failover: a trigger accepted before would miss the nodes
    -- still reconnecting.
    local alive = math.max(redis.call('ZCOUNT', NODES, now_ms() - tonumber(ARGV[4]), '+inf'),
        tonumber(ARGV[5]))
    local subs = redis.call('PUBSUB', 'NUMSUB', P .. '#ctl')[2]
    return subs >= alive and 1 or 0
elseif op == 'leave' then
    -- A clean stop: the others remove what this node held at their next
    -- heartbeat check.
    redis.call('ZADD', NODES, 'XX', 0, node)
    return {'ok'}
elseif op == 'confirm' then
    -- 'v' app chan token | 'r' app chan user token: whether the delayed
    -- webhook is still due (nothing came back within the delay).
    local key, tok
    if ARGV[4] == 'v' then
        key, tok = P .. ARGV[5] .. ':wv:' .. ARGV[6], ARGV[7]
    else
        key, tok = P .. ARGV[5] .. ':wm:' .. ARGV[6] .. '\0' .. ARGV[7], ARGV[8]
    end
    if redis.call('GET', key) == tok then
        redis.call('DEL', key)
        return 1
    end
    return 0
elseif op == 'cache' then
    -- app, chan, entry, ttl ms: a cache channel's last event.
    redis.call('SET', P .. ARGV[4] .. ':c:' .. ARGV[5], ARGV[6], 'PX', tonumber(ARGV[7]))
    return 1
elseif op == 'channels' then
    -- app, prefix: name, subscription count, user count of each occupied
    -- channel whose name starts with prefix.
    local app, prefix = ARGV[4], ARGV[5]
    local res = {}
    for _, ch in ipairs(redis.call('SMEMBERS', P .. app .. ':chans')) do
        if string.sub(ch, 1, #prefix) == prefix then
            local t = total(P .. app .. ':n:' .. ch)
            if t > 0 then
                res[#res + 1] = ch
                res[#res + 1] = t
                res[#res + 1] = redis.call('HLEN', P .. app .. ':m:' .. ch)
            end
        end
    end
    return res
elseif op == 'counts' then
    -- app, channels...: subscription count and user count of each.
    local res = {}
    for i = 5, #ARGV do
        res[#res + 1] = total(P .. ARGV[4] .. ':n:' .. ARGV[i])
        res[#res + 1] = redis.call('HLEN', P .. ARGV[4] .. ':m:' .. ARGV[i])
    end
    return res
elseif op == 'channel' then
    -- app, chan: subscription count, user count, cache entry (or false),
    -- its remaining ttl ms.
    local app, chan = ARGV[4], ARGV[5]
    local ck = P .. app .. ':c:' .. chan
    return {total(P .. app .. ':n:' .. chan), redis.call('HLEN', P .. app .. ':m:' .. chan),
        redis.call('GET', ck), redis.call('PTTL', ck)}
elseif op == 'users' then
    return redis.call('HKEYS', P .. ARGV[4] .. ':m:' .. ARGV[5])
end
return redis.error_reply('cluster.lua: unknown operation ' .. tostring(op))
