"""Host names as users write them: an IPv6 address goes in brackets next to a port."""

from __future__ import annotations

__all__ = ["bare_host", "shown_host", "host_port"]


def bare_host(host: str) -> str:
    """The host to connect to or compare: `[::1]` loses its brackets."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def shown_host(host: str) -> str:
    """The host as written before a port: an IPv6 address in brackets."""
    host = bare_host(host)
    return f"[{host}]" if ":" in host else host


def host_port(host: str, port: int) -> str:
    """`host:port`, `[::1]:25` for IPv6."""
    return f"{shown_host(host)}:{port}"
