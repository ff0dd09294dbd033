"""How each figure of bench/RESULTS.md is measured, as written into its Method section."""

from __future__ import annotations

METHODS = {
    "enqueue": "One producer, no worker running, a fresh queue: N no-op jobs (jobq {enqueue_jobq}, arq "
    "{enqueue_arq}, arq tuned {enqueue_arq_tuned}, SAQ {enqueue_saq}), each its own awaited call "
    "(jobq `Client.enqueue`, arq `ArqRedis.enqueue_job`, SAQ `Queue.enqueue` with its defaults, "
    "`Queue.from_url`), after one untimed job to open the connection. "
    "jobs / elapsed seconds. The tuned-arq producer runs on uvloop, the others on asyncio's loop. "
    "SAQ is measured for its producer only (no SAQ worker is started).",
    "batch": "jobq: one `Client.enqueue_many` call with {batch_jobq} no-op jobs (payload validation included; "
    "jobq pipelines 1,000 jobs per round trip). arq has no batch API: its figure is `asyncio.gather` over "
    "100 `enqueue_job` calls at a time, {batch_arq} jobs.",
    "drain1": "The queue is pre-filled with N no-op jobs (jobq {drain_jobq}, arq {drain_arq}, arq tuned "
    "{drain_arq_tuned}), then one worker process starts. Time = last job's finish minus first job's start, both "
    "read from the stored results (`st`/`ft`, ms, arq's result layout, which jobq keeps), so worker start-up "
    "and the harness's polling are excluded; figure = N / time. Concurrency: jobq `JOBQ_MAX_JOBS=100`, arq "
    "default `max_jobs=10`, arq tuned 100. Peak RSS is read from the same run.",
    "drain2": "As the 1-process drain, with two worker processes started together on the same queue (same N). "
    "So that a process still starting does not count as a second worker, the span runs from the later of the first "
    "job's start and the moment the last process was up (its start-up hook wrote a timestamp: jobq a module-level "
    "`@resource` in bench/tasks.py, arq `on_startup`) to the last finish, and only jobs started in it count.",
    "io": "{io_jobs} jobs of `await asyncio.sleep(0.1)` pre-filled, one worker process with concurrency 200 for "
    "everyone (`JOBQ_MAX_JOBS=200`; arq `max_jobs=200`, tuned arq keeps poll_delay 0.01 s and uvloop). Wall "
    "time = last finish minus first start from the stored results; the ideal is 2,000 x 0.1 s / 200 = 1 s.",
    "pickup": "One worker process, started and idle (it has run one warm-up job, then 0.5 s of nothing). The "
    "producer enqueues {pickup_jobs} jobs 20 ms apart (one await each); the task returns `time.time()` at the "
    "start of its body; latency = that minus `time.time()` just before the enqueue call (the enqueue round trip "
    "is included: it is what a caller waits for). Percentiles by `statistics.quantiles(method='inclusive')`.",
    "commands": "One idle worker process (after a warm-up job). `INFO commandstats` (sum of `calls` over every "
    "command, commands run inside Lua scripts included, INFO itself left out) before and after enqueueing N "
    "no-op jobs one at a time and waiting for all their results (jobq {commands_jobq}, arq {commands_arq}, "
    "arq tuned {commands_arq_tuned}); the harness's own EXISTS calls used to wait are subtracted. Raw figure: "
    "the worker's idle traffic during the run is included (the figure without it, from the idle rate measured over "
    "1 s just before, is in the breakdown below).",
    "drain_commands": "`INFO commandstats` calls from before the batch enqueue of the 1-process drain to the "
    "moment every result is stored (worker start-up included, the harness's waiting EXISTS calls subtracted), "
    "divided by N: the per-job cost when jobs come in batches and the worker is never idle. jobq's batch "
    "enqueue is `enqueue_many`, arq's a gather of `enqueue_job` (arq has no batch API).",
    "idle": "4 worker processes on one empty queue, started and given 1 s to settle; then `INFO commandstats` "
    "calls (all clients) over 5 s (jobq's default heartbeat interval), per second.",
    "rss": "`VmHWM` from `/proc/<pid>/status` of the worker process at the end of the 1-process drain, before "
    "it is stopped (MB = 2^20 bytes). jobq runs as `.venv/bin/jobq worker`, arq as `python -m bench.arq_worker`.",
    "imports": "A fresh interpreter (the venv's python, in the repository) times one statement with "
    "`time.perf_counter()` around it and reports its peak RSS (`VmHWM`) after it: jobq `from worker import "
    "task` (the public names resolve lazily, PEP 562: this loads `worker.taskdef` and the base modules, not "
    "redis-py or arq), jobq again with every name of `worker.__all__` fetched (what an eager `__init__` would "
    "load for any import), arq `import arq`. Interpreter start-up is excluded; median of 5 interpreters per "
    "repetition.",
    "startup": "Wall time of `jobq --version` and `jobq --help` (arq: `arq --version`, `arq --help`) from the "
    "venv, output discarded, median of 5 runs each; then a worker process (as in the drains) started 3 times on "
    "an empty queue: from just before the exec to the moment its ready key exists in Redis (jobq: its heartbeat "
    "`jobq:worker:<host>:<pid>`, written when its loop starts; arq: the key its `on_startup` writes), polled every "
    "5 ms; median of the 3.",
    "fleet": "For K = 1, 4, 16 and 64 worker processes on one queue (jobq, and tuned arq; default arq's 0.5 s "
    "poll makes its pickup meaningless): all K started and ready, one warm-up job, 1 s to settle, then the idle "
    "load over 2 s (per worker), then 200 `stamp` jobs enqueued one at a time 10 ms apart. Commands per job are "
    "`INFO commandstats` calls (Lua-internal ones included) from the first enqueue to the last result, the "
    "producer's waiting EXISTS calls subtracted; pickup is the task's start minus the moment before its enqueue. "
    "`--quick` runs K = 1 and 4 only.",
    "flow": "jobq only (arq has none of these). The `mark` task pushes its tag onto a list as it starts, so each "
    "figure is read from the order jobs started in. *Priority*: one worker (`JOBQ_MAX_JOBS=10`), 10,000 low jobs "
    "of 2 ms, then (once 50 have started) 20 of priority 9. *Strict queues*: the same with the low jobs on the "
    "second queue of `JOBQ_QUEUES=a,b` and the 20 on the first. *Weighted*: three queues pre-filled with 30 ms "
    "jobs (more than the window can run), one worker with `JOBQ_QUEUES=a=5,b=3,c=1` and `JOBQ_MAX_JOBS=9`; the "
    "starts of a 30 s window (5 s with `--quick`) after 1 s of warm-up. *Fairness*: two workers; tenant A enqueues "
    '20,000 jobs of 2 ms of a `fair_by="tenant"` task, then (once 200 have started) tenant B 20; the control '
    "runs the same with a task without `fair_by`, until 2,000 more of A's have started. *Waiting for a slot*: 60 "
    "jobs of 0.1 s enqueued at once to one worker, a task with `concurrency=4` against one without; `INFO "
    "commandstats` calls from the enqueue to the queue's end, the harness's own polls (one ZCARD each) left out. "
    "*Paused*: one idle worker, `INFO commandstats` calls per second over 10 s (3 s with `--quick`) on an empty "
    "queue, then on the same queue paused with 100 jobs in it (none may start).",
    "rate": "jobq only. Four worker processes (`JOBQ_MAX_JOBS=10`) on one queue; 1,000 jobs (250 with `--quick`) of "
    "a task with `RateLimit(per_s=50, burst=5)` on one key enqueued at once (20 s of backlog), each recording its "
    "start's wall time. *Rate*: starts after the first burst divided by the time from the first to the last of "
    "them. *Most in 1 s*: the most starts in any 1 s window (GCRA's bound: per_s + burst). *Commands*: `INFO "
    "commandstats` calls from the enqueue to the last start, the harness's polls left out, per job, against the "
    "same number of jobs of the same task without the limit through the same workers (run first). *Trickle*: a "
    "quarter as many jobs enqueued one at a time at 60/s (20 % over the rate, so each waits less than "
    "`JOBQ_RATE_HOLD_S` and is held in its worker), against the same trickle without the limit.",
    "workflows": "jobq only. A chord of 10,000 (2,000 with `--quick`) `member` steps (a no-op returning its index) "
    'and one `gather` callback taking their results `into="values"`, against the same 10,000 `member` jobs enqueued '
    "as plain jobs by one `enqueue_many`. Each side: 2 worker processes (`JOBQ_MAX_JOBS=100`) started on a fresh "
    "queue and ready, warmed up by 100 members (a chord, or plain jobs), then one timed run from just before the "
    "jobs are built (`chord()`, which type-checks every step, or the `JobRequest` list) to the last end (the "
    "callback's, or the last plain job's `ft` from the stored results); the "
    "informative ratio runs from the first start instead. The callback counts its runs in Redis and checks it got "
    "every result in the group's order: any other outcome fails the measurement. Commands: `INFO commandstats` "
    "calls (Lua-internal ones included) over the timed run, the harness's waiting EXISTS calls left out, divided by "
    "the number of jobs (the chord's staging and activation, its callback and the callback's read of every result "
    "are charged to its members).",
}
