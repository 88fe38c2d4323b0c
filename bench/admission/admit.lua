-- wrk script of the admission benchmark: POST /v1/plays spread over many accounts.
-- Each request picks an account uniformly from ACCOUNTS; 95 % of requests come from one of the
-- account's LIMIT "home" devices (first an admission, later renewals), 5 % from one of 1000
-- other devices (refused with 409 while the home devices hold every slot). Counts statuses
-- per thread and prints them as one JSON line at the end.
-- Environment: HB_API_KEY (required), HB_ACCOUNTS (default 100000), HB_LIMIT (default 3).

local api_key = os.getenv("HB_API_KEY")
local accounts = tonumber(os.getenv("HB_ACCOUNTS") or "100000")
local limit = tonumber(os.getenv("HB_LIMIT") or "3")
local threads = {}
local headers = {
  ["Authorization"] = "Bearer " .. (api_key or ""),
  ["Content-Type"] = "application/json",
}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + id)
  ok, refused, other = 0, 0, 0
end

function request()
  local a = math.random(1, accounts)
  local d
  if math.random() < 0.95 then d = math.random(1, limit) else d = 100 + math.random(1, 1000) end
  local body = string.format('{"account":"acct%d","device":"dev%d"}', a, d)
  return wrk.format("POST", "/v1/plays", headers, body)
end

function response(status, hdrs, body)
  if status == 200 then ok = ok + 1
  elseif status == 409 then refused = refused + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local s = {ok = 0, refused = 0, other = 0}
  for _, t in ipairs(threads) do
    for k, _ in pairs(s) do s[k] = s[k] + (t:get(k) or 0) end
  end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"ok":%d,"refused":%d,"other":%d,' ..
    '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,' ..
    '"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, s.ok, s.refused, s.other,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
