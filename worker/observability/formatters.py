"""The two line formats of ``JOBQ_LOG_FORMAT``: text (``logging.Formatter`` with a cached time stamp) and JSON."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["TEXT_FORMAT", "JsonFormatter", "TextFormatter"]

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_STANDARD_RECORD_KEYS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, any ``extra`` fields, and the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = self.entry(record.created, record.levelname, record.name, record.getMessage())
        for key, value in vars(record).items():
            if key not in _STANDARD_RECORD_KEYS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()

    @staticmethod
    def entry(created: float, levelname: str, name: str, message: str) -> dict[str, Any]:
        """The fields every line starts with."""
        return {
            "ts": datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": levelname,
            "logger": name,
            "message": message,
        }


class TextFormatter(logging.Formatter):
    """``logging.Formatter`` with the time of day formatted once per second, not once per line."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """What ``logging.Formatter`` writes (``2026-01-31 12:00:00,123``), from a per-second cache."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self.time_of(record.created, record.msecs)

    def time_of(self, created: float, msecs: float) -> str:
        """``created`` (with ``msecs``, as a ``LogRecord`` has them) as ``formatTime`` writes it."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime(self.default_time_format, self.converter(created))
        return f"{self._stamp},{int(msecs):03d}"  # logging.Formatter.default_msec_format
