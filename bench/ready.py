"""The key a worker process sets once it has started; its own module so arq's worker imports nothing of jobq."""

from __future__ import annotations

#: ``bench:ready:<pid>`` = the time.time() it was set: by bench.tasks (jobq) and bench.arq_worker at start-up.
READY_KEY = "bench:ready:{pid}"
