"""A probe target as a user writes it: `name`, `1.2.3.4` or `[::1]`, with an optional `:PORT`."""

from __future__ import annotations

import ipaddress
import re

from jcsh.runtime.errors import UsageError

__all__ = ["parse_target"]


def parse_target(text: str) -> tuple[str, int | None]:
    """`name`, `1.2.3.4`, `[::1]` or a bare IPv6 address, each with an optional `:PORT`."""
    text = text.strip()
    match = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", text)
    if match:
        host, port = match.group(1), match.group(2)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(f"{host!r} in brackets is not an IPv6 address") from None
    elif text.count(":") > 1:
        try:
            return str(ipaddress.IPv6Address(text)), None
        except ValueError:
            raise UsageError(f"{text!r} is not HOST[:PORT]; write an IPv6 address in brackets: [::1]:25") from None
    else:
        host, _, port = text.partition(":")
        if _ and not port:
            raise UsageError(f"{text!r} has a colon but no port")
    if not host or not re.fullmatch(r"[A-Za-z0-9._:-]+", host):
        raise UsageError(f"{text!r} is not HOST[:PORT]")
    if port is None or port == "":
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"port {port!r} is not 1-65535")
    return host, int(port)
