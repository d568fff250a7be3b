-- wrk script: POST pre-encoded OTLP bodies round-robin (see benchmarks/payloads.py).
--
-- Settings come from the environment:
--   BENCH_DATA, BENCH_SIZES  the concatenated bodies and their sizes, one a line
--   BENCH_PATH               /v1/traces, /v1/logs or /v1/metrics
--   BENCH_CONTENT_TYPE       application/x-protobuf or application/json
--   BENCH_AUTHORIZATION      optional Authorization header value (a bearer token)
--   BENCH_RATE               total requests per second (0 = as fast as the connections go)
--   BENCH_SECONDS            how long to start requests; then the thread waits for the
--                            answers still outstanding and stops wrk (SIGINT to its main
--                            thread), so every request sent is counted (-d is a backstop).
--                            Run it with -t1: the stop is per thread.
-- done() prints one line: BENCH {"requests":..,"non2xx":..,"socket_errors":..,...}

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
int getpid(void);
long syscall(long number, ...);
]]
local SYS_tgkill, SIGINT = 234, 2 -- x86_64
local ts = ffi.new("bench_timespec")
local function now_ms()
   ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
   return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local thread_count = 0

function setup(thread)
   thread:set("id", thread_count)
   thread_count = thread_count + 1
   table.insert(threads, thread)
end

local requests = {}
local count, position = 0, 0
local interval = 0      -- ms between request starts in this thread; 0 = no pacing
local next_at = nil
local stop_at = nil
local outstanding = 0
non2xx = 0 -- global: done() reads it from every thread

function init(args)
   local path = os.getenv("BENCH_PATH")
   local headers = { ["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") }
   if os.getenv("BENCH_AUTHORIZATION") then
      headers["Authorization"] = os.getenv("BENCH_AUTHORIZATION")
   end
   local file = assert(io.open(os.getenv("BENCH_DATA"), "rb"))
   local data = file:read("*a")
   file:close()
   local pos = 1
   for line in io.lines(os.getenv("BENCH_SIZES")) do
      local size = tonumber(line)
      count = count + 1
      requests[count] = wrk.format("POST", path, headers, data:sub(pos, pos + size - 1))
      pos = pos + size
   end
   data = nil
   -- each thread starts at a different body, spread evenly
   position = math.floor(count * tonumber(wrk.thread:get("id")) / tonumber(os.getenv("BENCH_THREADS")))
   local rate = tonumber(os.getenv("BENCH_RATE") or "0")
   if rate > 0 then
      interval = 1000 * tonumber(os.getenv("BENCH_THREADS")) / rate
   end
   stop_at = now_ms() + 1000 * tonumber(os.getenv("BENCH_SECONDS"))
   outstanding = -1 -- wrk calls request() once after init() to check it; that one is not sent
   io.write("BENCH-READY\n")
   io.stdout:flush()
end

-- Past stop_at with nothing outstanding: stop the thread, and wake wrk's main thread from
-- its sleep(-d) at once with SIGINT to that very thread (its tid is the pid); it then joins
-- the threads and calls done().
local function stop_when_idle()
   if outstanding == 0 then
      wrk.thread:stop()
      local pid = ffi.cast("long", ffi.C.getpid())
      ffi.C.syscall(SYS_tgkill, pid, pid, ffi.cast("long", SIGINT))
   end
end

function delay()
   local now = now_ms()
   if now >= stop_at then
      stop_when_idle()
      return 3600000 -- start nothing more
   end
   if interval == 0 then
      return 0
   end
   if next_at == nil or next_at < now - 1000 then
      next_at = now -- more than a second behind: do not burst to catch up
   end
   local wait = next_at - now
   next_at = next_at + interval
   if wait < 0 then
      return 0
   end
   return wait
end

function request()
   outstanding = outstanding + 1
   position = position % count + 1
   return requests[position]
end

function response(status, headers, body)
   outstanding = outstanding - 1
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
   if now_ms() >= stop_at then
      stop_when_idle()
   end
end

function done(summary, latency, requests)
   local bad = 0
   for _, thread in ipairs(threads) do
      bad = bad + tonumber(thread:get("non2xx"))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"non2xx":%d,"socket_errors":%d,"timeouts":%d,"elapsed_us":%d,' ..
      '"p50_us":%d,"p99_us":%d}\n',
      summary.requests, bad, e.connect + e.read + e.write, e.timeout, summary.duration,
      latency:percentile(50), latency:percentile(99)))
end
