"""The capability surface scripts reach: every request from the worker is checked here, then done.

A request is a method name and a JSON object of parameters. Each method names exactly the
parameters it takes with their types and sizes, and the grant that decides whether this script may
make it (grants.py); anything else is refused before runtime is called: bad parameters with
UsageError, a missing permission with PermissionDenied, a spent budget with LimitHit (budget.py).
Registry paths and credential fields are then checked by runtime itself. Answers are plain JSON
data; secrets are never among them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from jcsh.runtime.errors import ConfigError, JcshError, UsageError
from jcsh.runtime.records import NamedTuple
from jcsh.runtime.sandbox.budget import RunBudget
from jcsh.runtime.sandbox.grants import (
    Connection,
    Effective,
    Grant,
    Need,
    NetTarget,
    Permissions,
    config_need,
    net_need,
    quoted,
    write_need,
)

if TYPE_CHECKING:
    from jcsh.runtime.credentials import CredentialStore
    from jcsh.runtime.mail.settings import MailSettings
    from jcsh.runtime.registry import Registry

__all__ = ["Host", "Method", "METHODS"]

_TEXT_MAX = 64 * 1024
_BIG_TEXT_MAX = 4 << 20  # message bodies, HTML, certificates
_LIST_MAX = 1000
_MAX_SESSIONS = 8

# kind: "text" | "big" (large text) | "texts" (list of text) | "flag" | "int" | "number" | "headers"
_Spec = dict[str, tuple[str, bool]]  # name -> (kind, required)


def _check(method: str, params: Any, spec: _Spec) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise UsageError(f"{method}: parameters must be an object")
    if not params.keys() <= spec.keys():
        unknown = sorted(set(params) - set(spec))
        raise UsageError(f"{method}: unknown parameter {unknown[0]!r}")
    out: dict[str, Any] = {}
    for name, (kind, required) in spec.items():
        value = params.get(name)
        if value is None:
            if required:
                raise UsageError(f"{method}: {name} is required")
            out[name] = [] if kind == "texts" else ({} if kind == "headers" else None)
        elif kind == "text" and type(value) is str and len(value) <= _TEXT_MAX:
            out[name] = value  # what _value would say of the most common parameter, without the call
        else:
            out[name] = _value(method, name, kind, value)
    return out


def _value(method: str, name: str, kind: str, value: Any) -> Any:
    where = f"{method}: {name}"
    if kind in ("text", "big"):
        limit = _TEXT_MAX if kind == "text" else _BIG_TEXT_MAX
        if type(value) is not str:
            raise UsageError(f"{where} must be text, not {type(value).__name__}")
        if len(value) > limit:
            raise UsageError(f"{where} is {len(value)} characters long; the limit is {limit}")
        return value
    if kind == "texts":
        if type(value) is not list or len(value) > _LIST_MAX:
            raise UsageError(f"{where} must be a list of at most {_LIST_MAX} strings")
        return [_value(method, name, "text", v) for v in value]
    if kind == "flag":
        if type(value) is not bool:
            raise UsageError(f"{where} must be true or false")
        return value
    if kind == "int":
        if type(value) is not int or not 0 < value < 65536:
            raise UsageError(f"{where} must be a whole number from 1 to 65535")
        return value
    if kind == "number":
        if type(value) not in (int, float) or not 0 < value <= 3600:
            raise UsageError(f"{where} must be a number of seconds from 0 to 3600")
        return float(value)
    if kind == "headers":
        if type(value) is not dict or len(value) > 100:
            raise UsageError(f"{where} must be an object of at most 100 header names and values")
        return {_value(method, name, "text", k): _value(method, name, "text", v) for k, v in value.items()}
    raise AssertionError(kind)


_PATH = {"path": ("text", True)}
_IDENTITY = {"protocol": ("text", True), "endpoint": ("text", True), "virtual_user": ("text", True)}
_MESSAGE = {
    "to": ("texts", True),
    "cc": ("texts", False),
    "bcc": ("texts", False),
    "from": ("text", False),
    "subject": ("text", False),
    "body": ("big", False),
    "html": ("big", False),
    "headers": ("headers", False),
    "attachments": ("texts", False),
}


class Method(NamedTuple):
    """One request a script may make: its parameters and the grant that decides it."""

    params: _Spec
    grant: Grant


# method -> its parameters and grant; the handler is Host._<method with dots as underscores>.
METHODS: dict[str, Method] = {
    "registry.get": Method(_PATH, Grant.READ),
    "registry.get_many": Method({"paths": ("texts", True)}, Grant.READ),
    "registry.exists": Method(_PATH, Grant.READ),
    "registry.set": Method({"path": ("text", True), "value": ("text", True)}, Grant.WRITE),
    "registry.delete": Method({"path": ("text", True), "recursive": ("flag", False)}, Grant.WRITE),
    "registry.list": Method(_PATH, Grant.READ),
    "registry.walk": Method(_PATH, Grant.READ),
    "credentials.protocols": Method({}, Grant.READ),
    "credentials.add_protocol": Method({"name": ("text", True)}, Grant.CONFIG),
    "credentials.list": Method({"protocol": ("text", False)}, Grant.READ),
    "credentials.find": Method(_IDENTITY, Grant.READ),
    "credentials.remove": Method(_IDENTITY, Grant.CONFIG),
    "credentials.add": Method(
        {
            **_IDENTITY,
            "real_user": ("text", False),
            "secret": ("text", False),
            "certificate": ("big", False),
            "replace": ("flag", False),
        },
        Grant.CONFIG,
    ),
    "mail.settings": Method({"server": ("text", False)}, Grant.READ),
    "mail.configure": Method({"from": ("text", True), "server": ("text", False)}, Grant.CONFIG),
    "mail.send": Method({**_MESSAGE, "server": ("text", False), "transcript": ("flag", False)}, Grant.SEND),
    "mail.test": Method(
        {**_MESSAGE, "server": ("text", False), "transcript": ("flag", False), "quit_after": ("text", False)},
        Grant.SEND,
    ),
    "mail.session.open": Method({"server": ("text", False), "transcript": ("flag", False)}, Grant.SEND),
    "mail.session.send": Method({**_MESSAGE, "id": ("int", True)}, Grant.OPENED),
    "mail.session.close": Method({"id": ("int", True)}, Grant.OPENED),
    "tls.protocols": Method({}, Grant.READ),
    "tls.probe": Method(
        {
            "host": ("text", False),
            "port": ("int", False),
            "mode": ("text", False),
            "servername": ("text", False),
            "protocols": ("texts", False),
            "timeout": ("number", False),
        },
        Grant.PROBE,
    ),
}
# Grants whose requests make network connections, counted against the run's budget.
_NETWORK = (Grant.SEND, Grant.PROBE, Grant.OPENED)
# method -> (its parameters, its grant, its handler's name, whether it connects), looked up once a request
_DISPATCH = {
    name: (method.params, method.grant, "_" + name.replace(".", "_"), method.grant in _NETWORK)
    for name, method in METHODS.items()
}
_READ = Grant.READ
_SCRIPT_NAMES = {"mail.session.open": "mail.session"}


class Host:
    """What a script may ask the parent to do, checked and carried out with runtime."""

    def __init__(
        self,
        registry: Registry | Callable[[], Registry],
        credentials: CredentialStore | Callable[[], CredentialStore],
        home: Path,
        *,
        args: list[str] | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
        permissions: Permissions | None = None,
        budget: RunBudget | None = None,
    ) -> None:
        # registry and credentials may be given as callables, so that they open on the first request.
        self._registry = registry
        self._credentials = credentials
        self.home = home
        self.args = list(args or [])
        self.out = out
        self.err = err
        self.permissions = permissions or Permissions()
        self.budget = budget or RunBudget()
        self._sessions: dict[int, Any] = {}
        self._next_session = 0
        self._settings_seen: dict[str | None, MailSettings] = {}
        self._paused = 0.0
        # time.monotonic() at which the running script or statement must end (set by the client,
        # moved on by the time a prompt waits for the user): every network call ends by then.
        self.deadline: float | None = None

    @property
    def registry(self) -> Registry:
        if callable(self._registry) and not hasattr(self._registry, "get"):
            self._registry = self._registry()
        return self._registry  # type: ignore[return-value]

    @property
    def credentials(self) -> CredentialStore:
        if callable(self._credentials) and not hasattr(self._credentials, "find"):
            self._credentials = self._credentials()
        return self._credentials  # type: ignore[return-value]

    def handle(self, method: Any, params: Any) -> Any:
        """Check one request and carry it out; JcshError when refused or failed."""
        if type(method) is not str or method not in METHODS:
            raise UsageError(f"unknown request {str(method)[:60]!r}")
        spec, grant, name, network = _DISPATCH[method]
        checked = _check(method, params if params is not None else {}, spec)
        self._settings_seen = {}  # the settings a check read are the ones the call uses
        try:
            if grant is not _READ:  # reads are always granted: _permit has nothing to ask
                self._permit(method, grant, checked)
            handler = getattr(self, name)
            if network:
                with self.budget.open_connections():
                    return handler(**checked)
            return handler(**checked)
        finally:
            self._settings_seen = {}

    def begin_run(self) -> None:
        """A script or statement starts: a fresh budget; what the last one was allowed once is gone."""
        self.budget.start()
        self.permissions.start_statement()

    def take_paused(self) -> float:
        """Seconds spent waiting for the user's answer since the last call (not the script's time)."""
        paused, self._paused = self._paused, 0.0
        return paused

    def reset(self) -> None:
        """The worker was replaced: close what its script had open."""
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            try:
                session.close()
            except Exception:
                pass

    close = reset

    # -- permissions --------------------------------------------------------------------------

    def _permit(self, method: str, grant: Grant, params: dict[str, Any]) -> None:
        need: Need | None = None
        if grant is Grant.WRITE:
            need = write_need(method, params["path"])
        elif grant is Grant.CONFIG:
            need = config_need(*_config_call(method, params))
        elif grant is Grant.SEND:
            settings = self._settings(params["server"])
            target = NetTarget.of(settings.require_server(), settings.port.value)
            shown = _SCRIPT_NAMES.get(method, method)
            call = f"{shown}(server={quoted(params['server'])})" if params["server"] is not None else f"{shown}()"
            need = net_need(Connection.SMTP, call, target, self._effective())
        elif grant is Grant.PROBE:
            host, port, _, _ = self._probe_target(params["host"], params["port"], params["mode"])
            target = NetTarget.of(host, port)
            need = net_need(Connection.PROBE, f"tls.probe({quoted(str(target))})", target, self._effective())
        if need is None:
            return
        started = time.monotonic()
        try:
            self.permissions.require(need)
        finally:
            waited = time.monotonic() - started
            self._paused += waited
            if self.deadline is not None:  # the client moves the script's limit by as much
                self.deadline += waited

    def _effective(self) -> Effective | None:
        """Where the configured mail goes now; None when the configuration cannot be read."""
        try:
            settings = self._settings(None)
        except ConfigError:
            return None
        return Effective(settings.server.value, settings.port.value)

    # -- registry -----------------------------------------------------------------------------

    def _registry_get(self, path: str) -> str:
        return self.registry.get(path)

    def _registry_get_many(self, paths: list[str]) -> dict[str, str | None]:
        values = self.registry.values(paths)  # read now: no cache across calls
        size = sum(len(p) + len(v or "") + 16 for p, v in values.items())
        self.budget.answer(f"registry.get_many({len(paths)} paths)", len(values), size, "ask for fewer paths at a time")
        return values

    def _registry_exists(self, path: str) -> bool:
        return self.registry.exists(path)

    def _registry_set(self, path: str, value: str) -> None:
        from jcsh.runtime.registry import validate_path, validate_value

        self.budget.registry_write(validate_path(path), validate_value(value), self.registry.stored_bytes())
        self.registry.set(path, value)

    def _registry_delete(self, path: str, recursive: bool | None) -> int:
        return self.registry.delete(path, recursive=bool(recursive))

    def _registry_list(self, path: str) -> list[dict[str, Any]]:
        extent = self.registry.extent(path, children=True, most=self.budget.budgets.answer_entries)
        # each child: its name, path and value, and the JSON around them
        self.budget.answer(f"registry.list({path!r})", extent.entries, 2 * extent.bytes + 64 * extent.entries)
        return [
            {"name": c.name, "path": c.path, "value": c.value, "has_children": c.has_children}
            for c in self.registry.children(path)
        ]

    def _registry_walk(self, path: str) -> list[list[Any]]:
        extent = self.registry.extent(path, most=self.budget.budgets.answer_entries)
        self.budget.answer(f"registry.walk({path!r})", extent.entries, extent.bytes + 16 * extent.entries)
        return [[p, v] for p, v in self.registry.walk(path)]

    # -- credentials (never a secret out) -----------------------------------------------------

    def _credentials_protocols(self) -> list[str]:
        return self.credentials.protocols()

    def _credentials_add_protocol(self, name: str) -> None:
        self.credentials.add_protocol(name)

    def _credentials_list(self, protocol: str | None) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.credentials.list(protocol)]

    def _credentials_find(self, protocol: str, endpoint: str, virtual_user: str) -> dict[str, Any] | None:
        found = self.credentials.find(protocol, endpoint, virtual_user)
        return found.to_json() if found else None

    def _credentials_add(
        self,
        protocol: str,
        endpoint: str,
        virtual_user: str,
        real_user: str | None,
        secret: str | None,
        certificate: str | None,
        replace: bool | None,
    ) -> dict[str, Any]:
        return self.credentials.add(
            protocol,
            endpoint,
            virtual_user,
            real_user=real_user,
            secret=secret,
            certificate=certificate,
            replace=bool(replace),
        ).to_json()

    def _credentials_remove(self, protocol: str, endpoint: str, virtual_user: str) -> None:
        self.credentials.remove(protocol, endpoint, virtual_user)

    # -- mail ---------------------------------------------------------------------------------

    def _settings(self, server: str | None) -> MailSettings:
        """The effective settings (for `server`), read once per request."""
        if server not in self._settings_seen:
            from jcsh.runtime.mail.settings import load_settings

            self._settings_seen[server] = load_settings(self.registry, self.credentials, server=server)
        return self._settings_seen[server]

    def _mail_settings(self, server: str | None) -> dict[str, Any]:
        return self._settings(server).to_json()

    def _mail_configure(self, server: str | None, **params: Any) -> dict[str, Any]:
        from jcsh.runtime.mail.configure import configure

        return configure(self.registry, self.credentials, params["from"], server, deadline=self.deadline).to_json()

    @staticmethod
    def _request(
        to: list[str],
        cc: list[str],
        bcc: list[str],
        subject: str | None,
        body: str | None,
        html: str | None,
        headers: dict[str, str],
        attachments: list[str],
        **rest: Any,
    ) -> Any:
        from jcsh.runtime.mail.message import MailRequest

        if attachments:
            # An attachment is a file the parent would read for the script, and a script can also set
            # AccessiblePath: together they would let it mail any file away. Scripts attach nothing.
            raise UsageError(
                "scripts cannot attach files: the sandbox reads no file for a script "
                "(send attachments with `jcsh testmail --attach FILE`)"
            )
        return MailRequest(
            to=to,
            cc=cc,
            bcc=bcc,
            from_=rest.get("from"),
            subject=subject,
            body=body,
            html=html,
            headers=headers,
            attachments=attachments,
        )

    def _mail_send(self, server: str | None, transcript: bool | None, **message: Any) -> dict[str, Any]:
        from jcsh.runtime.mail.send import send_mail

        settings = self._settings(server)
        settings.require_server()
        # Issue 14: the OAuth token endpoint of the credential this send logs in with is part of it
        # (grants.Connection.TOKEN): no check of its own; its connection counts against the budget.
        request = self._request(**message)
        return send_mail(
            settings, self.credentials, request, transcript=bool(transcript), deadline=self.deadline
        ).to_json()

    def _mail_test(
        self, server: str | None, transcript: bool | None, quit_after: str | None = None, **message: Any
    ) -> dict[str, Any]:
        import socket
        from datetime import datetime

        settings = self._settings(server)
        settings.require_server()
        host = socket.gethostname()
        when = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
        if message.get("subject") is None:
            message["subject"] = f"jcsh test mail from {host} at {when}"
        if message.get("body") is None:
            message["body"] = (
                f"This is a jcsh test mail, sent by a script from {host} at {when}\n"
                f"through {settings.server.value}:{settings.port.value} ({settings.security.value}).\n"
                "If you can read it, the mail module works.\n"
            )
        from jcsh.runtime.mail.send import send_mail

        request = self._request(**message)
        return send_mail(
            settings,
            self.credentials,
            request,
            transcript=bool(transcript),
            deadline=self.deadline,
            quit_after=quit_after,
        ).to_json()

    def _mail_session_open(self, server: str | None, transcript: bool | None) -> dict[str, int]:
        from jcsh.runtime.mail.send import MailSession

        if len(self._sessions) >= _MAX_SESSIONS:
            raise JcshError(
                f"a script may keep at most {_MAX_SESSIONS} mail sessions open; close one first", kind="limit"
            )
        settings = self._settings(server)
        settings.require_server()
        self._next_session += 1
        self._sessions[self._next_session] = MailSession(settings, self.credentials, transcript=bool(transcript))
        return {"id": self._next_session}

    def _session(self, ident: int) -> Any:
        session = self._sessions.get(ident)
        if session is None:
            raise UsageError(f"mail session {ident} is not open")
        return session

    def _mail_session_send(self, id: int, **message: Any) -> dict[str, Any]:
        return self._session(id).send(self._request(**message), deadline=self.deadline).to_json()

    def _mail_session_close(self, id: int) -> None:
        self._session(id).close(deadline=self.deadline)
        del self._sessions[id]

    # -- tls ----------------------------------------------------------------------------------

    def _tls_protocols(self) -> dict[str, Any]:
        from jcsh.runtime.tls.protocols import supported_protocols

        return supported_protocols().to_json()

    def _tls_probe(
        self,
        host: str | None,
        port: int | None,
        mode: str | None,
        servername: str | None,
        protocols: list[str],
        timeout: float | None,
    ) -> dict[str, Any]:
        from jcsh.runtime.mail.trust import trust_policy
        from jcsh.runtime.tls.probe import probe

        host, port, mode, settings = self._probe_target(host, port, mode)
        result = probe(
            host,
            port,
            mode=mode,
            servername=servername,
            protocols=tuple(protocols) or None,
            timeout=timeout,
            timeouts=settings.timeouts(),
            deadline=self.deadline,
            policy=trust_policy(settings, self.credentials),
            local_hostname=settings.localhost.value,
        )
        return result.to_json()

    def _probe_target(self, host: str | None, port: int | None, mode: str | None) -> tuple[str, int, Any, Any]:
        """Where a probe goes: (host, port, mode, the settings for that host)."""
        if mode not in (None, "starttls", "implicit"):
            raise UsageError(f"tls.probe: mode must be 'starttls' or 'implicit', not {mode!r}")
        if host is not None and port is None:
            from jcsh.runtime.tls.target import parse_target

            host, port = parse_target(host)  # "HOST:PORT" as on the command line
        settings = self._settings(host)
        if host is None:
            host = settings.require_server()
            if port is None:
                port = settings.port.value
            if mode is None:
                mode = "implicit" if settings.security.value == "TLS" else "starttls"
        elif port is None:
            port = 465 if mode == "implicit" else 25
        return host, port, mode, settings


def _config_call(method: str, params: dict[str, Any]) -> tuple[str, str]:
    """(the call as the script wrote it, what it does in words) of a configuration change."""
    if method == "mail.configure":
        return f"mail.configure({quoted(params['from'])})", "change the mail configuration (mail.configure)"
    if method == "credentials.add_protocol":
        return f"credentials.add_protocol({quoted(params['name'])})", f"add the credential protocol {params['name']!r}"
    identity = (params["protocol"], params["endpoint"], params["virtual_user"])
    call = f"{method}({', '.join(quoted(v) for v in identity)})"
    verb = "remove" if method == "credentials.remove" else ("replace" if params.get("replace") else "add")
    return call, f"{verb} the credential {' '.join(quoted(v) for v in identity)}"
