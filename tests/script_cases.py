"""A table of cases for every Lua script (worker/protocol/lua/): keys before, KEYS and ARGV, reply, keys after.

Run against fakeredis by tests/unit/test_scripts.py and against a real redis-server by
tests/integration/test_scripts_real.py, so both Redis implementations answer every script the same.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from worker.client.dedup_write import DEDUP_KEY_PREFIXES
from worker.engine.finish_batch import FINISH_KEY_PREFIXES
from worker.engine.leases import CLAIM_KEY_PREFIXES
from worker.protocol.dependencies import CANCELLED, DEP_PREFIXES
from worker.protocol.enqueue_script import ENQUEUE_KEY_PREFIXES
from worker.protocol.permissions import PROBE_ID, probe_keys
from worker.protocol.scripts import ScriptName, Scripts

#: enqueue_after's and workflow_stage's prefixes (worker.client.depends_write, worker.client.workflows).
AFTER_PREFIXES = json.dumps(["arq:job:", "arq:result:", "jobq:done:", "jobq:wait:", "jobq:next:", "jobq:marker:"])
STAGE_PREFIXES = json.dumps(["arq:job:", "jobq:wait:", "jobq:next:"])


class Z(dict[str, float | None]):
    """A sorted set: member -> score (``None`` after: any score)."""


class H(dict[str, str]):
    """A hash."""


@dataclass(frozen=True)
class Failure:
    """An error reply starting with ``prefix``."""

    prefix: str


Value = str | Z | H | None  # None after: the key is absent


@dataclass(frozen=True)
class Case:
    script: ScriptName
    name: str
    keys: list[str]
    args: list[Any]
    reply: Any
    before: dict[str, Value] = field(default_factory=dict)
    after: dict[str, Value] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.script}-{self.name}"


def _jobs(*fields: str) -> str:
    return json.dumps(list(fields))


DLQ, INDEX = "jobq:dlq:q", "jobq:dlq:q:index"
LOCK = "jobq:dedup:t:k"
# claim's first twelve arguments (see claim.lua), and envelopes of tasks "t" (plain and signed) and "u"
CLAIM_ARGS = [
    1000, 5, 100, 30000, "w:run-", 1, 88400, 1000, CLAIM_KEY_PREFIXES, "jobq:marker:q", "jobq:waiting:q:", 5000,
]  # fmt: skip
ENV_T = json.dumps({"v": 1, "d": {"f": "t", "a": [], "k": {}}})
ENV_T_SIGNED = json.dumps({"v": 1, "d": json.dumps({"f": "t", "a": [], "k": {}}), "sig": "unchecked"})
ENV_U = json.dumps({"v": 1, "d": {"f": "u", "t": None}})
ENV_T_LARGE = json.dumps({"v": 1, "d": {"f": "t", "a": ["x" * 70_000], "k": {}}})  # over the claim's decode bound
ENV_R = json.dumps({"v": 1, "d": {"f": "r", "a": [], "k": {}}})
RATES_R = json.dumps({"r": ["api", 1000, 1, "all"]})  # task r: RateLimit("api", per_s=1), its one key


def _dedup_keys(record: str) -> list[str]:
    """enqueue_dedup's KEYS: the queue, the call's record, the lock, the gate index and the promotion set."""
    return ["q", f"jobq:enqueued:{record}", LOCK, "jobq:gates:q", "jobq:waiting:q:promote"]


def _dedup_case(name: str, args: list[Any], reply: Any, before: dict[str, Value], after: dict[str, Value]) -> Case:
    return Case("enqueue_dedup", name, _dedup_keys(name), args, reply, before, after)


def _dedup_args(mode: str, *, flag: str = "0", expected: str = "", replacement: str = "") -> list[Any]:
    job = json.dumps(["j1", "5", "60000", "env", flag, 0])
    return ["jobq:marker:q", mode, 60000, job, 1, 60000, DEDUP_KEY_PREFIXES, expected, replacement]


CASES = [
    # enqueue
    Case(
        "enqueue",
        "a-new-job-is-written-and-queued",
        ["q", "jobq:enqueued:r1"],
        ["jobq:marker:q", _jobs("j1", "5", "60000", "env", "0"), 60000, ENQUEUE_KEY_PREFIXES, "", ""],
        [1],
        after={"arq:job:j1": "env", "q": Z({"j1": 5}), "jobq:enqueued:r1": "1", "jobq:marker:q": Z({"m": 5})},
    ),
    Case(
        "enqueue",
        "the-marker-keeps-the-earliest-time-it-was-armed-for",
        ["q", "jobq:enqueued:r7"],
        [
            "jobq:marker:q",
            _jobs("j1", "9", "60000", "e", "0", "j2", "7", "60000", "e", "0"),
            60000,
            ENQUEUE_KEY_PREFIXES,
            "",
            "",
        ],
        [1, 1],
        before={"jobq:marker:q": Z({"m": 8})},
        after={"jobq:marker:q": Z({"m": 7})},
    ),
    Case(
        "enqueue",
        "a-later-job-leaves-an-earlier-marker",
        ["q", "jobq:enqueued:r8"],
        ["jobq:marker:q", _jobs("j1", "9", "60000", "e", "0"), 60000, ENQUEUE_KEY_PREFIXES, "", ""],
        [1],
        before={"jobq:marker:q": Z({"m": 3})},
        after={"jobq:marker:q": Z({"m": 3})},
    ),
    Case(
        "enqueue",
        "a-given-id-with-a-result-is-not-written",
        ["q", "jobq:enqueued:r2"],
        [
            "jobq:marker:q",
            _jobs("j1", "5", "60000", "env", "1", "j2", "6", "60000", "e2", "1"),
            60000,
            ENQUEUE_KEY_PREFIXES,
            "",
            "",
        ],
        [0, 1],
        before={"arq:result:j1": "done", "jobq:abort:j2": "1"},
        after={
            "arq:job:j1": None,
            "arq:job:j2": "e2",
            "jobq:abort:j2": None,
            "q": Z({"j2": 6}),
            "jobq:enqueued:r2": "01",
        },
    ),
    Case(
        "enqueue",
        "a-resent-call-answers-from-its-record",
        ["q", "jobq:enqueued:r3"],
        ["jobq:marker:q", _jobs("j1", "5", "60000", "env", "0"), 60000, ENQUEUE_KEY_PREFIXES, "", ""],
        [1],
        before={"jobq:enqueued:r3": "1"},
        after={"arq:job:j1": None, "q": None},
    ),
    Case(
        "enqueue",
        "a-bad-ttl-writes-nothing",
        ["q", "jobq:enqueued:r4"],
        [
            "jobq:marker:q",
            _jobs("j1", "5", "60000", "e", "0", "j2", "5", "0", "e", "0"),
            60000,
            ENQUEUE_KEY_PREFIXES,
            "",
            "",
        ],
        Failure("JOBQ_BAD_JOB 2"),
        after={"arq:job:j1": None, "q": None},
    ),
    Case(
        "enqueue",
        "a-queue-of-another-type-is-refused",
        ["q", "jobq:enqueued:r5"],
        ["jobq:marker:q", _jobs("j1", "5", "60000", "e", "0"), 60000, ENQUEUE_KEY_PREFIXES, "", ""],
        Failure("JOBQ_NOT_A_QUEUE string"),
        before={"q": "oops"},
        after={"arq:job:j1": None, "q": "oops", "jobq:enqueued:r5": None},
    ),
    Case(
        "enqueue",
        "an-unknown-flag-writes-nothing",
        ["q", "jobq:enqueued:r6"],
        ["jobq:marker:q", _jobs("j1", "5", "60000", "e", "x"), 60000, ENQUEUE_KEY_PREFIXES, "", ""],
        Failure("JOBQ_BAD_JOB 1"),
        after={"arq:job:j1": None, "q": None, "jobq:enqueued:r6": None},
    ),
    # claim: now, wanted, scan, lease, token prefix, first token, retry TTL, largest envelope, prefixes, marker
    Case(
        "claim",
        "a-due-job-is-leased-and-started",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [1000, 5, 100, 30000, "w:run-", 1, 88400, 1000, CLAIM_KEY_PREFIXES, "jobq:marker:q", "jobq:waiting:q:", 5000],
        [["j1", "w:run-1", "5", "env", 1, 0, 0, ""], "2000", 0, [], []],
        before={"q": Z({"j1": 5, "later": 2000}), "arq:job:j1": "env", "arq:job:later": "e"},
        after={
            "arq:in-progress:j1": "w:run-1",
            "arq:retry:j1": "1",
            "arq:in-progress:later": None,
            "jobq:marker:q": Z({"m": 2000}),  # one idle worker waits for the next deferred job
        },
    ),
    Case(
        "claim",
        "a-deferred-job-a-worker-waits-for-arms-no-marker",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [1000, 5, 100, 30000, "w:run-", 1, 88400, 1000, CLAIM_KEY_PREFIXES, "jobq:marker:q", "jobq:waiting:q:", 5000],
        [[], "2000", 0, [], []],
        before={"q": Z({"later": 2000}), "jobq:marker:q:timer": "1500"},
        after={"jobq:marker:q": None},
    ),
    Case(
        "claim",
        "a-timer-past-its-time-is-not-a-wait",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [1000, 5, 100, 30000, "w:run-", 1, 88400, 1000, CLAIM_KEY_PREFIXES, "jobq:marker:q", "jobq:waiting:q:", 5000],
        [[], "2000", 0, [], []],
        before={"q": Z({"later": 2000}), "jobq:marker:q:timer": "900"},
        after={"jobq:marker:q": Z({"m": 2000})},
    ),
    Case(
        "claim",
        "a-full-claim-leaving-due-jobs-wakes-another-worker",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [1000, 1, 100, 30000, "w:run-", 1, 88400, 1000, CLAIM_KEY_PREFIXES, "jobq:marker:q", "jobq:waiting:q:", 5000],
        [["j1", "w:run-1", "5", "e1", 1, 0, 0, ""], "", 0, [], []],
        before={"q": Z({"j1": 5, "j2": 6}), "arq:job:j1": "e1", "arq:job:j2": "e2"},
        after={"arq:in-progress:j2": None, "jobq:marker:q": Z({"m": 1000})},
    ),
    Case(
        "claim",
        "a-full-claim-that-took-the-last-due-job-wakes-nobody",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [1000, 1, 100, 30000, "w:run-", 1, 88400, 1000, CLAIM_KEY_PREFIXES, "jobq:marker:q", "jobq:waiting:q:", 5000],
        [["j1", "w:run-1", "5", "e1", 1, 0, 0, ""], "", 0, [], []],
        before={"q": Z({"j1": 5, "j2": 6}), "arq:job:j1": "e1", "arq:in-progress:j2": "other:1"},
        after={"jobq:marker:q": None},
    ),
    Case(
        "claim",
        "a-leased-job-is-skipped-and-a-restart-counts-failures",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [1000, 5, 100, 30000, "w:run-", 1, 88400, 1000, CLAIM_KEY_PREFIXES, "jobq:marker:q", "jobq:waiting:q:", 5000],
        [["j2", "w:run-1", "6", "env", 3, 1, 1, ""], "", 0, [], []],
        before={
            "q": Z({"j1": 5, "j2": 6}),
            "arq:in-progress:j1": "other:1",
            "arq:job:j2": "env",
            "arq:retry:j2": "2",
            "jobq:meta:j2": H({"failures": "1"}),
            "jobq:abort:j2": "1",
        },
        after={"arq:in-progress:j1": "other:1", "arq:in-progress:j2": "w:run-1", "arq:retry:j2": "3"},
    ),
    Case(
        "claim",
        "a-corrupt-tries-counter-is-named",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [1000, 5, 100, 30000, "w:run-", 1, 88400, 1000, CLAIM_KEY_PREFIXES, "jobq:marker:q", "jobq:waiting:q:", 5000],
        [
            ["j1", "w:run-1", "5", "env", 1, 0, 0, 'arq:retry:j1 holds "abc", not a count of started tries'],
            "",
            0,
            [],
            [],
        ],
        before={"q": Z({"j1": 5}), "arq:job:j1": "env", "arq:retry:j1": "abc"},
    ),
    # renew_leases
    Case(
        "renew_leases",
        "held-leases-are-renewed-lost-ones-reported",
        ["arq:in-progress:a", "arq:in-progress:b"],
        [30000, "t1", "t2"],
        [1, 0],
        before={"arq:in-progress:a": "t1", "arq:in-progress:b": "thief"},
        after={"arq:in-progress:a": "t1", "arq:in-progress:b": "thief"},
    ),
    # finish_many
    Case(
        "finish_many",
        "held-jobs-end-stolen-ones-are-left",
        ["q"],
        [_jobs("a", "t1", "res", "60000", "b", "t2", "res", "60000", "c", "t3", "", "0"), 300000, FINISH_KEY_PREFIXES],
        [1, -1, 1],
        before={
            "q": Z({"a": 1, "b": 2, "c": 3}),
            "arq:in-progress:a": "t1",
            "arq:job:a": "e",
            "arq:retry:a": "1",
            "jobq:meta:a": H({"failures": "0"}),
            "arq:in-progress:b": "thief",
            "arq:job:b": "e",
            "arq:in-progress:c": "t3",
            "arq:job:c": "e",
        },
        after={
            "q": Z({"b": 2}),
            "arq:result:a": "res",
            "arq:job:a": None,
            "arq:retry:a": None,
            "jobq:meta:a": None,
            "arq:in-progress:a": None,
            "arq:job:b": "e",
            "arq:result:b": None,
            "jobq:done:c": "t3",
            "arq:job:c": None,
        },
    ),
    Case(
        "finish_many",
        "a-resent-end-finds-its-result",
        ["q"],
        [_jobs("a", "t1", "res", "60000"), 300000, FINISH_KEY_PREFIXES],
        [1],
        before={"arq:result:a": "res"},
    ),
    # dead_letter: queue, job, retry, in-progress, meta, abort, result, store, index
    Case(
        "dead_letter",
        "the-entry-is-written-and-the-job-removed",
        [
            "q",
            "arq:job:a",
            "arq:retry:a",
            "arq:in-progress:a",
            "jobq:meta:a",
            "jobq:abort:a",
            "arq:result:a",
            DLQ,
            INDEX,
        ],
        ["a", "res", 60000, "t1", "entry", 10_000, 1, 86_400_000],
        1,
        before={
            "q": Z({"a": 1}),
            "arq:job:a": "e",
            "arq:in-progress:a": "t1",
            DLQ: H({"old": "x"}),
            INDEX: Z({"old": 5}),
        },
        after={
            "q": None,
            "arq:job:a": None,
            "arq:in-progress:a": None,
            "arq:result:a": "res",
            DLQ: H({"a": "entry"}),
            INDEX: Z({"a": 10_000}),
        },
    ),
    Case(
        "dead_letter",
        "a-lost-lease-writes-nothing",
        [
            "q",
            "arq:job:a",
            "arq:retry:a",
            "arq:in-progress:a",
            "jobq:meta:a",
            "jobq:abort:a",
            "arq:result:a",
            DLQ,
            INDEX,
        ],
        ["a", "res", 60000, "t1", "entry", 10_000, 10, 86_400_000],
        -1,
        before={"q": Z({"a": 1}), "arq:in-progress:a": "thief"},
        after={"q": Z({"a": 1}), DLQ: None},
    ),
    Case(
        "dead_letter",
        "a-store-of-another-type-is-named",
        [
            "q",
            "arq:job:a",
            "arq:retry:a",
            "arq:in-progress:a",
            "jobq:meta:a",
            "jobq:abort:a",
            "arq:result:a",
            DLQ,
            INDEX,
        ],
        ["a", "res", 60000, "t1", "entry", 10_000, 10, 86_400_000],
        'jobq:dlq:q holds "x", not a hash of dead letters',
        before={"q": Z({"a": 1}), "arq:in-progress:a": "t1", DLQ: "x"},
        after={"q": Z({"a": 1})},
    ),
    # retry: queue, in-progress, meta, job, retry
    Case(
        "retry",
        "the-failure-is-counted-and-the-job-rescored",
        ["q", "arq:in-progress:a", "jobq:meta:a", "arq:job:a", "arq:retry:a"],
        ["a", 5000, "err", 60000, 88400, "t1", "jobq:marker:q"],
        1,
        before={"q": Z({"a": 1}), "arq:in-progress:a": "t1", "arq:job:a": "e", "arq:retry:a": "1"},
        after={
            "q": Z({"a": 5000}),
            "arq:in-progress:a": None,
            "jobq:meta:a": H({"failures": "1", "last_error": "err"}),
            "jobq:marker:q": Z({"m": 5000}),  # a worker waits for the next try
        },
    ),
    Case(
        "retry",
        "a-corrupt-meta-is-named",
        ["q", "arq:in-progress:a", "jobq:meta:a", "arq:job:a", "arq:retry:a"],
        ["a", 5000, "err", 60000, 88400, "t1", "jobq:marker:q"],
        'jobq:meta:a field failures holds "x", not a count of failures',
        before={"q": Z({"a": 1}), "arq:in-progress:a": "t1", "jobq:meta:a": H({"failures": "x"})},
        after={"q": Z({"a": 1}), "arq:in-progress:a": "t1"},
    ),
    Case(
        "claim",
        "a-paused-queue-claims-nothing",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [1000, 5, 100, 30000, "w:run-", 1, 88400, 1000, CLAIM_KEY_PREFIXES, "jobq:marker:q", "jobq:waiting:q:", 5000],
        [[], "", 1, [], []],
        before={"q": Z({"j1": 5}), "arq:job:j1": "env", "jobq:paused:q": "{}", "jobq:gates:q": Z({"paused": 0})},
        after={"q": Z({"j1": 5}), "arq:in-progress:j1": None, "arq:retry:j1": None},
    ),
    Case(
        "claim",
        "parked-jobs-are-not-claimed-nor-a-next-due-time",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [1000, 5, 100, 30000, "w:run-", 1, 88400, 1000, CLAIM_KEY_PREFIXES, "jobq:marker:q", "jobq:waiting:q:", 5000],
        [[], "3000", 0, [], []],
        before={
            "q": Z({"a": 4503599627370501}),
            "arq:job:a": "env",
            "jobq:waiting:q:task:t": Z({"a": 5}),
            "jobq:gates:q": Z({"task:t": 3000}),
        },
        after={"q": Z({"a": 4503599627370501}), "arq:in-progress:a": None, "jobq:marker:q": Z({"m": 3000})},
    ),
    Case(
        "claim",
        "a-gate-whose-recheck-came-puts-one-job-back-and-it-is-claimed",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [1000, 5, 100, 30000, "w:run-", 1, 88400, 1000, CLAIM_KEY_PREFIXES, "jobq:marker:q", "jobq:waiting:q:", 5000],
        [["a", "w:run-1", "5", "env", 1, 0, 0, ""], "6000", 0, [], []],
        before={
            "q": Z({"a": 4503599627370501, "b": 4503599627370502}),
            "arq:job:a": "env",
            "jobq:waiting:q:task:t": Z({"a": 5, "b": 6}),
            "jobq:gates:q": Z({"task:t": 900}),
        },
        after={
            "q": Z({"a": 5, "b": 4503599627370502}),
            "arq:in-progress:a": "w:run-1",
            "jobq:waiting:q:task:t": Z({"b": 6}),
            "jobq:gates:q": Z({"task:t": 6000}),  # re-checked again one recheck later
        },
    ),
    # claim with the worker's per-worker slots (ARGV 13: task -> free slots) and the waiting jobs it owes back
    Case(
        "claim",
        "a-job-of-a-task-without-a-free-slot-is-parked-in-place-uncharged",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [*CLAIM_ARGS, json.dumps({"t": 1}), ""],
        [
            ["a", "w:run-1", "5", ENV_T, 1, 0, 0, "", "u", "w:run-2", "8", ENV_U, 1, 0, 0, ""],
            "6000",
            0,
            ["t", 2, 0],
            [],
        ],
        before={
            "q": Z({"a": 5, "b": 6, "c": 7, "u": 8}),
            "arq:job:a": ENV_T,
            "arq:job:b": ENV_T_SIGNED,
            "arq:job:c": ENV_T,
            "arq:job:u": ENV_U,
        },
        after={
            "q": Z({"a": 5, "b": 4503599627370502, "c": 4503599627370503, "u": 8}),
            "arq:in-progress:a": "w:run-1",
            "arq:in-progress:b": None,
            "arq:retry:b": None,
            "arq:in-progress:u": "w:run-2",  # a task without a per-worker limit is claimed as ever
            "jobq:waiting:q:task:t": Z({"b": 6, "c": 7}),
            "jobq:gates:q": Z({"task:t": 6000}),  # re-checked one recheck later at the latest
            "jobq:marker:q": Z({"m": 6000}),
        },
    ),
    Case(
        "claim",
        "an-envelope-the-claim-cannot-read-is-claimed-for-the-worker-to-check",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [*CLAIM_ARGS, json.dumps({"t": 0}), ""],
        [["a", "w:run-1", "5", '{"v":1,"d":"t', 1, 0, 0, ""], "", 0, [], []],
        before={"q": Z({"a": 5}), "arq:job:a": '{"v":1,"d":"t'},
        after={"arq:in-progress:a": "w:run-1", "jobq:waiting:q:task:t": None},
    ),
    Case(
        "claim",
        "an-envelope-too-large-to-decode-is-claimed-for-the-worker-to-check",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [*CLAIM_ARGS[:7], 100_000, *CLAIM_ARGS[8:], json.dumps({"t": 0}), ""],
        [["a", "w:run-1", "5", ENV_T_LARGE, 1, 0, 0, ""], "", 0, [], []],
        before={"q": Z({"a": 5}), "arq:job:a": ENV_T_LARGE},
        after={"arq:in-progress:a": "w:run-1", "jobq:waiting:q:task:t": None},
    ),
    Case(
        "claim",
        "a-freed-slot-puts-its-waiting-job-back-and-the-claim-takes-it",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [*CLAIM_ARGS, json.dumps({"t": 1}), json.dumps({"task:t": 1})],
        [["a", "w:run-1", "5", ENV_T, 1, 0, 0, ""], "", 0, [], []],
        before={
            "q": Z({"a": 4503599627370501}),
            "arq:job:a": ENV_T,
            "jobq:waiting:q:task:t": Z({"a": 5}),
            "jobq:gates:q": Z({"task:t": 9000}),
        },
        after={
            "q": Z({"a": 5}),
            "arq:in-progress:a": "w:run-1",
            "jobq:waiting:q:task:t": None,
            "jobq:gates:q": None,
            "jobq:marker:q": None,
        },
    ),
    Case(
        "claim",
        "a-job-put-back-that-the-claim-leaves-wakes-another-worker",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [*CLAIM_ARGS[:1], 0, *CLAIM_ARGS[2:], "", json.dumps({"task:t": 2})],
        [[], "9000", 0, [], []],
        before={
            "q": Z({"a": 4503599627370501, "b": 4503599627370502, "c": 4503599627370503}),
            "jobq:waiting:q:task:t": Z({"a": 5, "b": 6, "c": 7}),
            "jobq:gates:q": Z({"task:t": 9000}),
        },
        after={
            "q": Z({"a": 5, "b": 6, "c": 4503599627370503}),
            "jobq:waiting:q:task:t": Z({"c": 7}),
            "jobq:gates:q": Z({"task:t": 9000}),
            "jobq:marker:q": Z({"m": 1000}),
        },
    ),
    # claim with fixed-key rate limits (ARGV 15: task -> [name, interval ms, burst, key]; 16: [hold ms, room])
    Case(
        "claim",
        "a-start-within-the-rate-is-admitted-and-one-over-it-parked-in-place",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [*CLAIM_ARGS, "", "", RATES_R, json.dumps([0, 0]), "jobq:rate:"],
        [["a", "w:run-1", "5", ENV_R, 1, 0, 0, ""], "2000", 0, ["r", 0, 1], ["a", 0]],
        before={"q": Z({"a": 5, "b": 6}), "arq:job:a": ENV_R, "arq:job:b": ENV_R},
        after={
            "q": Z({"a": 5, "b": 4503599627370502}),
            "arq:in-progress:b": None,
            "arq:retry:b": None,
            "jobq:waiting:q:rate:api:all": Z({"b": 6}),
            "jobq:gates:q": Z({"rate:api:all": 2000}),  # re-checked when the key admits its next start
            "jobq:marker:q": Z({"m": 2000}),
        },
    ),
    Case(
        "claim",
        "a-turn-within-the-hold-is-reserved-and-handed-over-with-its-wait",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [*CLAIM_ARGS, "", "", RATES_R, json.dumps([1500, 1]), "jobq:rate:"],
        [
            ["a", "w:run-1", "5", ENV_R, 1, 0, 0, "", "b", "w:run-2", "6", ENV_R, 1, 0, 0, ""],
            "3000",
            0,
            ["r", 0, 1],
            ["a", 0, "b", 1000],
        ],
        before={"q": Z({"a": 5, "b": 6, "c": 7}), "arq:job:a": ENV_R, "arq:job:b": ENV_R, "arq:job:c": ENV_R},
        after={
            "q": Z({"a": 5, "b": 6, "c": 4503599627370503}),  # the worker's one hold went to b
            "jobq:waiting:q:rate:api:all": Z({"c": 7}),
            "jobq:gates:q": Z({"rate:api:all": 3000}),
        },
    ),
    Case(
        "claim",
        "a-rate-gate-whose-recheck-came-puts-back-what-its-key-admits",
        ["q", "jobq:paused:q", "jobq:gates:q"],
        [*CLAIM_ARGS, "", "", RATES_R, json.dumps([0, 0]), "jobq:rate:"],
        [["a", "w:run-1", "5", ENV_R, 1, 0, 0, ""], "2000", 0, [], ["a", 0]],
        before={
            "q": Z({"a": 4503599627370501, "b": 4503599627370502}),
            "arq:job:a": ENV_R,
            "arq:job:b": ENV_R,
            "jobq:waiting:q:rate:api:all": Z({"a": 5, "b": 6}),
            "jobq:gates:q": Z({"rate:api:all": 900}),
        },
        after={
            "q": Z({"a": 5, "b": 4503599627370502}),
            "jobq:waiting:q:rate:api:all": Z({"b": 6}),
            "jobq:gates:q": Z({"rate:api:all": 2000}),
        },
    ),
    # park: queue, in-progress, retry, gates, waiting[, limit]
    Case(
        "park",
        "a-job-on-a-full-task-gate-waits-uncharged",
        ["q", "arq:in-progress:a", "arq:retry:a", "jobq:gates:q", "jobq:waiting:q:task:t"],
        ["a", "t1", 5, "task:t", 9000, "jobq:marker:q"],
        1,
        before={"q": Z({"a": 5}), "arq:in-progress:a": "t1", "arq:retry:a": "2"},
        after={
            "q": Z({"a": 4503599627370501}),  # parked: above every due time, so no claim takes it
            "arq:in-progress:a": None,
            "arq:retry:a": "1",
            "jobq:waiting:q:task:t": Z({"a": 5}),
            "jobq:gates:q": Z({"task:t": 9000}),
        },
    ),
    Case(
        "park",
        "an-earlier-recheck-of-the-gate-is-kept",
        ["q", "arq:in-progress:a", "arq:retry:a", "jobq:gates:q", "jobq:waiting:q:task:t"],
        ["a", "t1", 5, "task:t", 9000, "jobq:marker:q"],
        1,
        before={"q": Z({"a": 5}), "arq:in-progress:a": "t1", "arq:retry:a": "1", "jobq:gates:q": Z({"task:t": 7000})},
        after={"jobq:gates:q": Z({"task:t": 7000})},
    ),
    Case(
        "park",
        "a-fleet-limit-that-freed-a-slot-meanwhile-releases-the-job-instead",
        ["q", "arq:in-progress:a", "arq:retry:a", "jobq:gates:q", "jobq:waiting:q:limit:l:k", "jobq:limit:l:k"],
        ["a", "t1", 5, "limit:l:k", 9000, "jobq:marker:q", 2],
        2,
        before={"q": Z({"a": 5}), "arq:in-progress:a": "t1", "arq:retry:a": "1", "jobq:limit:l:k": Z({"h": 9e15})},
        after={"q": Z({"a": 5}), "arq:in-progress:a": None, "arq:retry:a": "0", "jobq:marker:q": Z({"m": 0})},
    ),
    Case(
        "park",
        "a-full-fleet-limit-parks-the-job",
        ["q", "arq:in-progress:a", "arq:retry:a", "jobq:gates:q", "jobq:waiting:q:limit:l:k", "jobq:limit:l:k"],
        ["a", "t1", 5, "limit:l:k", 9000, "jobq:marker:q", 1],
        1,
        before={"q": Z({"a": 5}), "arq:in-progress:a": "t1", "arq:retry:a": "1", "jobq:limit:l:k": Z({"h": 9e15})},
        after={"q": Z({"a": 4503599627370501}), "jobq:waiting:q:limit:l:k": Z({"a": 5}), "jobq:marker:q": None},
    ),
    Case(
        "park",
        "a-job-over-its-rate-waits-and-an-idle-worker-is-woken-at-its-turn",
        ["q", "arq:in-progress:a", "arq:retry:a", "jobq:gates:q", "jobq:waiting:q:rate:r:k"],
        ["a", "t1", 5, "rate:r:k", 9000, "jobq:marker:q", "", 8950],
        1,
        before={"q": Z({"a": 5}), "arq:in-progress:a": "t1", "arq:retry:a": "1"},
        after={
            "q": Z({"a": 4503599627370501}),
            "arq:retry:a": "0",
            "jobq:waiting:q:rate:r:k": Z({"a": 5}),
            "jobq:gates:q": Z({"rate:r:k": 9000}),
            "jobq:marker:q": Z({"m": 9000}),
        },
    ),
    Case(
        "park",
        "a-resent-park-finds-the-job-waiting",
        ["q", "arq:in-progress:a", "arq:retry:a", "jobq:gates:q", "jobq:waiting:q:task:t"],
        ["a", "t1", 5, "task:t", 9000, "jobq:marker:q"],
        1,
        before={"q": Z({"a": 4503599627370501}), "arq:retry:a": "1", "jobq:waiting:q:task:t": Z({"a": 5})},
        after={"arq:retry:a": "1"},
    ),
    Case(
        "park",
        "another-workers-lease-is-kept",
        ["q", "arq:in-progress:a", "arq:retry:a", "jobq:gates:q", "jobq:waiting:q:task:t"],
        ["a", "t1", 5, "task:t", 9000, "jobq:marker:q"],
        -1,
        before={"q": Z({"a": 5}), "arq:in-progress:a": "thief", "arq:retry:a": "2"},
        after={"q": Z({"a": 5}), "arq:retry:a": "2"},
    ),
    Case(
        "park",
        "a-corrupt-tries-counter-is-named",
        ["q", "arq:in-progress:a", "arq:retry:a", "jobq:gates:q", "jobq:waiting:q:task:t"],
        ["a", "t1", 5, "task:t", 9000, "jobq:marker:q"],
        'arq:retry:a holds "abc", not a count of started tries',
        before={"q": Z({"a": 5}), "arq:in-progress:a": "t1", "arq:retry:a": "abc"},
        after={"q": Z({"a": 5}), "arq:in-progress:a": "t1"},
    ),
    # unpark: queue, gates, waiting
    Case(
        "unpark",
        "the-first-waiting-job-goes-back-at-its-due-time",
        ["q", "jobq:gates:q", "jobq:waiting:q:task:t"],
        ["task:t", "jobq:marker:q"],
        1,
        before={
            "q": Z({"a": 4503599627370501, "b": 4503599627370503}),
            "jobq:waiting:q:task:t": Z({"a": 5, "b": 7}),
            "jobq:gates:q": Z({"task:t": 9000}),
        },
        after={
            "q": Z({"a": 5, "b": 4503599627370503}),
            "jobq:waiting:q:task:t": Z({"b": 7}),
            "jobq:gates:q": Z({"task:t": 9000}),
            "jobq:marker:q": Z({"m": 0}),
        },
    ),
    Case(
        "unpark",
        "several-freed-slots-put-as-many-jobs-back-in-one-call-skipping-an-aborted-one",
        ["q", "jobq:gates:q", "jobq:waiting:q:task:t"],
        ["task:t", "jobq:marker:q", 2],
        2,
        before={
            "q": Z({"a": 4503599627370501, "c": 4503599627370509}),
            "jobq:waiting:q:task:t": Z({"a": 5, "gone": 6, "c": 9}),
            "jobq:gates:q": Z({"task:t": 9000}),
        },
        after={
            "q": Z({"a": 5, "c": 9}),
            "jobq:waiting:q:task:t": None,
            "jobq:gates:q": None,
            "jobq:marker:q": Z({"m": 0}),
        },
    ),
    Case(
        "unpark",
        "an-aborted-job-is-dropped-and-the-empty-gate-leaves-the-index",
        ["q", "jobq:gates:q", "jobq:waiting:q:task:t"],
        ["task:t", "jobq:marker:q"],
        0,
        before={"q": Z({"other": 1}), "jobq:waiting:q:task:t": Z({"a": 5}), "jobq:gates:q": Z({"task:t": 9000})},
        after={"q": Z({"other": 1}), "jobq:waiting:q:task:t": None, "jobq:gates:q": None, "jobq:marker:q": None},
    ),
    # limit_release: limit, queue, gates, waiting
    Case(
        "limit_release",
        "the-slot-is-given-back-and-a-waiting-job-goes-back",
        ["jobq:limit:l:k", "q", "jobq:gates:q", "jobq:waiting:q:limit:l:k"],
        ["h", "limit:l:k", "jobq:marker:q"],
        1,
        before={
            "jobq:limit:l:k": Z({"h": 9e15, "h2": 9e15}),
            "q": Z({"a": 4503599627370501}),
            "jobq:waiting:q:limit:l:k": Z({"a": 5}),
            "jobq:gates:q": Z({"limit:l:k": 9000}),
        },
        after={
            "jobq:limit:l:k": Z({"h2": 9e15}),
            "q": Z({"a": 5}),
            "jobq:waiting:q:limit:l:k": None,
            "jobq:gates:q": None,
            "jobq:marker:q": Z({"m": 0}),
        },
    ),
    Case(
        "limit_release",
        "nothing-waits-nothing-wakes",
        ["jobq:limit:l:k", "q", "jobq:gates:q", "jobq:waiting:q:limit:l:k"],
        ["h", "limit:l:k", "jobq:marker:q"],
        0,
        before={"jobq:limit:l:k": Z({"h": 9e15})},
        after={"jobq:limit:l:k": None, "jobq:marker:q": None},
    ),
    # pause: paused
    Case(
        "pause",
        "a-pause-is-recorded-once",
        ["jobq:paused:q", "jobq:gates:q"],
        ["pause", '{"at":1,"by":"me"}', "jobq:marker:q"],
        0,
        before={"jobq:paused:q": '{"at":0,"by":"first"}', "jobq:gates:q": Z({"paused": 0})},
        after={"jobq:paused:q": '{"at":0,"by":"first"}', "jobq:gates:q": Z({"paused": 0})},
    ),
    Case(
        "pause",
        "a-queue-is-paused",
        ["jobq:paused:q", "jobq:gates:q"],
        ["pause", '{"at":1,"by":"me"}', "jobq:marker:q"],
        1,
        before={"jobq:gates:q": Z({"task:t": 5000})},
        after={
            "jobq:paused:q": '{"at":1,"by":"me"}',
            "jobq:marker:q": None,
            "jobq:gates:q": Z({"paused": 0, "task:t": 5000}),  # first in the index: the claim reads it there
        },
    ),
    Case(
        "pause",
        "a-resume-wakes-an-idle-worker",
        ["jobq:paused:q", "jobq:gates:q"],
        ["resume", "", "jobq:marker:q"],
        1,
        before={"jobq:paused:q": "{}", "jobq:gates:q": Z({"paused": 0, "task:t": 5000})},
        after={"jobq:paused:q": None, "jobq:marker:q": Z({"m": 0}), "jobq:gates:q": Z({"task:t": 5000})},
    ),
    Case(
        "pause",
        "resuming-a-running-queue-changes-nothing",
        ["jobq:paused:q", "jobq:gates:q"],
        ["resume", "", "jobq:marker:q"],
        0,
        after={"jobq:marker:q": None},
    ),
    # release, give_back
    Case(
        "release",
        "a-held-lease-is-released",
        ["arq:in-progress:a"],
        ["t1", "jobq:marker:q"],
        1,
        before={"arq:in-progress:a": "t1"},
        after={"arq:in-progress:a": None, "jobq:marker:q": Z({"m": 0})},
    ),
    Case(
        "release",
        "another-workers-lease-is-kept",
        ["arq:in-progress:a"],
        ["t1", "jobq:marker:q"],
        -1,
        before={"arq:in-progress:a": "thief"},
        after={"arq:in-progress:a": "thief"},
    ),
    Case(
        "give_back",
        "the-start-is-undone-and-the-lease-released",
        ["arq:in-progress:a", "arq:retry:a"],
        ["t1", "jobq:marker:q"],
        1,
        before={"arq:in-progress:a": "t1", "arq:retry:a": "1"},
        after={"arq:in-progress:a": None, "arq:retry:a": "0", "jobq:marker:q": Z({"m": 0})},
    ),
    # limits (times from the server's clock: scores are not compared)
    Case(
        "limit_acquire",
        "a-free-slot-is-taken",
        ["jobq:limit:l:k"],
        ["h1", 60000, 1],
        1,
        after={"jobq:limit:l:k": Z({"h1": None})},
    ),
    Case(
        "limit_acquire",
        "a-full-limit-refuses",
        ["jobq:limit:l:k"],
        ["h2", 60000, 1],
        0,
        before={"jobq:limit:l:k": Z({"h1": 9e15})},
        after={"jobq:limit:l:k": Z({"h1": 9e15})},
    ),
    Case("limit_renew", "a-lost-slot-is-not-renewed", ["jobq:limit:l:k"], ["h1", 60000], 0),
    Case(
        "limit_renew",
        "a-held-slot-is-renewed",
        ["jobq:limit:l:k"],
        ["h1", 60000],
        1,
        before={"jobq:limit:l:k": Z({"h1": 9e15})},
        after={"jobq:limit:l:k": Z({"h1": None})},
    ),
    # rate_acquire: rate key, gates, waiting (the state's TAT is the server's time: not compared)
    Case(
        "rate_acquire",
        "a-fresh-key-admits-and-names-the-next-start",
        ["jobq:rate:r:k", "jobq:gates:q", "jobq:waiting:q:rate:r:k"],
        [1000.0, 1, "rate:r:k", "jobq:marker:q", 5000],
        [1, 1000],
        after={"jobq:gates:q": None, "jobq:marker:q": None},
    ),
    Case(
        "rate_acquire",
        "an-admission-re-checks-the-gate-of-waiting-jobs-at-the-next-start",
        ["jobq:rate:r:k", "jobq:gates:q", "jobq:waiting:q:rate:r:k"],
        [1000.0, 2, "rate:r:k", "jobq:marker:q", 5000],
        [1, 0],
        before={"jobq:gates:q": Z({"rate:r:k": 9000}), "jobq:waiting:q:rate:r:k": Z({"a": 1})},
        after={
            "jobq:gates:q": Z({"rate:r:k": 5000}),
            "jobq:waiting:q:rate:r:k": Z({"a": 1}),
            "jobq:marker:q": Z({"m": 5000}),
        },
    ),
    # enqueue, guard 'tick' (a cron tick): queue, record, ledger
    Case(
        "enqueue",
        "a-new-tick-is-enqueued-and-recorded",
        ["q", "jobq:enqueued:t1", "jobq:cron:q:s"],
        ["jobq:marker:q", _jobs("c", "100", "60000", "env", "1"), 60000, ENQUEUE_KEY_PREFIXES, "tick", 100],
        [1],
        before={"jobq:abort:c": "1", "jobq:cron:q:s": "50"},
        after={"jobq:cron:q:s": "100", "arq:job:c": "env", "q": Z({"c": 100}), "jobq:abort:c": None},
    ),
    Case(
        "enqueue",
        "an-old-tick-is-refused",
        ["q", "jobq:enqueued:t2", "jobq:cron:q:s"],
        ["jobq:marker:q", _jobs("c", "100", "60000", "env", "1"), 60000, ENQUEUE_KEY_PREFIXES, "tick", 100],
        [],
        before={"jobq:cron:q:s": "100"},
        after={"arq:job:c": None, "q": None, "jobq:cron:q:s": "100"},
    ),
    Case(
        "enqueue",
        "a-tick-whose-job-is-there-is-still-recorded",
        ["q", "jobq:enqueued:t3", "jobq:cron:q:s"],
        ["jobq:marker:q", _jobs("c", "100", "60000", "env", "1"), 60000, ENQUEUE_KEY_PREFIXES, "tick", 100],
        [0],
        before={"arq:result:c": "done"},
        after={"arq:job:c": None, "q": None, "jobq:cron:q:s": "100", "jobq:enqueued:t3": "0"},
    ),
    # abort: queue, job, in-progress, result, abort, retry, meta
    Case(
        "abort",
        "a-queued-job-is-removed",
        ["q", "arq:job:a", "arq:in-progress:a", "arq:result:a", "jobq:abort:a", "arq:retry:a", "jobq:meta:a"],
        ["a", "aborted-result", 60000, 86_400_000],
        "aborted",
        before={"q": Z({"a": 1}), "arq:job:a": "e"},
        after={"q": None, "arq:job:a": None, "arq:result:a": "aborted-result", "arq:in-progress:a": "aborted"},
    ),
    Case(
        "abort",
        "a-running-job-gets-a-marker",
        ["q", "arq:job:a", "arq:in-progress:a", "arq:result:a", "jobq:abort:a", "arq:retry:a", "jobq:meta:a"],
        ["a", "aborted-result", 60000, 86_400_000],
        "running",
        before={"q": Z({"a": 1}), "arq:in-progress:a": "t1"},
        after={"jobq:abort:a": "1", "q": Z({"a": 1})},
    ),
    Case(
        "abort",
        "a-finished-job-is-left",
        ["q", "arq:job:a", "arq:in-progress:a", "arq:result:a", "jobq:abort:a", "arq:retry:a", "jobq:meta:a"],
        ["a", "aborted-result", 60000, 86_400_000],
        "finished",
        before={"arq:result:a": "r"},
        after={"arq:result:a": "r"},
    ),
    # enqueue, guard 'replay' (a dead letter goes back): queue, record, store, index
    Case(
        "enqueue",
        "a-dead-letter-goes-back-as-a-job-with-fresh-tries",
        ["q", "jobq:enqueued:d1", DLQ, INDEX],
        ["jobq:marker:q", _jobs("a", "500", "60000", "env", "r"), 60000, ENQUEUE_KEY_PREFIXES, "replay", "entry"],
        [1],
        before={
            DLQ: H({"a": "entry"}),
            INDEX: Z({"a": 1}),
            "arq:retry:a": "3",
            "jobq:meta:a": H({"failures": "3"}),
            "arq:result:a": "r",
            "jobq:abort:a": "1",
        },
        after={
            DLQ: None,
            INDEX: None,
            "q": Z({"a": 500}),
            "arq:job:a": "env",
            "arq:retry:a": None,
            "jobq:meta:a": None,
            "arq:result:a": None,
            "jobq:abort:a": None,
        },
    ),
    Case(
        "enqueue",
        "a-resent-replay-answers-from-its-record",
        ["q", "jobq:enqueued:d4", DLQ, INDEX],
        ["jobq:marker:q", _jobs("a", "500", "60000", "env", "r"), 60000, ENQUEUE_KEY_PREFIXES, "replay", "entry"],
        [1],
        before={"jobq:enqueued:d4": "1", "arq:job:a": "env", "q": Z({"a": 500})},
        after={"arq:job:a": "env", "q": Z({"a": 500}), DLQ: None},
    ),
    Case(
        "enqueue",
        "a-changed-dead-letter-is-left",
        ["q", "jobq:enqueued:d2", DLQ, INDEX],
        ["jobq:marker:q", _jobs("a", "500", "60000", "env", "r"), 60000, ENQUEUE_KEY_PREFIXES, "replay", "entry"],
        [],
        before={DLQ: H({"a": "newer"}), "arq:retry:a": "3"},
        after={DLQ: H({"a": "newer"}), "q": None, "arq:job:a": None, "arq:retry:a": "3"},
    ),
    Case(
        "enqueue",
        "a-queued-job-of-that-id-keeps-the-dead-letter",
        ["q", "jobq:enqueued:d3", DLQ, INDEX],
        ["jobq:marker:q", _jobs("a", "500", "60000", "env", "r"), 60000, ENQUEUE_KEY_PREFIXES, "replay", "entry"],
        [0],
        before={DLQ: H({"a": "entry"}), INDEX: Z({"a": 1}), "arq:job:a": "other", "arq:retry:a": "3"},
        after={DLQ: H({"a": "entry"}), INDEX: Z({"a": 1}), "arq:job:a": "other", "arq:retry:a": "3"},
    ),
    # dead_letter_trim: store, index; now, retention, max entries
    Case(
        "dead_letter_trim",
        "old-and-excess-entries-are-dropped",
        [DLQ, INDEX],
        [10_000, 5_000, 1],
        2,
        before={DLQ: H({"old": "x", "mid": "y", "new": "z"}), INDEX: Z({"old": 1_000, "mid": 6_000, "new": 9_000})},
        after={DLQ: H({"new": "z"}), INDEX: Z({"new": 9_000})},
    ),
    # enqueue_dedup: queue, record, lock, gates, promotions; marker, mode, lock TTL, job, now, record TTL, prefixes,
    # the holder a Debounce's replacement is bound to, the replacement
    _dedup_case(
        "unique-for-a-first-job-is-written-and-takes-the-lock",
        _dedup_args("unique_for"),
        ["created", "j1"],
        {},
        {"arq:job:j1": "env", "q": Z({"j1": 5}), LOCK: "j1", "jobq:marker:q": Z({"m": 5})},
    ),
    _dedup_case(
        "unique-for-drops-while-the-holders-job-is-there",
        _dedup_args("unique_for"),
        ["dropped", "h"],
        {LOCK: "h", "arq:job:h": "old", "arq:in-progress:h": "t", "q": Z({"h": 1})},
        {LOCK: "h", "arq:job:h": "old", "arq:job:j1": None, "q": Z({"h": 1})},
    ),
    _dedup_case(
        "unique-for-takes-over-the-lock-of-a-finished-holder",
        _dedup_args("unique_for"),
        ["created", "j1"],
        {LOCK: "h", "arq:result:h": "r"},
        {LOCK: "j1", "arq:job:j1": "env", "q": Z({"j1": 5})},
    ),
    _dedup_case(
        "throttle-drops-while-the-lock-is-there-whatever-the-holder-became",
        _dedup_args("throttle"),
        ["dropped", "h"],
        {LOCK: "h"},
        {LOCK: "h", "arq:job:j1": None, "q": None},
    ),
    _dedup_case(
        "debounce-asks-for-the-envelope-bound-to-a-pending-holder",
        _dedup_args("debounce"),
        ["rebind", "h"],
        {LOCK: "h", "arq:job:h": "old", "q": Z({"h": 9})},
        {LOCK: "h", "arq:job:h": "old", "arq:job:j1": None, "q": Z({"h": 9})},
    ),
    _dedup_case(
        "debounce-gives-a-pending-holder-the-new-envelope-and-due-time",
        _dedup_args("debounce", expected="h", replacement="new"),
        ["replaced", "h"],
        {LOCK: "h", "arq:job:h": "old", "q": Z({"h": 9})},
        {LOCK: "h", "arq:job:h": "new", "arq:job:j1": None, "q": Z({"h": 5})},
    ),
    _dedup_case(
        "debounce-writes-a-fresh-job-when-the-holder-runs",
        _dedup_args("debounce", expected="h", replacement="new"),
        ["created", "j1"],
        {LOCK: "h", "arq:job:h": "old", "arq:in-progress:h": "t", "q": Z({"h": 1})},
        {LOCK: "j1", "arq:job:h": "old", "arq:job:j1": "env", "q": Z({"h": 1, "j1": 5})},
    ),
    _dedup_case(
        "debounce-writes-a-fresh-job-when-the-holder-waits-for-a-slot",
        _dedup_args("debounce"),
        ["created", "j1"],
        {LOCK: "h", "arq:job:h": "old", "q": Z({"h": 4503599627370505})},
        {LOCK: "j1", "arq:job:h": "old", "q": Z({"h": 4503599627370505, "j1": 5})},
    ),
    _dedup_case(
        "a-given-id-whose-result-is-there-is-taken-and-the-lock-untouched",
        _dedup_args("unique_for", flag="1"),
        ["taken", "j1"],
        {"arq:result:j1": "r"},
        {LOCK: None, "arq:job:j1": None, "q": None},
    ),
    Case(
        "enqueue_dedup",
        "a-re-sent-call-answers-from-its-record",
        _dedup_keys("again"),
        _dedup_args("unique_for"),
        ["created", "j1"],
        before={"jobq:enqueued:again": '["created","j1"]', LOCK: "j1"},
        after={"arq:job:j1": None, "q": None, LOCK: "j1"},
    ),
    Case(
        "enqueue_dedup",
        "a-key-of-another-type-is-not-a-queue",
        _dedup_keys("nq"),
        _dedup_args("unique_for"),
        Failure("JOBQ_NOT_A_QUEUE string"),
        before={"q": "oops"},
        after={"q": "oops", "arq:job:j1": None, LOCK: None},
    ),
    Case(
        "enqueue_dedup",
        "a-job-with-a-bad-field-writes-nothing",
        _dedup_keys("bad"),
        _dedup_args("sometimes"),
        Failure("JOBQ_BAD_JOB 1"),
        after={"q": None, "arq:job:j1": None, LOCK: None, "jobq:enqueued:bad": None},
    ),
    # permission_probe (no ACL in the tests: nothing is refused, nothing changes)
    Case(
        "permission_probe",
        "everything-allowed-changes-nothing",
        probe_keys("q"),
        [PROBE_ID],
        [],
        before={"q": Z({"a": 1})},
        after={"q": Z({"a": 1})},
    ),
    # dependencies (includes/deps.lua): an end releases or cancels the jobs waiting on it
    Case(
        "finish_many",
        "a-success-queues-the-dependent-it-was-the-last-of-and-counts-down-the-other",
        ["q"],
        [_jobs("a", "t1", "res", "60000"), 300000, FINISH_KEY_PREFIXES, "s", 5000, DEP_PREFIXES],
        [1],
        before={
            "q": Z({"a": 1}),
            "arq:in-progress:a": "t1",
            "jobq:next:a": "b c ",
            "jobq:wait:b": H({"n": "1", "q": "q2", "p": "0", "c": "0"}),
            "jobq:wait:c": H({"n": "2", "q": "q2", "p": "0", "c": "0"}),
        },
        after={
            "q": None,
            "q2": Z({"b": 5000}),
            "jobq:marker:q2": Z({"m": 5000}),
            "jobq:wait:b": None,
            "jobq:wait:c": H({"n": "1", "q": "q2", "p": "0", "c": "0"}),
            "jobq:next:a": None,
        },
    ),
    Case(
        "finish_many",
        "an-abort-cancels-the-dependents-and-theirs",
        ["q"],
        [_jobs("a", "t1", "res", "60000"), 300000, FINISH_KEY_PREFIXES, "a", 5000, DEP_PREFIXES],
        [1],
        before={
            "arq:in-progress:a": "t1",
            "jobq:next:a": "b ",
            "jobq:wait:b": H({"n": "1", "q": "q2", "p": "0", "c": "0"}),
            "jobq:next:b": "c ",
            "jobq:wait:c": H({"n": "1", "q": "q2", "p": "0", "c": "0"}),
        },
        after={
            "q2": None,
            "jobq:wait:b": H({"n": str(1 + CANCELLED), "q": "q2", "p": "0", "c": "0", "cause": "a"}),
            "jobq:wait:c": H({"n": str(1 + CANCELLED), "q": "q2", "p": "0", "c": "0", "cause": "a"}),
        },
    ),
    Case(
        "finish_many",
        "the-success-of-a-replayed-cause-resumes-what-it-cancelled",
        ["q"],
        [_jobs("a", "t1", "res", "60000"), 300000, FINISH_KEY_PREFIXES, "s", 5000, DEP_PREFIXES],
        [1],
        before={
            "arq:in-progress:a": "t1",
            "jobq:next:a": "b ",
            "jobq:wait:b": H({"n": str(1 + CANCELLED), "q": "q2", "p": "0", "c": "0", "cause": "a"}),
            "jobq:next:b": "c ",
            "jobq:wait:c": H({"n": str(1 + CANCELLED), "q": "q2", "p": "0", "c": "0", "cause": "a"}),
        },
        after={
            "q2": Z({"b": 5000}),
            "jobq:wait:b": None,
            "jobq:wait:c": H({"n": "1", "q": "q2", "p": "0", "c": "0"}),
        },
    ),
    Case(
        "dead_letter",
        "a-dead-letter-cancels-its-dependents-and-keeps-their-list-for-a-replay",
        [
            "q",
            "arq:job:a",
            "arq:retry:a",
            "arq:in-progress:a",
            "jobq:meta:a",
            "jobq:abort:a",
            "arq:result:a",
            "jobq:dlq:q",
            "jobq:dlq:q:index",
            "jobq:next:a",
        ],
        ["a", "res", 60000, "t1", "entry", 5000, 100, 600000, DEP_PREFIXES],
        0,
        before={
            "q": Z({"a": 1}),
            "arq:in-progress:a": "t1",
            "jobq:next:a": "b d ",
            "jobq:wait:b": H({"n": "1", "q": "q2", "p": "0", "c": "0"}),
            "jobq:wait:d": H({"n": "1", "q": "q2", "p": "0", "c": "1"}),
        },
        after={
            "jobq:wait:b": H({"n": str(1 + CANCELLED), "q": "q2", "p": "0", "c": "0", "cause": "a"}),
            "jobq:wait:d": None,
            "q2": Z({"d": 5000}),
            "jobq:next:a": "b ",
            "arq:result:a": "res",
        },
    ),
    # enqueue_after: queue; id, envelope, ttl, priority, deps, prefixes, now, continue
    Case(
        "enqueue_after",
        "met-dependencies-queue-the-job-at-once",
        ["q"],
        ["j", "env", 60000, 0, '["a"]', AFTER_PREFIXES, 5000, "0"],
        "queued",
        before={"arq:result:a": '{"v":1,"d":{"s":true,"r":1}}'},
        after={"q": Z({"j": 5000}), "arq:job:j": "env", "jobq:wait:j": None},
    ),
    Case(
        "enqueue_after",
        "a-pending-dependency-blocks-it-a-failed-one-cancels-it",
        ["q"],
        ["j", "env", 60000, 0, '["a", "f"]', AFTER_PREFIXES, 5000, "0"],
        "cancelled",
        before={"arq:job:a": "e", "arq:result:f": '{"v":1,"d":{"s":false,"r":{}}}'},
        after={
            "q": None,
            "arq:job:j": "env",
            "jobq:wait:j": H({"n": str(2 + CANCELLED), "q": "q", "p": "0", "c": "0", "cause": "f"}),
            "jobq:next:a": "j ",
            "jobq:next:f": "j ",
        },
    ),
    Case(
        "enqueue_after",
        "an-unknown-dependency-is-refused-and-nothing-written",
        ["q"],
        ["j", "env", 60000, 0, '["nope"]', AFTER_PREFIXES, 5000, "0"],
        Failure("JOBQ_UNKNOWN_DEPENDENCY nope"),
        after={"arq:job:j": None, "jobq:wait:j": None},
    ),
    # workflow_stage, workflow_activate: a chord of two members
    Case(
        "workflow_stage",
        "a-round-writes-envelopes-blocked-records-and-lists-and-queues-nothing",
        ["jobq:wf:w"],
        [
            _jobs(
                "w.0.0.0",
                "q",
                "e1",
                "0",
                "0",
                "w.0.1 ",
                "w.0.0.1",
                "q",
                "e2",
                "0",
                "0",
                "w.0.1 ",
                "w.0.1",
                "q",
                "e3",
                "2",
                "0",
                "",
            ),
            60000,
            STAGE_PREFIXES,
            1,
            "tok",
            '{"tree":"{}"}',
            "0",
        ],
        3,
        after={
            "q": None,
            "arq:job:w.0.0.0": "e1",
            "jobq:next:w.0.0.0": "w.0.1 ",
            "jobq:wait:w.0.1": H({"n": "2", "q": "q", "p": "0", "c": "0"}),
            "jobq:wf:w": H({"token": "tok", "state": "staging", "rounds": "1", "tree": "{}"}),
        },
    ),
    Case(
        "workflow_activate",
        "activation-queues-the-first-steps-once-and-indexes-the-workflow",
        ["jobq:wf:w", "jobq:workflows"],
        ["tok", 1, '["q", "w.0.0.0", 0, "q", "w.0.0.1", 0]', 5000, "jobq:marker:", "w", 60000, 2],
        1,
        before={
            "jobq:wf:w": H({"token": "tok", "state": "staging", "rounds": "1"}),
            "jobq:workflows": Z({"old": 1000, "older": 500}),
        },
        after={
            "q": Z({"w.0.0.0": 5000, "w.0.0.1": 5000}),
            "jobq:wf:w": H({"token": "tok", "state": "running", "rounds": "1", "started": "5000"}),
            "jobq:workflows": Z({"old": 1000, "w": 5000}),
        },
    ),
    Case(
        "workflow_activate",
        "a-missing-round-queues-nothing",
        ["jobq:wf:w", "jobq:workflows"],
        ["tok", 2, '["q", "w.0.0.0", 0]', 5000, "jobq:marker:", "w", 60000, 10000],
        Failure("JOBQ_WORKFLOW_INCOMPLETE"),
        before={"jobq:wf:w": H({"token": "tok", "state": "staging", "rounds": "1"})},
        after={"q": None, "jobq:workflows": None},
    ),
    # workflow_end
    Case(
        "workflow_end",
        "the-last-of-the-last-steps-completes-the-workflow-once",
        ["jobq:wf:w"],
        ["done", "w.1", 7000],
        1,
        before={"jobq:wf:w": H({"state": "running", "left": "1"})},
        after={
            "jobq:wf:w": H(
                {"state": "running", "left": "0", "done:w.1": "7000", "ended": "succeeded", "ended_ms": "7000"}
            )
        },
    ),
    Case(
        "workflow_end",
        "a-second-send-of-a-last-step-counts-nothing",
        ["jobq:wf:w"],
        ["done", "w.1", 7000],
        0,
        before={"jobq:wf:w": H({"state": "running", "left": "1", "done:w.1": "6000"})},
        after={"jobq:wf:w": H({"state": "running", "left": "1", "done:w.1": "6000"})},
    ),
    Case(
        "workflow_end",
        "a-last-step-with-others-left-only-counts-down",
        ["jobq:wf:w"],
        ["done", "w.1", 7000],
        0,
        before={"jobq:wf:w": H({"state": "running", "left": "2"})},
        after={"jobq:wf:w": H({"state": "running", "left": "1", "done:w.1": "7000"})},
    ),
    Case(
        "workflow_end",
        "the-first-failure-fails-the-workflow-the-second-not",
        ["jobq:wf:w"],
        ["failed", "w.2", 7000],
        0,
        before={"jobq:wf:w": H({"state": "running", "failed": "w.1", "ended": "failed", "ended_ms": "6000"})},
        after={"jobq:wf:w": H({"state": "running", "failed": "w.1", "ended": "failed", "ended_ms": "6000"})},
    ),
    Case(
        "workflow_end",
        "a-failure-fails-the-workflow",
        ["jobq:wf:w"],
        ["failed", "w.1", 7000],
        1,
        before={"jobq:wf:w": H({"state": "running"})},
        after={"jobq:wf:w": H({"state": "running", "failed": "w.1", "ended": "failed", "ended_ms": "7000"})},
    ),
    Case(
        "workflow_end",
        "an-expired-record-is-not-written",
        ["jobq:wf:w"],
        ["done", "w.1", 7000],
        0,
        after={"jobq:wf:w": None},
    ),
]


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


async def _write(redis: Redis, key: str, value: Value) -> None:
    if isinstance(value, Z):
        await redis.zadd(key, {m: s or 0 for m, s in value.items()})
    elif isinstance(value, H):
        await redis.hset(key, mapping=dict(value))  # type: ignore[misc]
    elif value is not None:
        await redis.set(key, value)


async def _read(redis: Redis, key: str, like: Value) -> Value:
    kind = _text(await redis.type(key))
    if kind == "none":
        return None
    if kind == "zset":
        pairs = await redis.zrange(key, 0, -1, withscores=True)
        return Z({_text(m): (None if isinstance(like, Z) and like.get(_text(m), 0) is None else s) for m, s in pairs})
    if kind == "hash":
        return H({_text(k): _text(v) for k, v in (await redis.hgetall(key)).items()})  # type: ignore[misc]
    return str(_text(await redis.get(key)))


async def check(redis: Redis, case: Case) -> None:
    """Write the keys before, run the script, compare its reply and the keys after (``redis`` starts empty)."""
    for key, value in case.before.items():
        await _write(redis, key, value)
    script = Scripts.of(redis)[case.script]
    if isinstance(case.reply, Failure):
        with pytest.raises(ResponseError, match=f"^{re.escape(case.reply.prefix)}"):
            await script(case.keys, case.args)
    else:
        assert _text(await script(case.keys, case.args)) == case.reply
    for key, expected in case.after.items():
        assert await _read(redis, key, expected) == expected, key
