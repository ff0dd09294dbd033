"""``python -m bench`` (``make bench``): measure jobq, bare arq and tuned bare arq side by side (and SAQ's enqueue).

Everything runs against one embedded redis-server started here; worker processes are started and
stopped by pid for each measurement. A full run takes the median of 3 repetitions and writes
bench/RESULTS.md; ``--quick`` (1 repetition, fewer jobs) and ``--only`` print the table only, unless
``--output`` is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import fleet, flow, measure, rate, startup, workflows
from bench.harness import PRODUCER_MEASUREMENTS, ROOT, SYSTEMS, Interrupt
from bench.report import ROWS, Results, document, table
from worker.process.embedded import EmbeddedRedis

MEASUREMENTS: dict[str, measure.Measurement] = {
    "enqueue": measure.enqueue_single,
    "batch": measure.enqueue_batch,
    "drain1": measure.drain(1),
    "drain2": measure.drain(2),
    "io": measure.io_bound,
    "pickup": measure.pickup,
    "commands": measure.commands_per_job,
    "idle": measure.idle_load,
    "fleet": fleet.fleet,
    "startup": startup.startup,
    "imports": startup.imports,
    "flow": flow.flow,
    "rate": rate.rate,
    "workflows": workflows.workflows,
}
RESULTS_MD = ROOT / "bench" / "RESULTS.md"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition with fewer jobs (development)")
    parser.add_argument("--repeats", type=int, help="repetitions per figure (default 3, --quick 1)")
    parser.add_argument(
        "--only", action="append", choices=list(MEASUREMENTS), metavar="NAME",
        help=f"run only this measurement (repeatable): {', '.join(MEASUREMENTS)}",
    )  # fmt: skip
    parser.add_argument(
        "--systems", default=",".join(s.key for s in SYSTEMS), help="comma-separated: jobq,arq,arq_tuned,saq"
    )
    parser.add_argument(
        "--output", type=Path, help="write the results here (default: bench/RESULTS.md on a full run, else none)"
    )
    return parser.parse_args(argv)


def _sizes_for_docs(sizes: measure.Sizes) -> dict[str, object]:
    flat: dict[str, object] = {}
    for name, value in dataclasses.asdict(sizes).items():
        if isinstance(value, dict):
            flat |= {f"{name}_{k}": f"{v:,}" for k, v in value.items()}
            flat.setdefault(name, f"{value.get('jobq', 0):,}")
        else:
            flat[name] = f"{value:,}"
    return flat


def run(args: argparse.Namespace) -> int:
    """Run the measurements; print progress and the table; write the results file."""
    sizes = measure.QUICK if args.quick else measure.FULL
    repeats = args.repeats or (1 if args.quick else 3)
    names = args.only or list(MEASUREMENTS)
    wanted = set(args.systems.split(","))
    systems = [s for s in SYSTEMS if s.key in wanted]
    output = args.output or (RESULTS_MD if not args.quick and not args.only else None)
    results: Results = {}
    errors: list[str] = []
    started = time.monotonic()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with EmbeddedRedis.start("redis-server") as server:
        ctx = measure.Context(server.url, sizes)
        for rep in range(1, repeats + 1):
            for name in names:
                for system in systems:
                    if system.producer_only and name not in PRODUCER_MEASUREMENTS:
                        continue
                    Interrupt.check()
                    t = time.monotonic()
                    print(
                        f"[{time.monotonic() - started:5.0f}s] rep {rep}/{repeats} {name:<8} {system.label:<14}", end=""
                    )
                    print(" ...", end="", flush=True)
                    try:
                        sample = MEASUREMENTS[name](ctx, system)
                    except Exception as exc:
                        errors.append(f"rep {rep}, {name}, {system.label}: {type(exc).__name__}: {exc}")
                        print(f" FAILED: {type(exc).__name__}: {str(exc)[:2000]}", flush=True)
                        traceback.print_exc(limit=3, file=sys.stderr)
                        continue
                    results.setdefault(name, {}).setdefault(system.key, []).append(sample)
                    figures = ", ".join(f"{k} {v:,.2f}" for k, v in sample.values.items())
                    print(f" {figures}  ({time.monotonic() - t:.1f}s)", flush=True)
    elapsed = time.monotonic() - started
    print("\n" + table(results))
    if output is not None:
        output.write_text(
            document(
                results, sizes=_sizes_for_docs(sizes), repeats=repeats, elapsed_s=elapsed, when=when, errors=errors
            )
        )
        print(f"\nwritten to {output}")
        if output == RESULTS_MD and not errors:
            update_readme(table(results))
            print(f"table copied into {README_MD}")
    print(f"total {elapsed:.0f}s; {len(errors)} failure(s)")
    return 1 if errors else 0


README_MD = ROOT / "README.md"
#: The README's copy of the table follows this line (tests/unit/test_readme.py keeps the two equal).
README_TABLE_MARK = "<!-- bench table: copied from bench/RESULTS.md -->"


def update_readme(markdown_table: str) -> None:
    """Replace the table after :data:`README_TABLE_MARK` in README.md with ``markdown_table``."""
    text = README_MD.read_text()
    head, mark, rest = text.partition(README_TABLE_MARK + "\n")
    if not mark:
        print(f"README.md has no {README_TABLE_MARK!r} line: table not copied", file=sys.stderr)
        return
    old_rows = rest.split("\n\n", 1)
    README_MD.write_text(head + mark + markdown_table.strip() + "\n\n" + (old_rows[1] if len(old_rows) > 1 else ""))


def main(argv: list[str] | None = None) -> int:
    Interrupt.install()
    try:
        return run(_parse(argv))
    except KeyboardInterrupt:
        print("\ninterrupted: workers and redis-server stopped", file=sys.stderr)
        return 130


assert {r.measurement for r in ROWS} <= set(MEASUREMENTS)

if __name__ == "__main__":
    sys.exit(main())
