"""A raw-socket SMTP server offering PIPELINING (and CHUNKING) that records how commands arrive grouped.

A group is every command received before the server next falls quiet for `idle` seconds: a client
that waits for MAIL's reply before sending RCPT shows up as [MAIL], [RCPT] instead of [MAIL, RCPT].
The server answers a group only once it is complete, in order, as RFC 2920 allows.
"""

from __future__ import annotations

import socket

from tests.support.mailconf import RawServer

__all__ = ["Pipelined"]


class Pipelined(RawServer):
    """Replies: `mail` to MAIL, `rcpt[address]` (default 250) to RCPT; a 421 closes the connection."""

    def __init__(
        self,
        *,
        chunking: bool = False,
        mail: bytes = b"250 2.1.0 ok",
        rcpt: dict[str, bytes] | None = None,
        idle: float = 0.25,
    ) -> None:
        super().__init__(self._session)
        self.chunking = chunking
        self.mail_reply = mail
        self.rcpt_replies = rcpt or {}
        self.idle = idle
        self.groups: list[list[str]] = []
        self.messages: list[bytes] = []
        self.chunks: list[int] = []  # BDAT sizes, in order

    def __enter__(self) -> Pipelined:
        super().__enter__()
        return self

    def _session(self, conn: socket.socket) -> None:
        self._pending = b""
        conn.sendall(b"220 pipe.test ESMTP\r\n")
        self._mail_ok, self._accepted = False, 0
        self._body = bytearray()
        while True:
            group = self._group(conn)
            if not group:
                return
            self.groups.append([c for c, _ in group])
            for command, data in group:
                if not self._answer(conn, command, data):
                    return

    def _group(self, conn: socket.socket) -> list[tuple[str, bytes]]:
        """Commands (and BDAT chunks) until the client falls quiet."""
        group: list[tuple[str, bytes]] = []
        while True:
            line = self._line(conn, wait=not group)
            if line is None:
                return group
            command = line.decode("utf-8", "replace")
            data = b""
            words = command.split()
            if words and words[0].upper() == "BDAT":
                data = self._exactly(conn, int(words[1]))
            group.append((command, data))
            if words and words[0].upper() in ("EHLO", "HELO", "QUIT", "STARTTLS"):
                return group  # never pipelined: answer now

    def _line(self, conn: socket.socket, *, wait: bool) -> bytes | None:
        conn.settimeout(5 if wait else self.idle)
        while b"\r\n" not in self._pending:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                return None
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\r\n")
        return line

    def _exactly(self, conn: socket.socket, size: int) -> bytes:
        conn.settimeout(5)
        while len(self._pending) < size:
            chunk = conn.recv(65536)
            if not chunk:
                break
            self._pending += chunk
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def _answer(self, conn: socket.socket, command: str, data: bytes) -> bool:
        verb = command.split(" ", 1)[0].upper()
        if verb == "EHLO":
            offers = b"250-PIPELINING\r\n" + (b"250-CHUNKING\r\n" if self.chunking else b"")
            conn.sendall(b"250-pipe.test\r\n" + offers + b"250 SIZE 10000000\r\n")
        elif verb == "MAIL":
            self._mail_ok = self.mail_reply.startswith(b"250")
            conn.sendall(self.mail_reply + b"\r\n")
            if self.mail_reply.startswith(b"421"):
                return False
        elif verb == "RCPT":
            address = command.partition("<")[2].partition(">")[0]
            reply = self.rcpt_replies.get(address, b"250 2.1.5 ok") if self._mail_ok else b"503 5.5.1 MAIL first"
            self._accepted += reply.startswith(b"25")
            conn.sendall(reply + b"\r\n")
            if reply.startswith(b"421"):
                return False
        elif verb == "DATA":
            if not self._accepted:
                conn.sendall(b"554 5.5.1 no valid recipients\r\n")
                return True
            conn.sendall(b"354 go ahead\r\n")
            body = bytearray()
            while (line := self._line(conn, wait=True)) not in (b".", None):
                body += (line[1:] if line.startswith(b".") else line) + b"\r\n"
            self._delivered(conn, bytes(body))
        elif verb == "BDAT":
            self.chunks.append(len(data))
            if not self._accepted:
                conn.sendall(b"503 5.5.1 no valid recipients\r\n")
                return True
            self._body += data
            if command.upper().endswith(" LAST"):
                self._delivered(conn, bytes(self._body))
            else:
                conn.sendall(b"250 2.0.0 chunk ok\r\n")
        elif verb == "RSET":
            self._mail_ok, self._accepted, self._body = False, 0, bytearray()
            conn.sendall(b"250 2.0.0 reset\r\n")
        elif verb == "QUIT":
            conn.sendall(b"221 2.0.0 bye\r\n")
            return False
        else:
            conn.sendall(b"502 5.5.2 not here\r\n")
        return True

    def _delivered(self, conn: socket.socket, message: bytes) -> None:
        self.messages.append(message)
        conn.sendall(b"250 2.0.0 queued as PIPE%d\r\n" % len(self.messages))
        self._mail_ok, self._accepted, self._body = False, 0, bytearray()
