"""The CSV aggregation of a file of over 200 MB, in a real worker process: correct, and memory bounded."""

from __future__ import annotations

import random
from pathlib import Path

from tests.integration.harness import StartWorker
from worker.client.producer import Client
from worker.settings import JobqSettings

TARGET_BYTES = 210 * 1024 * 1024


def write_csv(path: Path) -> tuple[dict[str, int], int]:
    """A CSV of at least TARGET_BYTES, written as one block repeated; returns the expected sums and rows."""
    rng = random.Random(42)
    rows = [(f"group-{rng.randrange(60):02d}", rng.randrange(-1000, 100_000)) for _ in range(20_000)]
    block = "".join(f"{g},{v},note {i % 97}\n" for i, (g, v) in enumerate(rows)).encode()
    repeats = TARGET_BYTES // len(block) + 1
    with path.open("wb") as f:
        f.write(b"customer,cents,comment\n")
        for _ in range(repeats):
            f.write(block)
    sums: dict[str, int] = {}
    for g, v in rows:
        sums[g] = sums.get(g, 0) + v * repeats
    return sums, len(rows) * repeats


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


async def test_csv_sum_of_a_210_mb_file_is_right_and_keeps_memory_flat(
    settings: JobqSettings, start_worker: StartWorker, tmp_path: Path
) -> None:
    expected, rows = write_csv(tmp_path / "big.csv")
    assert (tmp_path / "big.csv").stat().st_size >= 200 * 1024 * 1024
    worker = start_worker(JOBQ_TASK_MODULES="tasks", JOBQ_FILES_ROOT=str(tmp_path))
    baseline_kb = memory_kb(worker.pid, "VmRSS")
    s = JobqSettings(redis_url=settings.redis_url, queue_name=settings.queue_name, task_modules=["tasks"])
    async with Client(s) as client:
        handle = await client.enqueue("csv_sum", {"path": "big.csv", "group_by": "customer", "sum": "cents"})
        result = await handle.result(timeout_s=240)
    assert (result.rows, result.skipped_rows) == (rows, 0)
    assert result.groups == dict(sorted(expected.items()))
    growth_mb = (memory_kb(worker.pid, "VmHWM") - baseline_kb) / 1024
    assert growth_mb < 50, f"peak RSS grew by {growth_mb:.1f} MB"
    print(f"csv_sum: {rows} rows, peak RSS growth {growth_mb:.1f} MB")
