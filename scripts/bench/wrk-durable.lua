-- wrk script: POST /orders (the durable path) with a valid JWT, a unique Idempotency-Key per
-- request and the durability level in $DURABILITY (volatile or local; default local).
-- Tokens rotate over $TOKENS (space-separated).
local tokens = {}
for t in string.gmatch(os.getenv("TOKENS") or "", "%S+") do tokens[#tokens + 1] = t end
local level = os.getenv("DURABILITY") or "local"
local body = '{"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":100,"price":15000}'
local prefix = string.format("w%x%x", os.time(), math.random(1, 1e9))
local i = 0
local n = 0

request = function()
  i = i % math.max(#tokens, 1) + 1
  n = n + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Durability"] = level,
    ["Idempotency-Key"] = prefix .. "-" .. n,
  }
  if #tokens > 0 then headers["Authorization"] = "Bearer " .. tokens[i] end
  return wrk.format("POST", "/orders", headers, body)
end

done = function(summary, latency, requests)
  io.write(string.format("wrk_summary requests=%d rps=%.0f p50_us=%d p99_us=%d non2xx=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    (summary.errors.status or 0)))
end
