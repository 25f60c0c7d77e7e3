"""javax.net.ssl.SSLContext, enough for `SSLContext.getDefault().getSupportedSSLParameters().getProtocols()`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["SSLContext", "SSLParameters", "set_protocols_source"]

# Where the protocol facts come from: a callable returning the `jcsh tls protocols --json`
# document ({"protocols": [...], "default_enabled": [...], ...}). In the sandbox the worker
# cannot open files or sockets, so the sandbox wires this to a request to the parent;
# None means "ask runtime directly" (outside the sandbox).
_protocols_source: Callable[[], dict[str, Any]] | None = None


def set_protocols_source(source: Callable[[], dict[str, Any]] | None) -> None:
    """Route protocol questions through `source` (the sandbox's request to its parent)."""
    global _protocols_source
    _protocols_source = source


def _report() -> dict[str, Any]:
    if _protocols_source is not None:
        return _protocols_source()
    from jcsh.runtime.tls.protocols import supported_protocols

    return supported_protocols().to_json()


class SSLParameters:
    """The protocol list of a context, as Java's SSLParameters gives it."""

    def __init__(self, protocols: list[str]) -> None:
        self._protocols = list(protocols)

    def getProtocols(self) -> list[str]:
        """Protocol names, newest first (e.g. ["TLSv1.3", "TLSv1.2"])."""
        return list(self._protocols)

    def __repr__(self) -> str:
        return f"SSLParameters(protocols={self._protocols!r})"


class SSLContext:
    """The default TLS context of this machine, Java-style."""

    def __init__(self, protocol: str = "Default") -> None:
        self._protocol = protocol

    @staticmethod
    def getDefault() -> SSLContext:
        """The default context."""
        return SSLContext()

    @staticmethod
    def getInstance(protocol: str) -> SSLContext:
        """A context for `protocol` ("TLS", "TLSv1.2", ...); it reports the same machine facts."""
        return SSLContext(str(protocol))

    def getProtocol(self) -> str:
        """The name this context was asked for."""
        return self._protocol

    def getSupportedSSLParameters(self) -> SSLParameters:
        """Every version a handshake succeeds at on this machine, newest first."""
        return SSLParameters(_report()["protocols"])

    def getDefaultSSLParameters(self) -> SSLParameters:
        """The versions a verifying client enables by default, newest first."""
        return SSLParameters(_report()["default_enabled"])

    def __repr__(self) -> str:
        return f"SSLContext({self._protocol!r})"
