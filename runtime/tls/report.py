"""The human form of a probe: each check's renderer, one section per target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jcsh.runtime.hosts import host_port
from jcsh.runtime.tls.checks.certificate import render_certificate
from jcsh.runtime.tls.checks.render import shown
from jcsh.runtime.tls.checks.session import render_smtp
from jcsh.runtime.tls.checks.versions import render_versions
from jcsh.runtime.tls.probe import ProbeResult

__all__ = ["render_probe", "render_check"]


def render_probe(r: ProbeResult) -> str:
    """The compact table `jcsh tls probe` prints for one target."""
    where = host_port(r.host, r.port)
    sni = "" if r.servername == r.host else f", servername {r.servername}"
    lines = [shown(f"{where}  {r.mode}{sni}  {r.elapsed_ms} ms")]
    lines += render_versions(r.versions)
    n = r.negotiated
    if n:
        lines.append(shown(f"negotiated {n.version} {n.cipher} ({n.bits} bits)"))
    if r.certificate:
        lines += render_certificate(r.certificate)
    lines += render_smtp(r.smtp)
    for name, result in r.extra:
        lines += render_check(name, result)
    return "\n".join(lines)


def render_check(name: str, result: Any) -> list[str]:
    """The lines of a further check (ciphers, trust store, DANE), by its name."""
    renderer = _renderer(name)
    return renderer(result) if renderer is not None else []


def _renderer(name: str) -> Callable[[Any], list[str]] | None:
    # only the module of a check that ran: each pulls in what its check needs (the ciphers
    # module concurrent.futures and dataclasses, ~10 ms, which a DANE-only probe never uses)
    if name == "ciphers":
        from jcsh.runtime.tls.checks.ciphers import render_ciphers

        return render_ciphers
    if name == "dane":
        from jcsh.runtime.tls.checks.dane import render_dane

        return render_dane
    if name == "truststore":
        from jcsh.runtime.tls.checks.truststore import render_truststore

        return render_truststore
    return None
