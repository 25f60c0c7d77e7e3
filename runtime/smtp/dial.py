"""A TCP connection to a mail server within the connect timeout and its step's deadline, name lookup included."""

from __future__ import annotations

import socket
from collections.abc import Sequence

from jcsh.runtime.hosts import host_port
from jcsh.runtime.smtp.deadline import Deadline, Timeouts
from jcsh.runtime.smtp.wire import Wire

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from jcsh.runtime.smtp.transcript import Transcript

__all__ = ["connect"]


def connect(
    host: str,
    port: int,
    timeouts: Timeouts,
    deadline: Deadline,
    *,
    transcript: Transcript | None = None,
    wake: int | None = None,
) -> Wire:
    """A TCP connection within the connect timeout and the step's deadline (OSError when refused)."""
    where = host_port(host, port)
    limit = deadline.narrowed(timeouts.connect, "the connect timeout is")
    error: OSError | None = None
    for family, kind, proto, _, address in _resolve(host, port, limit, where):
        left = limit.left()
        if left <= 0:
            break
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(left)  # one connect() call: bounded as a whole by this
            sock.connect(address)
        except OSError as e:
            sock.close()
            error = e
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # request and reply, never a stream
        return Wire(sock, where, timeouts, transcript=transcript, wake=wake)
    if error is None or isinstance(error, TimeoutError):
        raise limit.expired(where)
    raise error


_Address = tuple[
    socket.AddressFamily, socket.SocketKind, int, str, tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]
]


def _resolve(host: str, port: int, deadline: Deadline, where: str) -> Sequence[_Address]:
    # An ASCII name as bytes: getaddrinfo encodes a str with the idna codec, whose import costs
    # start-up milliseconds and gives the same bytes for an ASCII name.
    name: str | bytes = host.encode("ascii") if host.isascii() else host
    for family in (socket.AF_INET, socket.AF_INET6):
        # An address as it is written: what getaddrinfo(AI_NUMERICHOST) would answer, without its
        # work and without letting go of the GIL (a hand-over to another of a probe's threads).
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        address = (host, port) if family == socket.AF_INET else (host, port, 0, 0)
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)]
    try:
        return socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    # getaddrinfo takes no timeout: ask in a thread and stop waiting for it at the deadline.
    import threading

    found: list[_Address] = []
    failed: list[OSError] = []

    def lookup() -> None:
        try:
            found.extend(socket.getaddrinfo(name, port, type=socket.SOCK_STREAM))
        except OSError as e:
            failed.append(e)

    thread = threading.Thread(target=lookup, name="jcsh-resolve", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline.left()))
    if thread.is_alive():
        raise deadline.expired(where)
    if failed:
        raise failed[0]
    return found
