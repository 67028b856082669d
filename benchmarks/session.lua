-- wrk script: browse with session cookies, as visitors do.
-- The first responses' Set-Cookie headers fill a pool of sessions; after that every request
-- carries one of them in turn: nine in ten read the session (/), one in ten adds to the cart.
-- With the argument "ceiling", every request asks for the page that never touches the session.
local pool = {}
local pool_size = 50
local counter = 0
local ceiling = false

init = function(args)
  ceiling = args[1] == "ceiling"
end

request = function()
  counter = counter + 1
  if ceiling then
    return wrk.format("GET", "/untouched/")
  end
  if #pool < pool_size then
    return wrk.format("GET", "/add/")
  end
  local path = "/"
  if counter % 10 == 0 then
    path = "/add/"
  end
  return wrk.format("GET", path, { ["Cookie"] = pool[(counter % pool_size) + 1] })
end

response = function(status, headers, body)
  local set_cookie = headers["Set-Cookie"]
  if set_cookie and #pool < pool_size then
    local cookie = string.match(set_cookie, "(sessionid=[^;]+)")
    if cookie then
      table.insert(pool, cookie)
    end
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
