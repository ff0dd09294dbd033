"""File pipelines on local paths: checksum, gzip, and a CSV group-by-and-sum that streams.

Every path is relative to ``JOBQ_FILES_ROOT`` and must stay inside it: absolute paths and ``..`` are
refused when the job is enqueued, and a symlink that leads outside the root is refused when it runs.
Reads and writes are asynchronous (aiofiles) in 1 MiB chunks; the CSV aggregation parses in a
thread, a chunk of rows at a time, so the event loop stays free and memory stays bounded however big
the file. Outputs are written to a temporary file and renamed, so a re-run never sees half a file.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Annotated, Literal

import aiofiles
import aiofiles.os
from pydantic import AfterValidator, BaseModel, Field

from worker import JobContext, PermanentError, task

CHUNK_BYTES = 1024 * 1024
ROWS_PER_STEP = 200_000
MAX_GROUPS_IN_RESULT = 1000


def _relative(value: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value:
        raise ValueError("must be a relative path inside JOBQ_FILES_ROOT, without '..'")
    return value


#: A path relative to JOBQ_FILES_ROOT; absolute paths and '..' are refused when the job is enqueued.
RelativePath = Annotated[str, AfterValidator(_relative)]


def inside_root(ctx: JobContext, relative: str) -> Path:
    """``relative`` resolved under ``JOBQ_FILES_ROOT``; :class:`PermanentError` if it leads outside."""
    root = ctx.settings.files_root
    if root is None:
        raise PermanentError("JOBQ_FILES_ROOT is not set: the file tasks have no directory to work in")
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise PermanentError(f"path {relative!r} leads outside JOBQ_FILES_ROOT (through a symlink?)")
    return path


class ChecksumIn(BaseModel):
    """The file to hash, and with which algorithm."""

    path: RelativePath
    algorithm: Literal["sha256", "sha1", "md5", "blake2b"] = "sha256"


class ChecksumOut(BaseModel):
    """The file's digest (hex) and size."""

    path: str
    algorithm: str
    digest: str
    size: int


@task(timeout_s=3600, max_tries=3)
async def checksum(ctx: JobContext, payload: ChecksumIn) -> ChecksumOut:
    """Hash a file, streaming it in 1 MiB chunks."""
    path = inside_root(ctx, payload.path)
    digest = hashlib.new(payload.algorithm)
    size = 0
    try:
        async with aiofiles.open(path, "rb") as f:
            while chunk := await f.read(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        raise PermanentError(f"no file {payload.path!r} in JOBQ_FILES_ROOT") from None
    return ChecksumOut(path=payload.path, algorithm=payload.algorithm, digest=digest.hexdigest(), size=size)


class GzipIn(BaseModel):
    """The file to compress, where to write it (default: ``<path>.gz``), and how hard to try."""

    path: RelativePath
    output: RelativePath | None = None
    level: int = Field(6, ge=1, le=9)


class GzipOut(BaseModel):
    """Sizes before and after."""

    output: str
    size: int
    compressed_size: int


@task(timeout_s=3600, max_tries=3)
async def gzip_file(ctx: JobContext, payload: GzipIn) -> GzipOut:
    """Compress a file to gzip format, streaming; the output appears only when complete."""
    source = inside_root(ctx, payload.path)
    output = payload.output or f"{payload.path}.gz"
    target = inside_root(ctx, output)
    partial = target.with_name(f".{target.name}.{ctx.job_id}.part")
    compressor = zlib.compressobj(payload.level, zlib.DEFLATED, 31)  # wbits 31: gzip header and trailer
    size = written = 0
    try:
        async with aiofiles.open(source, "rb") as src, aiofiles.open(partial, "wb") as dst:
            while chunk := await src.read(CHUNK_BYTES):
                size += len(chunk)
                out = compressor.compress(chunk)
                written += len(out)
                await dst.write(out)
            tail = compressor.flush()
            written += len(tail)
            await dst.write(tail)
    except FileNotFoundError:
        raise PermanentError(f"no file {payload.path!r} in JOBQ_FILES_ROOT") from None
    await aiofiles.os.replace(partial, target)
    return GzipOut(output=output, size=size, compressed_size=written)


class CsvSumIn(BaseModel):
    """Group the rows of a CSV file (with a header) by one column and sum another."""

    path: RelativePath
    group_by: str = Field(min_length=1)
    sum: str = Field(min_length=1)
    delimiter: str = Field(",", min_length=1, max_length=1)
    output: RelativePath | None = None  #: also write the groups to this CSV file


class CsvSumOut(BaseModel):
    """Row counts and the sums; ``groups`` is left out above 1000 groups (use ``output`` for those)."""

    rows: int
    skipped_rows: int
    skipped_examples: list[int]
    groups_count: int
    groups: dict[str, int | float] | None
    output: str | None


class _Aggregation:
    """Streams one CSV file through a csv.reader, a step of rows at a time (run in a thread)."""

    def __init__(self, path: Path, payload: CsvSumIn) -> None:
        self.size = max(1, path.stat().st_size)
        self._file: IO[str] = path.open(newline="", encoding="utf-8")
        self.chars = 0
        self._reader = csv.reader(self._lines(), delimiter=payload.delimiter)
        header = next(self._reader, None)
        if header is None:
            self.close()
            raise PermanentError(f"{payload.path!r} is empty: a header row is needed")
        missing = [c for c in (payload.group_by, payload.sum) if c not in header]
        if missing:
            self.close()
            raise PermanentError(f"{payload.path!r} has no column {missing[0]!r}; its columns: {header}")
        self._key, self._value = header.index(payload.group_by), header.index(payload.sum)
        self.sums: dict[str, int | float] = {}
        self.rows = self.skipped = 0
        self.examples: list[int] = []

    def _lines(self) -> Iterator[str]:
        for line in self._file:
            self.chars += len(line)
            yield line

    def step(self, max_rows: int) -> bool:
        """Aggregate up to ``max_rows`` more rows; return True when the file is done."""
        for count, row in enumerate(self._reader):
            try:
                raw = row[self._value]
                value: int | float = int(raw) if raw.lstrip("-").isdigit() else float(raw)
                key = row[self._key]
            except (IndexError, ValueError):
                self.skipped += 1
                if len(self.examples) < 5:
                    self.examples.append(self._reader.line_num)
                continue
            self.rows += 1
            self.sums[key] = self.sums.get(key, 0) + value
            if count + 1 >= max_rows:
                return False
        return True

    def close(self) -> None:
        self._file.close()


@task(timeout_s=3600, max_tries=2)
async def csv_sum(ctx: JobContext, payload: CsvSumIn) -> CsvSumOut:
    """Sum ``payload.sum`` per value of ``payload.group_by`` over a CSV file of any size."""
    path = inside_root(ctx, payload.path)
    output = inside_root(ctx, payload.output) if payload.output else None
    if not path.is_file():
        raise PermanentError(f"no file {payload.path!r} in JOBQ_FILES_ROOT")
    aggregation = await asyncio.to_thread(_Aggregation, path, payload)
    try:
        while not await asyncio.to_thread(aggregation.step, ROWS_PER_STEP):
            fraction = min(aggregation.chars / aggregation.size, 0.99)
            await ctx.report_progress(fraction, f"{aggregation.rows} rows")
    finally:
        aggregation.close()
    if output is not None:
        await asyncio.to_thread(_write_groups, output, payload, aggregation.sums, ctx.job_id)
    sums = aggregation.sums
    return CsvSumOut(
        rows=aggregation.rows,
        skipped_rows=aggregation.skipped,
        skipped_examples=aggregation.examples,
        groups_count=len(sums),
        groups=dict(sorted(sums.items())) if len(sums) <= MAX_GROUPS_IN_RESULT else None,
        output=payload.output,
    )


def _write_groups(target: Path, payload: CsvSumIn, sums: dict[str, int | float], job_id: str) -> None:
    partial = target.with_name(f".{target.name}.{job_id}.part")
    with partial.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=payload.delimiter)
        writer.writerow([payload.group_by, payload.sum])
        writer.writerows(sorted(sums.items()))
    os.replace(partial, target)
