"""jobq's stderr handler: the lines of one event-loop iteration leave in one write and flush."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, TextIO

import orjson

from worker.observability.formatters import JsonFormatter, TextFormatter

__all__ = ["StderrLines"]


class StderrLines(logging.StreamHandler[TextIO]):
    """jobq's stderr handler: the lines of one event-loop iteration leave in one write and flush.

    Outside a running event loop (or on a second loop at the same time) a line is written at once,
    after any buffered ones. Buffered lines are written at the start of the next loop iteration, by
    ``flush()`` (which ``logging.shutdown`` calls at exit) and before any direct write; a killed
    process loses at most the lines of its last iteration.
    """

    def __init__(self, stream: TextIO, formatter: TextFormatter | JsonFormatter) -> None:
        super().__init__(stream)
        self.own_formatter = formatter
        self.json_lines = isinstance(formatter, JsonFormatter)
        self.setFormatter(formatter)
        self._lines: list[str] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None

    def direct_ok(self, level: int) -> bool:
        """Whether a line at ``level`` may skip the record: nothing filters it and the format is ours."""
        return level >= self.level and not self.filters and self.formatter is self.own_formatter

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer (or write) the formatted record; errors go to ``handleError`` as in ``StreamHandler``."""
        try:
            self._add(self.format(record))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def emit_line(self, logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
        """What ``emit`` would write for a record of ``logger`` with ``message`` and ``fields`` as extras.

        Only for the formatter it was made with (see :meth:`direct_ok`); text lines show no extras.
        """
        created = time.time()
        levelname = logging.getLevelName(level)
        formatter = self.own_formatter
        if isinstance(formatter, JsonFormatter):
            entry = formatter.entry(created, levelname, logger.name, message)
            entry.update(fields)
            line = orjson.dumps(entry, default=str).decode()
        else:  # with TEXT_FORMAT, which configure_logging gave it
            msecs = int((created - int(created)) * 1000) + 0.0
            line = f"{formatter.time_of(created, msecs)} {levelname:<7} {logger.name}: {message}"
        self.acquire()
        try:
            self._add(line)
        except RecursionError:
            raise
        except Exception:
            self.handleError(logger.makeRecord(logger.name, level, __file__, 0, message, (), None))
        finally:
            self.release()

    def _add(self, line: str) -> None:
        """Buffer ``line`` until the end of this loop iteration, or write it now; the lock is held."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # no loop runs in this thread
            loop = None
        self._lines.append(line)
        if loop is None or (self._flush_loop is not None and self._flush_loop is not loop):
            self._write_out()
        elif self._flush_loop is None:
            self._flush_loop = loop
            loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        try:
            self.flush()
        except Exception:  # an exception here would be logged by asyncio, through this handler
            self.handleError(logging.LogRecord(__name__, logging.ERROR, __file__, 0, "flush", (), None))

    def flush(self) -> None:
        """Write the buffered lines, in order, then flush the stream."""
        self.acquire()
        try:
            self._write_out()
        finally:
            self.release()

    def _write_out(self) -> None:
        self._flush_loop = None
        lines, self._lines = self._lines, []  # taken before writing: a failed write is never repeated
        if lines:
            self.stream.write(self.terminator.join(lines) + self.terminator)
        if self.stream and hasattr(self.stream, "flush"):
            self.stream.flush()
