"""tasks.files on real local files: checksum, gzip, CSV aggregation, and the root confinement."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from tests.unit.harness import Harness
from worker import InvalidPayload, Outcome


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path


@pytest.fixture
def h(make_harness: Any, root: Path) -> Harness:
    return make_harness(task_modules=["tasks"], files_root=root)  # type: ignore[no-any-return]


async def run(h: Harness, task: str, payload: dict[str, Any]) -> Any:
    handle = await h.client.enqueue(task, payload)
    await h.run_due()
    return await handle.wait(timeout_s=10)


async def test_checksum_matches_hashlib(h: Harness, root: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (root / "data" / "blob.bin").write_bytes(data)
    for algorithm in ("sha256", "md5", "blake2b"):
        result = (await run(h, "checksum", {"path": "data/blob.bin", "algorithm": algorithm})).value
        assert result.digest == hashlib.new(algorithm, data).hexdigest()
        assert result.size == len(data)


async def test_gzip_round_trips(h: Harness, root: Path) -> None:
    data = b"jobq " * 500_000 + os.urandom(1000)
    (root / "data" / "log.txt").write_bytes(data)
    result = (await run(h, "gzip_file", {"path": "data/log.txt", "level": 9})).value
    assert result.output == "data/log.txt.gz"
    assert gzip.decompress((root / "data" / "log.txt.gz").read_bytes()) == data
    assert result.compressed_size == (root / "data" / "log.txt.gz").stat().st_size < len(data)
    assert not list((root / "data").glob(".*.part"))  # no temporary file left behind


async def test_csv_sum_groups_and_sums(h: Harness, root: Path) -> None:
    (root / "data" / "sales.csv").write_text(
        'region,amount,note\nnorth,10,"plain"\nsouth,5,"with, comma"\nnorth,-3,"multi\nline"\n'
        "east,not-a-number,x\nsouth,2.5,y\nwest\n",
        encoding="utf-8",
    )
    payload = {"path": "data/sales.csv", "group_by": "region", "sum": "amount", "output": "data/out.csv"}
    result = (await run(h, "csv_sum", payload)).value
    assert result.groups == {"north": 7, "south": 7.5}
    assert (result.rows, result.skipped_rows, result.skipped_examples) == (4, 2, [6, 8])  # file line numbers
    assert (root / "data" / "out.csv").read_text().splitlines() == ["region,amount", "north,7", "south,7.5"]


async def test_csv_with_an_unknown_column_is_a_permanent_error(h: Harness, root: Path) -> None:
    (root / "data" / "t.csv").write_text("a,b\n1,2\n")
    result = await run(h, "csv_sum", {"path": "data/t.csv", "group_by": "a", "sum": "zzz"})
    assert result.outcome is Outcome.DEAD_LETTERED
    assert "has no column 'zzz'" in (result.error.message if result.error else "")


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.txt", "data/../../outside.txt", "", "a\\b"])
async def test_escaping_paths_are_refused_at_enqueue(h: Harness, path: str) -> None:
    with pytest.raises(InvalidPayload) as info:
        await h.client.enqueue("checksum", {"path": path})
    assert info.value.fields == ["path"]
    assert "relative path inside JOBQ_FILES_ROOT" in str(info.value)


async def test_a_symlink_out_of_the_root_is_refused_at_run_time(h: Harness, root: Path, tmp_path_factory: Any) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text("not yours")
    (root / "data" / "link.txt").symlink_to(outside)
    result = await run(h, "checksum", {"path": "data/link.txt"})
    assert result.outcome is Outcome.DEAD_LETTERED
    assert "leads outside JOBQ_FILES_ROOT" in (result.error.message if result.error else "")


async def test_file_tasks_refuse_without_a_root(make_harness: Any) -> None:
    h = make_harness(task_modules=["tasks"])
    result = await run(h, "checksum", {"path": "x"})
    assert "JOBQ_FILES_ROOT is not set" in (result.error.message if result.error else "")


async def test_missing_file_is_permanent(h: Harness) -> None:
    result = await run(h, "checksum", {"path": "data/nope.bin"})
    assert (result.outcome, result.tries) == (Outcome.DEAD_LETTERED, 1)
