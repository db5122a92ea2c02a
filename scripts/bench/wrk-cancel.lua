-- wrk script: POST /orders/ord_%016x/cancel for every id from $FIRST to $LAST (decimal order
-- counters of shard $SHARD, default 0), once each, with the token in $TOKEN (the account that
-- owns the orders). Once every id was sent and answered the thread stops and creates the file
-- $DONE_FILE (if set): wrk itself sleeps for its whole -d, so the caller watches for the file
-- and ends wrk with SIGINT. Run it with one thread (-t1) so that no id is sent twice.
local token = os.getenv("TOKEN") or ""
local done_file = os.getenv("DONE_FILE")
local first = tonumber(os.getenv("FIRST") or "1")
local last = tonumber(os.getenv("LAST") or "0")
local shard = tonumber(os.getenv("SHARD") or "0")
local next_id = first
local total = last - first + 1
-- Globals, so that done() can read them from the thread (thread:get).
answered, ok, gone, final, other = 0, 0, 0, 0, 0

-- wrk calls request() once before the run to count pipelined requests and never sends that
-- one: the first call must not use up an id.
local probed = false

request = function()
  local id = next_id
  if not probed then
    probed = true
  elseif id > last then
    -- Everything was sent: repeat the last id (an answer from memory, no journal record)
    -- until the outstanding answers are in.
    id = last
  else
    next_id = next_id + 1
  end
  local headers = { ["Content-Type"] = "application/json" }
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  -- Lua's %x takes 32 bits only: print the 16 hex digits in 16 + 24 + 24-bit pieces.
  local path = string.format("/orders/ord_%04x%06x%06x/cancel", shard,
    math.floor(id / 2 ^ 24), id % 2 ^ 24)
  return wrk.format("POST", path, headers, "")
end

response = function(status, headers, body)
  answered = answered + 1
  if status == 202 then ok = ok + 1
  elseif status == 404 then gone = gone + 1
  elseif status == 409 then final = final + 1
  else other = other + 1 end
  if answered == total then
    if done_file then io.open(done_file, "w"):close() end
    wrk.thread:stop()
  end
end

local threads = {}
setup = function(thread) threads[#threads + 1] = thread end

done = function(summary, latency, requests)
  local a, k, g, f, o = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("answered"); k = k + t:get("ok"); g = g + t:get("gone")
    f = f + t:get("final"); o = o + t:get("other")
  end
  io.write(string.format(
    "wrk_cancel answered=%d accepted_202=%d not_found_404=%d final_409=%d other=%d rps=%.0f p50_us=%d p99_us=%d\n",
    a, k, g, f, o, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99)))
end
