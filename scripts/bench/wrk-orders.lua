-- wrk script: POST /v3/orders with a valid JWT, rotating over the tokens in $TOKENS
-- (space-separated) so that sessions spread over the gateway's shards.
local tokens = {}
for t in string.gmatch(os.getenv("TOKENS") or "", "%S+") do tokens[#tokens + 1] = t end
local body = '{"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":100,"price":15000}'
local i = 0
local reqs = {}
for k, t in ipairs(tokens) do
  reqs[k] = wrk.format("POST", "/v3/orders", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. t,
  }, body)
end
if #reqs == 0 then
  reqs[1] = wrk.format("POST", "/v3/orders", { ["Content-Type"] = "application/json" }, body)
end

request = function()
  i = i % #reqs + 1
  return reqs[i]
end

local codes = {}
response = function(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end

done = function(summary, latency, requests)
  -- wrk's own count of non-2xx is printed above; this line is for scripts.
  io.write(string.format("wrk_summary requests=%d rps=%.0f p50_us=%d p99_us=%d non2xx=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    (summary.errors.status or 0)))
end
