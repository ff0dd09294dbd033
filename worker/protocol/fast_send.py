"""redis-py 5's asyncio connections, sending a command without a task of its own.

With a ``socket_timeout`` (jobq always sets one), redis-py 5.3 sends each command inside ``asyncio.wait_for``,
which on Python 3.11 wraps the send in a new task: an allocation and extra turns of the event loop for every
command (the writes are buffered and almost never wait). These connections bound the wait with
``asyncio.timeout`` instead, with the same errors and the same disconnect as redis-py's
(``AbstractConnection.send_packed_command`` of the pinned version).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.sentinel import SentinelManagedConnection, SentinelManagedSSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "FAST_SEND",
    "FastSendConnection",
    "FastSendSSLConnection",
    "FastSendSentinelConnection",
    "FastSendSentinelSSLConnection",
    "FastSendUnixConnection",
]


class _FastSend(AbstractConnection):
    __slots__ = ()

    async def send_packed_command(self, command: bytes | str | Iterable[bytes], check_health: bool = True) -> None:
        if not self.socket_timeout:
            return await super().send_packed_command(command, check_health)
        if not self.is_connected:
            await self.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        elif check_health:
            await self.check_health()  # type: ignore[no-untyped-call]
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        writer = self._writer
        assert writer is not None  # connected above
        try:
            async with asyncio.timeout(self.socket_timeout):
                writer.writelines(command)
                await writer.drain()
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as e:
            await self.disconnect(nowait=True)
            err_no, errmsg = ("UNKNOWN", e.args[0]) if len(e.args) == 1 else (e.args[0], e.args[1])
            raise RedisConnectionError(f"Error {err_no} while writing to socket. {errmsg}.") from e
        except BaseException:
            await self.disconnect(nowait=True)  # a send cut short leaves the connection unusable (as redis-py)
            raise


class FastSendConnection(_FastSend, Connection):
    """A TCP connection (``redis://``)."""


class FastSendSSLConnection(_FastSend, SSLConnection):
    """A TLS connection (``rediss://``)."""


class FastSendUnixConnection(_FastSend, UnixDomainSocketConnection):
    """A Unix socket connection (``unix://``)."""


class FastSendSentinelConnection(_FastSend, SentinelManagedConnection):
    """A TCP connection to the master a sentinel named."""


class FastSendSentinelSSLConnection(_FastSend, SentinelManagedSSLConnection):
    """A TLS connection to the master a sentinel named."""


#: redis-py's connection class -> the one jobq uses instead.
FAST_SEND: dict[type[Any], type[AbstractConnection]] = {
    Connection: FastSendConnection,
    SSLConnection: FastSendSSLConnection,
    UnixDomainSocketConnection: FastSendUnixConnection,
    SentinelManagedConnection: FastSendSentinelConnection,
    SentinelManagedSSLConnection: FastSendSentinelSSLConnection,
}
