-- The shared token buckets of tierroute/llm/ratelimit.py (its comment above SCRIPT gives KEYS and ARGV).
local mode = ARGV[8]
if mode == 'acquire' then
  local cooldown = redis.call('PTTL', KEYS[2])
  if cooldown > 0 then return {cooldown, 'cooldown'} end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local burst_s = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'ts', 'b1', 'b2', 'b3')
local elapsed = math.max(0, now - (tonumber(state[1]) or now))
local levels, caps, rates = {}, {}, {}
local wait, reason = 0, ''
for i = 1, 3 do
  local limit = tonumber(ARGV[i])
  if limit > 0 then
    local rate = limit / (1000 * tonumber(ARGV[9]))
    local cap = math.max(limit * burst_s / 60, 1)
    local level = math.min(cap, (tonumber(state[i + 1]) or cap) + elapsed * rate)
    local amount = tonumber(ARGV[i + 4])
    if mode == 'acquire' then
      local need = math.min(amount, cap)
      if level < need then
        local w = math.ceil((need - level) / rate)
        if w > wait then wait, reason = w, tostring(i) end
      end
      level = level - amount
    else
      level = math.min(cap, level + amount)
    end
    levels[i], caps[i], rates[i] = level, cap, rate
  end
end
if wait > 0 then return {wait, reason} end
local fields, ttl = {'ts', now}, 1000
for i = 1, 3 do
  if levels[i] ~= nil then
    table.insert(fields, 'b' .. i)
    table.insert(fields, tostring(levels[i]))
    ttl = math.max(ttl, math.ceil((caps[i] - levels[i]) / rates[i]) + 1000)
  end
end
redis.call('HSET', KEYS[1], unpack(fields))
-- A bucket left alone refills completely, so its key can go once it would be full.
redis.call('PEXPIRE', KEYS[1], ttl)
return {0, ''}
