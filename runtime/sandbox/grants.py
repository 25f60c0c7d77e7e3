"""Script permissions (Deno's model): what a script may do by default, what needs a flag, and asking.

By default a script reads the registry and credential metadata, writes the registry outside the
protected subtrees, and connects only where the admin configured mail to go. `--allow-config`
grants changes to the mail and TLS configuration and to credentials; `--allow-net[=HOST[:PORT],...]`
grants connections elsewhere. A call that needs more raises PermissionDenied (exit 77) naming the
flag, unless the REPL asks the user (the `Ask` callback the shell supplies) and the user agrees.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from jcsh.runtime.errors import PermissionDenied, UsageError
from jcsh.runtime.hosts import bare_host, host_port, shown_host
from jcsh.runtime.records import NamedTuple

__all__ = [
    "Grant",
    "Permission",
    "Connection",
    "Answer",
    "Ask",
    "NetTarget",
    "Effective",
    "Grants",
    "Need",
    "Permissions",
    "PROTECTED",
    "PROBE_PORTS",
    "parse_allow_net",
    "write_need",
    "config_need",
    "net_need",
    "quoted",
]

# Subtrees only --allow-config may change: what the mail module and TLS trust read.
PROTECTED = ("/configuration/mail", "/configuration/jcs")
# Ports a default probe may reach on the effective server, besides its configured port.
PROBE_PORTS = (25, 465, 587)


class Grant(StrEnum):
    """What decides whether a host method is allowed (the METHODS table names one per method)."""

    READ = "read"  # always: the registry and credential metadata, settings, this machine's TLS
    WRITE = "write"  # a registry write: granted outside PROTECTED, else --allow-config
    CONFIG = "config"  # always --allow-config: configure, credentials and protocols
    SEND = "send"  # mail through the effective server and port, else --allow-net
    PROBE = "probe"  # the effective server's host on PROBE_PORTS and its port, else --allow-net
    OPENED = "opened"  # an open mail session: decided when it was opened


class Permission(StrEnum):
    """A permission beyond the defaults: each is one command-line flag."""

    CONFIG = "config"
    NET = "net"


class Connection(StrEnum):
    """Why the parent connects somewhere for a script; each has its default grant."""

    SMTP = "smtp"  # mail.send/test/session: the effective server and port
    PROBE = "probe"  # tls.probe: the effective server's host on PROBE_PORTS and its configured port
    # The OAuth token endpoint of the credential a send logs in with (issue 14): part of that send,
    # which was allowed before it began, so never a grant of its own.
    TOKEN = "token"


class Answer(StrEnum):
    """The user's answer to a permission prompt."""

    ONCE = "y"  # this request, for the rest of the statement
    ALWAYS = "a"  # the flag the refusal names, for the rest of the session
    NO = "n"


class NetTarget(NamedTuple):
    """A host as written (no DNS lookup decides a grant) and a port; port None is any port."""

    host: str
    port: int | None = None

    @classmethod
    def of(cls, host: str, port: int | None = None) -> NetTarget:
        """The target with its host in the form grants compare: no brackets, lower case, IPs canonical."""
        return cls(_canonical(host), port)

    def covers(self, other: NetTarget) -> bool:
        return self.host == other.host and (self.port is None or self.port == other.port)

    def __str__(self) -> str:
        return shown_host(self.host) if self.port is None else host_port(self.host, self.port)


class Effective(NamedTuple):
    """Where the admin configured mail to go, read at the moment of the call."""

    host: str | None  # as written in Server; None when no server is configured
    port: int


def _canonical(host: str) -> str:
    import ipaddress

    host = bare_host(host.strip()).lower()
    try:
        return str(ipaddress.ip_address(host))  # `0:0::1` and `::1` are one address, as written
    except ValueError:
        return host


def parse_allow_net(text: str) -> tuple[NetTarget, ...] | None:
    """The targets of `--allow-net=HOST[:PORT],...`; None for a bare `--allow-net` (`*`): anywhere."""
    from jcsh.runtime.tls.target import parse_target

    if text.strip() in ("", "*"):
        return None
    targets = []
    for part in text.split(","):
        if not part.strip():
            raise UsageError(f"--allow-net={text}: an empty entry (write HOST[:PORT],HOST[:PORT])")
        try:
            host, port = parse_target(part)
        except UsageError as e:
            raise UsageError(f"--allow-net: {e.message}") from None
        targets.append(NetTarget.of(host, port))
    return tuple(targets)


class Grants(NamedTuple):
    """The permissions in force beyond the defaults."""

    config: bool = False
    net: tuple[NetTarget, ...] = ()
    any_net: bool = False

    @classmethod
    def of(cls, *, allow_config: bool = False, allow_net: str | None = None) -> Grants:
        """From the command line: `allow_net` is the text after `--allow-net=` (`*` for the bare flag)."""
        targets = parse_allow_net(allow_net) if allow_net is not None else ()
        return cls(config=allow_config, net=targets or (), any_net=allow_net is not None and targets is None)

    def allows(self, need: Need) -> bool:
        if need.permission is Permission.CONFIG:
            return self.config
        if self.any_net:
            return True
        return need.target is not None and any(t.covers(need.target) for t in self.net)

    def adding(self, need: Need) -> Grants:
        """These grants plus the flag `need` names."""
        if need.permission is Permission.CONFIG:
            return self._replace(config=True)
        if need.target is None:
            return self._replace(any_net=True)
        return self._replace(net=(*self.net, need.target))

    def flags(self) -> list[str]:
        """The command-line flags that give these grants."""
        flags = ["--allow-config"] if self.config else []
        if self.any_net:
            flags.append("--allow-net")
        elif self.net:
            flags.append("--allow-net=" + ",".join(str(t) for t in self.net))
        return flags

    def to_json(self) -> dict[str, object]:
        return {
            "config": self.config,
            "net": "any" if self.any_net else [str(t) for t in self.net],
            "flags": self.flags(),
        }

    def describe(self) -> list[str]:
        """Every grant in force, defaults first, one line each (`%sandbox`)."""
        lines = [
            "read the registry and credential metadata",
            "write the registry outside " + " and ".join(p + "/" for p in PROTECTED),
            "send mail through the configured server and port; probe its host on "
            + ", ".join(str(p) for p in PROBE_PORTS)
            + " and the configured port",
        ]
        if self.config:
            lines.append("--allow-config: change the mail and TLS configuration and credentials")
        if self.any_net:
            lines.append("--allow-net: connect anywhere")
        elif self.net:
            lines.append("--allow-net: connect to " + ", ".join(str(t) for t in self.net))
        return lines


class Need(NamedTuple):
    """A call that needs a permission: what it is, in words, and the flag that grants it."""

    permission: Permission
    call: str  # as the script wrote it: registry.set('/configuration/mail/Port')
    action: str  # for the prompt: "change /configuration/mail/Port"
    target: NetTarget | None = None  # for Permission.NET

    @property
    def flag(self) -> str:
        if self.permission is Permission.CONFIG:
            return "--allow-config"
        return "--allow-net" if self.target is None else f"--allow-net={self.target}"

    @property
    def message(self) -> str:
        return f"{self.call} needs {self.flag}"

    @property
    def question(self) -> str:
        return f"allow this statement to {self.action}? [y]es once, [a]lways this session, [N]o"


Ask = Callable[[Need], Answer]


def quoted(text: str) -> str:
    """A script's text inside a message: repr() escapes controls, bidi and zero-width characters."""
    return repr(text)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def write_need(method: str, path: str) -> Need | None:
    """A registry write or delete at path: allowed outside PROTECTED, and a delete may not take them."""
    deleting = method == "registry.delete"
    touched = any(_inside(path, root) or (deleting and _inside(root, path)) for root in PROTECTED)
    if not touched:
        return None
    verb = "delete" if deleting else "change"
    return Need(Permission.CONFIG, f"{method}({quoted(path)})", f"{verb} {quoted(path)[1:-1]}")


def config_need(call: str, action: str) -> Need:
    """A call that always needs --allow-config."""
    return Need(Permission.CONFIG, call, action)


def net_need(connection: Connection, call: str, target: NetTarget, effective: Effective | None) -> Need | None:
    """A connection for a script: None when the defaults allow it, else what it needs."""
    if effective is not None and effective.host is not None:
        home = NetTarget.of(effective.host, effective.port)
        if connection is Connection.SMTP and home.covers(target):
            return None
        if connection is Connection.PROBE and target.host == home.host and target.port in (*PROBE_PORTS, home.port):
            return None
    if connection is Connection.TOKEN:
        return None  # part of the send it serves, which was allowed before it began
    return Need(Permission.NET, call, f"connect to {target}", target)


class Permissions:
    """The grants of one session, what this statement was allowed once, and who to ask."""

    def __init__(self, grants: Grants | None = None, ask: Ask | None = None) -> None:
        self.grants = grants or Grants()
        self.ask = ask  # set by the REPL for statements typed at a terminal; None: refuse
        self._once: set[tuple[Permission, str, NetTarget | None]] = set()

    def start_statement(self) -> None:
        """A new statement or script: what was allowed once is forgotten."""
        self._once.clear()

    def require(self, need: Need | None) -> None:
        """Return when need is granted (or the user agrees); PermissionDenied otherwise."""
        if need is None or self.grants.allows(need):
            return
        key = (need.permission, need.call if need.permission is Permission.CONFIG else "", need.target)
        if key in self._once:
            return
        answer = self.ask(need) if self.ask is not None else Answer.NO
        if answer is Answer.ONCE:
            self._once.add(key)
        elif answer is Answer.ALWAYS:
            self.grants = self.grants.adding(need)
        else:
            raise PermissionDenied(need.message)
