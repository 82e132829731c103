-- Enter the prompt-cache gate of tierroute/llm/caching.py: warm, primer or wait.
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 1 then return 'warm' end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[2]) then return 'primer' end
return 'wait'
