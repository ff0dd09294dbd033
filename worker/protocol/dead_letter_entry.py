"""One dead letter as stored: the record, its JSON form, and the strict reading of what Redis holds.

The worker writes each entry with :meth:`DeadLetter.to_json`; anything else found in the store (not
JSON, not an object, a field missing or of the wrong type, an index member without its entry) is
read as a *corrupt* entry (:meth:`DeadLetter.corrupted`): listed with its id, a short reason and the
raw size, never a crash. Replaying a corrupt entry raises :class:`~worker.errors.CorruptDeadLetter`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from worker.errors import CorruptDeadLetter

#: The ``error_type`` of corrupt entries (filter on ``CorruptDeadLetter`` to select them).
CORRUPT_ERROR_TYPE = f"{CorruptDeadLetter.__module__}.{CorruptDeadLetter.__qualname__}"
#: The largest time in milliseconds a datetime can hold (the end of year 9999).
MAX_TIME_MS = 253_402_300_799_999
_INT_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One job that failed for good: what it was, why it failed, and when.

    ``corrupt`` is ``None`` for an entry jobq wrote; otherwise it says what is wrong with the stored
    bytes (``raw_size`` of them), and the other fields are placeholders. Neither is part of the stored form.
    """

    job_id: str
    queue: str
    task: str
    error_type: str
    message: str
    traceback: str | None
    tries: int  #: charged tries (failures) when it was dead-lettered
    interruptions: int  #: tries cut short by crashes or shutdowns
    enqueued_at_ms: int
    failed_at_ms: int
    envelope: str | None  #: the job's envelope as stored, base64 when it was not UTF-8
    envelope_base64: bool = False
    corrupt: str | None = None  #: what is wrong with the stored entry; None when it is sound
    raw_size: int = 0  #: bytes of the stored entry (set for corrupt entries)

    @property
    def failed_at(self) -> datetime:
        """When the job was dead-lettered."""
        return datetime.fromtimestamp(self.failed_at_ms / 1000, tz=UTC)

    @property
    def enqueued_at(self) -> datetime:
        """When the job was enqueued (0 = unknown, for jobs that could not be decoded)."""
        return datetime.fromtimestamp(self.enqueued_at_ms / 1000, tz=UTC)

    def envelope_bytes(self) -> bytes | None:
        """The envelope exactly as it was stored in the job key."""
        if self.envelope is None:
            return None
        return base64.b64decode(self.envelope) if self.envelope_base64 else self.envelope.encode()

    def to_json(self) -> bytes:
        """The stored form of the entry."""
        data = asdict(self)
        del data["corrupt"], data["raw_size"]
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        """Read a stored entry; :class:`CorruptDeadLetter` when it is not one jobq wrote."""
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
        try:
            found = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            reason = "not UTF-8 text" if "UTF-8" in str(exc) else "not JSON"
            raise _corrupt(None, reason, len(data)) from None
        if not isinstance(found, dict):
            raise _corrupt(None, f"not a JSON object (a {type(found).__name__})", len(data))
        problem = entry_problem(found)
        if problem is not None:
            raise _corrupt(found.get("job_id") if isinstance(found.get("job_id"), str) else None, problem, len(data))
        return cls(**{f: found[f] for f in _STORED if f in found})

    @classmethod
    def read(cls, job_id: str, queue: str, raw: bytes | None, *, failed_at_ms: int = 0) -> DeadLetter:
        """The entry stored for ``job_id`` (``None``: listed in the index only), corrupt entries included."""
        if raw is None:
            return cls.corrupted(job_id, queue, "listed in the index but its entry is missing", 0, failed_at_ms)
        try:
            entry = cls.from_json(raw)
        except CorruptDeadLetter as exc:
            return cls.corrupted(job_id, queue, exc.reason, exc.raw_size, failed_at_ms)
        if entry.job_id != job_id:
            reason = f"its job_id field names job {entry.job_id!r}, not this one"
            return cls.corrupted(job_id, queue, reason, len(raw), failed_at_ms)
        return entry

    @classmethod
    def corrupted(cls, job_id: str, queue: str, reason: str, raw_size: int, failed_at_ms: int = 0) -> DeadLetter:
        """The placeholder listed for a corrupt entry: its id, ``reason`` and size; purge it to remove it."""
        return cls(
            job_id=job_id,
            queue=queue,
            task="",
            error_type=CORRUPT_ERROR_TYPE,
            message=f"corrupt dead letter: {reason} ({raw_size} bytes)",
            traceback=None,
            tries=0,
            interruptions=0,
            enqueued_at_ms=0,
            failed_at_ms=min(max(failed_at_ms, 0), MAX_TIME_MS),
            envelope=None,
            corrupt=reason,
            raw_size=raw_size,
        )

    def refuse_corrupt(self) -> None:
        """Raise :class:`CorruptDeadLetter` when this entry is corrupt (it cannot be replayed)."""
        if self.corrupt is not None:
            message = (
                f"dead letter {self.job_id} on queue {self.queue!r} is corrupt ({self.corrupt}, "
                f"{self.raw_size} bytes) and cannot be replayed; purge it"
            )
            raise CorruptDeadLetter(message, job_id=self.job_id, reason=self.corrupt, raw_size=self.raw_size)

    @staticmethod
    def encode_envelope(raw: bytes | None) -> tuple[str | None, bool]:
        """``(text, is_base64)`` for keeping ``raw`` in a JSON entry without losing a byte."""
        if raw is None:
            return None, False
        try:
            return raw.decode(), False
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode(), True


#: The stored fields and the types each may hold.
_STORED: dict[str, tuple[type, ...]] = {
    "job_id": (str,),
    "queue": (str,),
    "task": (str,),
    "error_type": (str,),
    "message": (str,),
    "traceback": (str, type(None)),
    "tries": (int,),
    "interruptions": (int,),
    "enqueued_at_ms": (int,),
    "failed_at_ms": (int,),
    "envelope": (str, type(None)),
    "envelope_base64": (bool,),
}
_OPTIONAL = frozenset({"envelope_base64"})
_TIMES = frozenset({"enqueued_at_ms", "failed_at_ms"})


def entry_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a decoded entry, or ``None`` when it is one jobq wrote (unknown keys are ignored)."""
    for name, kinds in _STORED.items():
        if name not in data:
            if name in _OPTIONAL:
                continue
            return f"the field {name} is missing"
        value = data[name]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            return f"the field {name} is a {type(value).__name__}, not {' or '.join(k.__name__ for k in kinds)}"
        if isinstance(value, int) and not isinstance(value, bool):
            top = MAX_TIME_MS if name in _TIMES else _INT_MAX
            if not 0 <= value <= top:
                return f"the field {name} is out of range ({value})"
    if data.get("envelope_base64") and isinstance(data["envelope"], str):
        try:
            base64.b64decode(data["envelope"], validate=True)
        except binascii.Error:
            return "the field envelope is not base64 although envelope_base64 is set"
    return None


def _corrupt(job_id: str | None, reason: str, raw_size: int) -> CorruptDeadLetter:
    who = f"dead letter {job_id}" if job_id else "a dead letter"
    return CorruptDeadLetter(f"{who} is corrupt: {reason}", job_id=job_id, reason=reason, raw_size=raw_size)
