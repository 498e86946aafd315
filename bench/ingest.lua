-- wrk script for bench/ingest.py: every request a distinct callback, Wordy and Shared Workforce in turn.
-- Arguments (after `--`): first number, Wordy token, Shared Workforce key, mode (both | wordy | sharedworkforce).
-- done() prints one line "WRK_RESULT {json}" that bench/ingest.py reads.

local threads = {}
local counter = 0
local first, offset = 0, 0
local stride = 64 -- up to 64 threads, each numbering its own callbacks: none repeats another's
local token, key, mode = "", "", "both"
local json = { ["Content-Type"] = "application/json" }

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  first = tonumber(args[1]) or 0
  token, key, mode = args[2] or "", args[3] or "", args[4] or "both"
  offset = tonumber(wrk.thread:get("id")) or 0
end

local function wordy(n)
  local body = string.format('{"status": ["acp", "aer"], "job_id": %d}', n)
  return wrk.format("POST", "/hooks/wordy-main/" .. token, json, body)
end

local function sharedworkforce(n)
  local body = string.format(
    '{"api_key": "%s", "task": {"title": "Bench task %d", "id": %d, '
      .. '"responses": [{"answer": "answer %d", "id": "%d"}], "callback_params": {"article_id": %d}}}',
    key, n, n, n, n, n
  )
  return wrk.format("POST", "/hooks/swf", { ["Content-Type"] = "application/json", ["X-API-Key"] = key }, body)
end

function request()
  counter = counter + 1
  local n = first + counter * stride + offset
  if mode == "wordy" or (mode == "both" and counter % 2 == 0) then
    return wordy(n)
  end
  return sharedworkforce(n)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "non_2xx_3xx": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d}\n',
    summary.requests, summary.duration, errors.status, errors.connect, errors.read, errors.write,
    errors.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
  ))
end
