-- wrk script: POST pre-signed WhatsApp webhooks to /webhook.
--
-- BODIES (env) is the TSV written by gen.py: `signature TAB body` per line. Thread i of n
-- sends lines i, i+n, i+2n, … so no two threads send the same wamid.
-- ONCE=1: send each line exactly once, then stop (for the end-to-end runs). After a
-- thread's last POST it sends `GET /load-done` (404) while it waits for the POSTs still
-- in flight, and it stops once every POST was answered: the run ends after exactly N
-- POSTs. Without ONCE it cycles through its lines until wrk's -d ends.
-- With ONCE, done() prints `posts=… ok=… other=…`.

local threads = {}
local counter = 1

function setup(thread)
  thread:set("tid", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local path = os.getenv("BODIES") or error("set BODIES to the TSV written by gen.py")
  local once = os.getenv("ONCE") == "1"
  local nthreads = tonumber(os.getenv("THREADS") or "2")
  local f = assert(io.open(path, "rb"))
  reqs = {}
  local i = 0
  for line in f:lines() do
    if i % nthreads == tid - 1 then
      local sig, body = line:match("^([^\t]+)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", "/webhook",
        { ["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = sig }, body)
    end
    i = i + 1
  end
  f:close()
  if #reqs == 0 then error("no lines for thread " .. tid .. " in " .. path) end
  idle = wrk.format("GET", "/load-done")
  next_req, posts, ok, other, answered, stop_after = 1, 0, 0, 0, 0, (once and #reqs or nil)
  -- wrk calls the first thread's request() once before the run, only to count the
  -- requests in what it returns (pipelining): hand it the idle request, so no body is
  -- skipped.
  verify_call = (tid == 1)
end

function request()
  if verify_call then verify_call = false; return idle end
  if stop_after and posts >= stop_after then return idle end
  local r = reqs[next_req]
  next_req = next_req % #reqs + 1
  posts = posts + 1
  return r
end

-- Only with ONCE: once a thread has sent its last POST, space out its idle requests so
-- they do not compete with the service while the last answers come back.
if os.getenv("ONCE") == "1" then
  function delay()
    if posts >= stop_after then return 5 end
    return 0
  end
end

-- Only with ONCE: a Lua response() makes wrk parse every reply, which costs throughput,
-- so the throughput runs leave it out and read wrk's own "Non-2xx" count instead.
if os.getenv("ONCE") ~= "1" then return end

function response(status, headers, body)
  if status == 404 then return end
  answered = answered + 1
  if status == 200 then ok = ok + 1 else other = other + 1 end
  if answered >= stop_after then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local p, o, x = 0, 0, 0
  for _, t in ipairs(threads) do
    p = p + t:get("posts"); o = o + t:get("ok"); x = x + t:get("other")
  end
  io.write(string.format("posts=%d ok=%d other=%d\n", p, o, x))
end
