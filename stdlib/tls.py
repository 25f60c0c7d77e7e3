"""`tls`: the TLS versions this machine supports, and what a server accepts."""

from __future__ import annotations

from typing import Any

from jcsh.stdlib.errors import request
from jcsh.stdlib.records import check_number, check_text, check_texts, to_records

__all__ = ["TlsStub"]


class TlsStub:
    """TLS facts: protocols() of this machine, probe() of a server."""

    __slots__ = ("_link",)

    def __init__(self, link: Any) -> None:
        self._link = link

    def protocols(self) -> list[str]:
        """The protocol versions this machine can negotiate, newest first (e.g. ["TLSv1.3", "TLSv1.2"])."""
        return list(request(self._link, "tls.protocols")["protocols"])

    def report(self) -> Any:
        """The whole protocol report (as `jcsh tls protocols --json`)."""
        return to_records(request(self._link, "tls.protocols"))

    def probe(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        mode: str | None = None,
        servername: str | None = None,
        protocols: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """Which TLS versions a server accepts, its certificate and trust (as `jcsh tls probe --json`).

        `timeout` is the time each step may take (default: the mail.smtp.*timeout settings); the
        script's own time limit bounds the whole call.
        """
        if port is not None and type(port) is not int:
            raise TypeError("port must be an int")
        return to_records(
            request(
                self._link,
                "tls.probe",
                {
                    "host": check_text(host, "host", optional=True),
                    "port": port,
                    "mode": check_text(mode, "mode", optional=True),
                    "servername": check_text(servername, "servername", optional=True),
                    "protocols": check_texts(protocols, "protocols") if protocols is not None else None,
                    "timeout": check_number(timeout, "timeout", optional=True),
                },
            )
        )

    def __repr__(self) -> str:
        return "tls"
