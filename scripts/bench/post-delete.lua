-- wrk script: POST a lock on a fresh UUID; once its 201 arrives, DELETE it. Lua state is
-- shared by a thread's connections, so deletes are queued from POST responses (the lock
-- path is in the body) rather than assumed to follow their POST.
local counter = 0
local queue = {}
local threads_created = 0

-- Runs in the main Lua state; `thread:set` makes `thread_id` a global of each thread's state.
function setup(thread)
  thread:set("thread_id", threads_created)
  threads_created = threads_created + 1
end

function init(args)
  math.randomseed(os.time() + (thread_id or 0) * 7919)
end

function request()
  local path = table.remove(queue)
  if path then
    return wrk.format("DELETE", path)
  end
  counter = counter + 1
  path = string.format("/v1/api/lock/uuid/%08x-%04x-4%03x-8%03x-%012x",
    math.random(0, 0x7fffffff), thread_id or 0, counter % 0xfff, math.random(0, 0xfff), counter)
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, '{"expires_in":30}')
end

function response(status, headers, body)
  if status == 201 then
    local lock = string.match(body, '"lock":"(uuid/[^"]+)"')
    if lock then table.insert(queue, "/v1/api/lock/" .. lock) end
  end
end


function done(summary, latency, requests)
  io.write(string.format("socket errors: connect %d, read %d, write %d, timeout %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
