"""javax.net.ssl.SSLContext, enough for `SSLContext.getDefault().getSupportedSSLParameters().getProtocols()`."""

from __future__ import annotations

from typing import Any

from jcsh.stdlib.errors import request

__all__ = ["SSLContext", "SSLContextStub", "SSLParameters", "LocalLink"]


class SSLParameters:
    """The protocol list of a context, as Java's SSLParameters gives it."""

    def __init__(self, protocols: list[str]) -> None:
        self._protocols = list(protocols)

    def getProtocols(self) -> list[str]:
        """Protocol names, newest first (e.g. ["TLSv1.3", "TLSv1.2"])."""
        return list(self._protocols)

    def __repr__(self) -> str:
        return f"SSLParameters(protocols={self._protocols!r})"


class SSLContextStub:
    """The default TLS context of this machine, Java-style (`SSLContext.getDefault()` and its parameters).

    Like the other stubs it asks over its link: in the sandbox the parent (`tls.protocols`),
    outside it runtime directly (`LocalLink`).
    """

    __slots__ = ("_link", "_protocol")

    def __init__(self, link: Any, protocol: str = "Default") -> None:
        self._link = link
        self._protocol = protocol

    def getDefault(self) -> SSLContextStub:
        """The default context."""
        return SSLContextStub(self._link)

    def getInstance(self, protocol: str) -> SSLContextStub:
        """A context for `protocol` ("TLS", "TLSv1.2", ...); it reports the same machine facts."""
        return SSLContextStub(self._link, str(protocol))

    def getProtocol(self) -> str:
        """The name this context was asked for."""
        return self._protocol

    def getSupportedSSLParameters(self) -> SSLParameters:
        """Every version a handshake succeeds at on this machine, newest first."""
        return SSLParameters(self._report()["protocols"])

    def getDefaultSSLParameters(self) -> SSLParameters:
        """The versions a verifying client enables by default, newest first."""
        return SSLParameters(self._report()["default_enabled"])

    def _report(self) -> dict[str, Any]:
        return dict(request(self._link, "tls.protocols"))

    def __repr__(self) -> str:
        return f"SSLContext({self._protocol!r})"


class LocalLink:
    """The link outside the sandbox: answers `tls.protocols` from runtime itself."""

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        if method != "tls.protocols":
            raise ValueError(f"the local link answers tls.protocols only, not {method}")
        from jcsh.runtime.tls.protocols import supported_protocols

        return supported_protocols().to_json()


# Outside the sandbox (tests, Python code using the shim); a script gets the one its preload built
# on the worker's link, under this same name (stdlib.preload.EXPORTS).
SSLContext = SSLContextStub(LocalLink())
