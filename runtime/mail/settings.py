"""The effective mail settings: every value with its origin (a registry path, or `default`).

This module is the only reader of `/configuration/mail` and of
`/configuration/jcs/TLS/VerifyServerCertificateTrust`. Rules, in the order they apply:

- Server: the override (origin `--server`), else `/configuration/mail/Server`, else the `Server`
  of the only server scope that has one. A server scope is any child of `/configuration/mail`
  that is not a mail key; for the effective server S it is the child named S, else the one
  whose `Server` is S. Every key is looked up in that scope first, then globally.
- JavaMail properties are read under `mail.<Transport>.` (`mail.smtps.` when Transport is smtps);
  both `starttls.enable` and `starttls.enabled` count. Unknown properties are kept and reported.
- Security: ConnectionSecurity; else starttls.required true -> STARTTLSRequired; else
  starttls.enable(d) true -> STARTTLS; else ssl.enable (true by default for smtps) -> TLS; else None.
- Port: Port; else mail.<transport>.port; else 465 (TLS), 587 (STARTTLSRequired), 25 otherwise.
- Timeouts (ms): connectiontimeout, timeout, writetimeout; jcsh never waits forever, so the
  defaults are connect 10000, read 30000, write 30000.
- Login: the `smtp` credential whose endpoint is exactly the server and whose virtual user is
  `default` (origin `credential smtp <server> default`); `User` names the login when the
  credential has no real user. `mail.<transport>.auth=false` turns the login off.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from jcsh.runtime.annotations import Generic, TypeVar
from jcsh.runtime.errors import ConfigError, NotFound, UsageError
from jcsh.runtime.hosts import bare_host
from jcsh.runtime.mail import values
from jcsh.runtime.mail.keys import KEYS, MAIL, VERIFY_KEY, Level, Problem, children, key_problems, property_problems
from jcsh.runtime.records import NamedTuple

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from jcsh.runtime.credentials import CredentialStore
    from jcsh.runtime.registry import Registry
    from jcsh.runtime.smtp.wire import Timeouts

__all__ = [
    "Setting",
    "CredentialRef",
    "Problem",
    "MailSettings",
    "SETTING_NAMES",
    "load_settings",
    "inspect_settings",
    "MAIL",
    "VERIFY_KEY",
    "KEYS",
    "Security",
    "SECURITIES",
    "DEFAULT_TIMEOUTS_MS",
    "NO_SERVER",
]

T = TypeVar("T")


class Security(StrEnum):
    """How the connection is secured: the product's ConnectionSecurity values, spelled as it spells them."""

    NONE = "None"
    STARTTLS = "STARTTLS"
    STARTTLS_REQUIRED = "STARTTLSRequired"
    TLS = "TLS"


SECURITIES: tuple[Security, ...] = tuple(Security)
TRANSPORTS = ("smtp", "smtps")
DEFAULT_TIMEOUTS_MS = {"connectiontimeout": 10_000, "timeout": 30_000, "writetimeout": 30_000}
NO_SERVER = "no mail server is configured; run `jcsh configure`"
DEFAULT = "default"


class Setting(NamedTuple, Generic[T]):
    """One effective value and where it came from: a registry path, `default`, or `--server`."""

    value: T
    origin: str


class CredentialRef(NamedTuple):
    """The smtp credential used to log in (never its secret)."""

    endpoint: str
    real_user: str | None
    virtual_user: str
    kind: str = "password"  # runtime.mail.sasl.CredentialKind: password or oauth2


# The settings in the order `mail settings` shows them (MailSettings field names, "from" for from_).
SETTING_NAMES = (
    "server",
    "transport",
    "port",
    "security",
    "from",
    "user",
    "credential",
    "auth_mechanisms",
    "verify",
    "check_server_identity",
    "trust_hosts",
    "protocols",
    "connect_timeout_ms",
    "read_timeout_ms",
    "write_timeout_ms",
    "send_partial",
    "attachment_error",
    "accessible_path",
    "localhost",
    "envelope_from",
)


class MailSettings(NamedTuple):
    """Everything sending and probing need, each value with its origin."""

    server: Setting[str | None]
    transport: Setting[str]
    port: Setting[int]
    security: Setting[Security]
    from_: Setting[str | None]
    user: Setting[str | None]
    credential: Setting[CredentialRef | None]
    auth_mechanisms: Setting[tuple[str, ...]]  # SASL mechanisms to try, in order, for the credential's kind
    verify: Setting[str]
    check_server_identity: Setting[bool]
    trust_hosts: Setting[tuple[str, ...]]
    protocols: Setting[tuple[str, ...]]
    connect_timeout_ms: Setting[int]
    read_timeout_ms: Setting[int]
    write_timeout_ms: Setting[int]
    send_partial: Setting[bool]
    attachment_error: Setting[str]
    accessible_path: Setting[str]
    localhost: Setting[str | None]
    envelope_from: Setting[str | None]
    warnings: tuple[str, ...] = ()
    scope: str | None = None  # the server scope in force, e.g. /configuration/mail/smtp.gmail.com
    raw_properties: Mapping[str, Setting[str]] = MappingProxyType({})  # every JavaMail property

    @property
    def host(self) -> str | None:
        """The server to connect to (an IPv6 address without brackets)."""
        return None if self.server.value is None else bare_host(self.server.value)

    def timeouts(self, cap: float | None = None) -> Timeouts:
        """The connect, read and write timeouts in seconds, for runtime.smtp.wire."""
        from jcsh.runtime.smtp.wire import Timeouts

        ms = self.connect_timeout_ms.value, self.read_timeout_ms.value, self.write_timeout_ms.value
        return Timeouts(ms[0] / 1000, ms[1] / 1000, ms[2] / 1000, cap)

    def require_server(self) -> str:
        """The effective server, or ConfigError when none is configured."""
        if self.server.value is None:
            raise ConfigError(NO_SERVER)
        return self.server.value

    def setting(self, name: str) -> Setting[Any]:
        """A setting by its JSON name (`from` is the field `from_`)."""
        return getattr(self, "from_" if name == "from" else name)

    def to_json(self) -> dict[str, Any]:
        """The --json shape of `jcsh mail settings`."""
        data: dict[str, Any] = {}
        for name in SETTING_NAMES:
            s = self.setting(name)
            value = s.value
            if isinstance(value, CredentialRef):
                value = {"endpoint": value.endpoint, "real_user": value.real_user, "virtual_user": value.virtual_user}
            elif isinstance(value, tuple):
                value = list(value)
            data[name] = {"value": value, "origin": s.origin}
        data["scope"] = self.scope
        data["properties"] = {k: {"value": s.value, "origin": s.origin} for k, s in self.raw_properties.items()}
        data["warnings"] = list(self.warnings)
        return data


def load_settings(
    registry: Registry, credentials: CredentialStore | None, *, server: str | None = None, cwd: Path | None = None
) -> MailSettings:
    """The effective settings; ConfigError (naming key and value) when a value does not parse."""
    settings, problems = inspect_settings(registry, credentials, server=server, cwd=cwd)
    fatal = [p for p in problems if p.fatal]
    if fatal:
        more = f" (and {len(fatal) - 1} more problem(s); see `jcsh mail doctor`)" if len(fatal) > 1 else ""
        raise ConfigError(fatal[0].message + more)
    return settings


def inspect_settings(
    registry: Registry, credentials: CredentialStore | None, *, server: str | None = None, cwd: Path | None = None
) -> tuple[MailSettings, list[Problem]]:
    """The settings (bad values replaced by defaults) and every problem found while reading them."""
    return _Loader(registry, credentials, server, cwd).load()


def _credential_origin(endpoint: str) -> str:
    return f"credential smtp {endpoint} default"


class _Loader:
    """One reading of the registry; collects problems instead of stopping at the first."""

    def __init__(
        self, registry: Registry, credentials: CredentialStore | None, server: str | None, cwd: Path | None
    ) -> None:
        self.credentials = credentials
        self.override = server
        self.cwd = cwd or Path.cwd()
        try:
            self.entries = dict(registry.walk(MAIL))
        except NotFound:
            self.entries = {}
        self.verify_value = registry.value(VERIFY_KEY)
        self.problems: list[Problem] = []
        self.scope: str | None = None
        self.props: dict[str, Setting[str]] = {}
        self.prefix = "mail.smtp."

    # -- helpers ------------------------------------------------------------------------------

    def problem(self, level: Level, keys: tuple[str, ...], message: str, fix: str, fatal: bool = False) -> None:
        self.problems.append(Problem(level, keys, message, fix, fatal))

    def bad(self, path: str, value: str, reason: str, fix: str = "") -> None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        self.problem(
            Level.ERROR,
            (path,),
            f"{path} = {shown!r} {reason}",
            fix or f"correct it with `jcsh registry set {path} VALUE` or remove it",
            fatal=True,
        )

    def parse(self, found: Setting[str] | None, parser: Any, default: T) -> Setting[Any]:
        """Parse a raw setting; a bad value is reported and the default stands in."""
        if found is None:
            return Setting(default, DEFAULT)
        try:
            return Setting(parser(found.value), found.origin)
        except ValueError as e:
            self.bad(found.origin, found.value, str(e))
            return Setting(default, DEFAULT)

    def lookup(self, name: str) -> Setting[str] | None:
        """A mail key: the server scope first, then global."""
        for base in ((self.scope,) if self.scope else ()) + (MAIL,):
            path = f"{base}/{name}"
            value = self.entries.get(path)
            if value is not None:
                return Setting(value, path)
        return None

    def prop(self, name: str) -> Setting[str] | None:
        return self.props.get(self.prefix + name)

    def children(self, path: str) -> list[str]:
        return children(self.entries, path)

    # -- the settings -------------------------------------------------------------------------

    def load(self) -> tuple[MailSettings, list[Problem]]:
        server = self.find_server()
        transport = self.parse(self.lookup("Transport"), _transport, "smtp")
        if self.lookup("Transport") is None:
            self.problem(
                Level.ERROR,
                (f"{MAIL}/Transport",),
                f"{MAIL}/Transport is not set (it is required); smtp is assumed",
                f"jcsh registry set {MAIL}/Transport smtp",
            )
        self.prefix = f"mail.{transport.value}."
        self.read_properties(transport)
        security = self.find_security(transport)
        port = self.find_port(security)
        credential, user = self.find_login(server.value)
        timeouts = {
            name: self.parse(self.prop(name), values.parse_millis, default)
            for name, default in DEFAULT_TIMEOUTS_MS.items()
        }
        trust = self.parse(self.prop("ssl.trust"), _trust_hosts, ())
        send_partial = self.parse(self.lookup("SendPartial") or self.prop("sendpartial"), values.parse_bool, False)
        settings = MailSettings(
            server=server,
            transport=transport,
            port=port,
            security=security,
            from_=self.parse(self.lookup("From"), lambda v: values.parse_address(v) and v, None),
            user=user,
            credential=credential,
            auth_mechanisms=self.find_mechanisms(credential.value),
            verify=self.parse(
                Setting(self.verify_value, VERIFY_KEY) if self.verify_value is not None else None,
                lambda v: values.parse_choice(v, ("Verify", "DontVerify")),
                "Verify",
            ),
            check_server_identity=self.parse(self.prop("ssl.checkserveridentity"), values.parse_bool, True),
            trust_hosts=trust,
            protocols=self.parse(self.prop("ssl.protocols"), values.parse_protocols, ()),
            connect_timeout_ms=timeouts["connectiontimeout"],
            read_timeout_ms=timeouts["timeout"],
            write_timeout_ms=timeouts["writetimeout"],
            send_partial=send_partial,
            attachment_error=self.parse(
                self.lookup("AttachmentError"), lambda v: values.parse_choice(v, ("Error", "Skip")), "Error"
            ),
            accessible_path=self.parse(self.lookup("AccessiblePath"), self.accessible, str(self.cwd)),
            localhost=self.parse(self.prop("localhost"), _ehlo_name, None),
            envelope_from=self.parse(self.prop("from"), lambda v: values.parse_address(v).addr_spec, None),
            warnings=(),
            scope=self.scope,
            raw_properties=dict(sorted(self.props.items())),
        )
        notes = tuple(p.message for p in self.problems if not p.fatal)
        if settings.server.value is None:
            notes = (NO_SERVER, *notes)
        return settings._replace(warnings=notes), self.problems

    def find_server(self) -> Setting[str | None]:
        self.problems += key_problems(self.entries)
        scopes = [p for p in self.children(MAIL) if p.rsplit("/", 1)[1] not in KEYS]
        with_server = [(p, self.entries[f"{p}/Server"]) for p in scopes if self.entries.get(f"{p}/Server")]
        found: Setting[str | None]
        if self.override is not None:
            try:
                values.parse_host(self.override)
            except ValueError as e:
                raise UsageError(f"--server {self.override!r} {e}") from None
            found = Setting(self.override, "--server")
        elif self.entries.get(f"{MAIL}/Server") is not None:
            found = Setting(self.entries[f"{MAIL}/Server"], f"{MAIL}/Server")
        elif len(with_server) == 1:
            found = Setting(with_server[0][1], f"{with_server[0][0]}/Server")
        else:
            if with_server:
                self.problem(
                    Level.WARNING,
                    tuple(f"{p}/Server" for p, _ in with_server),
                    f"{len(with_server)} server scopes name a Server and {MAIL}/Server is not set, "
                    "so none of them is used",
                    "jcsh configure --from ADDR --server HOST",
                )
            return Setting(None, DEFAULT)
        try:
            values.parse_host(found.value or "")
        except ValueError as e:
            self.bad(found.origin, found.value or "", str(e))
            return Setting(None, DEFAULT)
        named = f"{MAIL}/{found.value}"
        if named in scopes:
            self.scope = named
        else:
            matching = [p for p, v in with_server if v == found.value]
            self.scope = matching[0] if len(matching) == 1 else None
        for p in scopes:
            if p != self.scope:
                self.problem(
                    Level.NOTE,
                    (p,),
                    f"the settings under {p} do not apply: the server is {found.value}",
                    f"jcsh registry rm -r {p}, if they are left over",
                )
        return found

    def read_properties(self, transport: Setting[str]) -> None:
        for base in (MAIL,) + ((self.scope,) if self.scope else ()):  # the scope's properties win
            node = f"{base}/JavaMail"
            if self.entries.get(node) is not None:
                self.problem(
                    Level.WARNING,
                    (node,),
                    f"{node} has a value, which is ignored; each JavaMail property is a child entry",
                    f"jcsh registry set {node}/mail.smtp.port 25 (for example)",
                )
            for path in self.children(node):
                value = self.entries[path]
                if self.children(path):
                    self.problem(
                        Level.WARNING,
                        (path,),
                        f"{path} has children, which are ignored; a property is one entry named like mail.smtp.port",
                        f"jcsh registry rm -r {path}",
                    )
                if value is not None:
                    self.props[path.rsplit("/", 1)[1]] = Setting(value, path)
        raw = {name: (p.value, p.origin) for name, p in self.props.items()}
        self.problems += property_problems(raw, transport.value, transport.origin)

    def find_security(self, transport: Setting[str]) -> Setting[Security]:
        chosen = self.parse(
            self.lookup("ConnectionSecurity"), lambda v: Security(values.parse_choice(v, SECURITIES)), None
        )
        required = self.parse(self.prop("starttls.required"), values.parse_bool, None)
        enable = self.parse(self.prop("starttls.enable"), values.parse_bool, None)
        enabled = self.parse(self.prop("starttls.enabled"), values.parse_bool, None)
        ssl_enable = self.parse(self.prop("ssl.enable"), values.parse_bool, None)
        if None not in (enable.value, enabled.value) and enable.value != enabled.value:
            self.problem(
                Level.WARNING,
                (enable.origin, enabled.origin),
                f"{enable.origin} and {enabled.origin} disagree; STARTTLS is used because one of them is true",
                "set both to the same value, or remove one",
            )
        if chosen.value is not None:
            return Setting(chosen.value, chosen.origin)
        if required.value:
            return Setting(Security.STARTTLS_REQUIRED, required.origin)
        for flag in (enable, enabled):
            if flag.value:
                return Setting(Security.STARTTLS, flag.origin)
        if ssl_enable.value is not None:
            return Setting(Security.TLS if ssl_enable.value else Security.NONE, ssl_enable.origin)
        if transport.value == "smtps":
            return Setting(Security.TLS, transport.origin)
        return Setting(Security.NONE, DEFAULT)

    def find_port(self, security: Setting[Security]) -> Setting[int]:
        for found in (self.lookup("Port"), self.prop("port")):
            if found is not None:
                parsed = self.parse(found, values.parse_port, None)
                if parsed.value is not None:
                    return parsed
        default = {Security.TLS: 465, Security.STARTTLS_REQUIRED: 587}.get(security.value, 25)
        return Setting(default, DEFAULT)

    def find_login(self, server: str | None) -> tuple[Setting[CredentialRef | None], Setting[str | None]]:
        auth = self.parse(self.prop("auth"), values.parse_bool, None)
        user_key = self.lookup("User")
        user: Setting[str | None] = Setting(user_key.value, user_key.origin) if user_key else Setting(None, DEFAULT)
        cred = None
        if server is not None and self.credentials is not None:
            cred = self.credentials.find("smtp", server, "default")
        if cred is None:
            if auth.value:
                self.problem(
                    Level.WARNING,
                    (auth.origin,),
                    f"{auth.origin} is true but no smtp credential has "
                    f"endpoint {server!r} and virtual user default: no login will happen",
                    f"jcsh credential add --protocol smtp --endpoint {server} --virtual-user default --real-user LOGIN",
                )
            return Setting(None, DEFAULT), user
        if auth.value is False:
            self.problem(
                Level.WARNING,
                (auth.origin, _credential_origin(server or "")),
                f"{auth.origin} is false: the credential smtp {server} default is not used",
                f"jcsh registry rm {auth.origin}",
            )
            return Setting(None, auth.origin), user
        origin = _credential_origin(cred.endpoint)
        ref = CredentialRef(cred.endpoint, cred.real_user, cred.virtual_user, "oauth2" if cred.oauth else "password")
        if cred.real_user:
            if user_key and user_key.value != cred.real_user:
                self.problem(
                    Level.NOTE,
                    (user_key.origin, origin),
                    f"{user_key.origin} ({user_key.value}) is not "
                    f"used: the credential names the login {cred.real_user}",
                    "remove one of the two",
                )
            return Setting(ref, origin), Setting(cred.real_user, origin)
        return Setting(ref, origin), user

    def find_mechanisms(self, credential: CredentialRef | None = None) -> Setting[tuple[str, ...]]:
        """The SASL mechanisms in the order login tries them (mail.<transport>.auth.*, as JavaMail)."""
        from jcsh.runtime.mail.sasl import CredentialKind, mechanism_order, parse_mechanisms, unknown_mechanisms

        listed = self.prop("auth.mechanisms")
        names = self.parse(listed, parse_mechanisms, ())
        for name in unknown_mechanisms(names.value):
            self.problem(
                Level.WARNING,
                (names.origin,),
                f"{names.origin} names {name}, which is not a SASL mechanism jcsh knows: it is skipped",
                "check the spelling; jcsh implements PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER",
            )
        for suffix in ("login", "plain", "digest-md5", "ntlm", "xoauth2"):
            self.parse(self.prop(f"auth.{suffix}.disable"), values.parse_bool, None)
        kind = CredentialKind(credential.kind) if credential is not None else CredentialKind.PASSWORD
        order = mechanism_order(self.props, self.prefix.split(".")[1], kind)
        return Setting(order.mechanisms, order.origin)

    def accessible(self, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty")
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else self.cwd / path)


def _transport(value: str) -> str:
    if value in TRANSPORTS:
        return value
    hint = f" (did you mean {value.strip().lower()}?)" if value.strip().lower() in TRANSPORTS else ""
    raise ValueError(f"is not a transport: use smtp or smtps{hint}")


def _trust_hosts(value: str) -> tuple[str, ...]:
    hosts = tuple(value.split())
    return ("*",) if "*" in hosts else hosts


def _ehlo_name(value: str) -> str:
    word = value.strip()
    if not word or any(c.isspace() or ord(c) < 33 or ord(c) == 127 for c in word):
        raise ValueError("is not a name to give in EHLO (one word, no spaces)")
    return word
