"""What the cases run against: a scratch folder, jcsh homes, and the mail server (sink process or MTA)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from bench.harness import Settings, Unavailable, jcsh_command
from bench.servers import MailServer, SinkProcess

__all__ = ["Fixtures", "have_module"]

FROM = "bench@example.test"
TO = "rcpt@example.test"
SINK_USER = "bench"
SINK_PASSWORD = "bench-sink-password"  # a throwaway login for the loopback sink, not a secret


def have_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


class Fixtures:
    """Shared by every case of one run; started lazily, torn down by close()."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.scratch = Path(tempfile.mkdtemp(prefix="jcsh-bench-"))
        self._cert: tuple[Path, Path] | None = None
        self._sinks: list[SinkProcess] = []
        self._servers: dict[str, MailServer] = {}
        self._homes: dict[str, Path] = {}
        self._count = 0

    def folder(self, name: str) -> Path:
        """A fresh, empty folder under the scratch folder."""
        self._count += 1
        path = self.scratch / f"{name}-{self._count}"
        path.mkdir(mode=0o700)
        return path

    def env(self, home: Path | None = None) -> dict[str, str]:
        """The environment of every child: its own jcsh home, config folders and no colour."""
        env = dict(os.environ)
        # a user's installed jcsh runs from cached bytecode, as the peers do from site-packages;
        # a session-wide PYTHONDONTWRITEBYTECODE would make jcsh alone recompile itself every start
        for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):
            env.pop(name, None)
        env.update(
            {
                "JCSH_HOME": str(home or self.folder("home")),
                "NO_COLOR": "1",
                # peers keep their own config/history here, not in the user's home
                "XDG_CONFIG_HOME": str(self.scratch / "xdg-config"),
                "XDG_DATA_HOME": str(self.scratch / "xdg-data"),
                "XDG_CACHE_HOME": str(self.scratch / "xdg-cache"),
                "IPYTHONDIR": str(self.scratch / "ipython"),
            }
        )
        return env

    # -- the servers ----------------------------------------------------------------------------

    @property
    def cert(self) -> tuple[Path, Path]:
        """One self-signed certificate (and key) shared by every sink of the run."""
        if self._cert is None:
            from jcsh.runtime.tls.selfsigned import DEFAULT_NAMES, ensure_self_signed

            cert, key, _ = ensure_self_signed(self.scratch / "sink-cert", list(DEFAULT_NAMES))
            self._cert = (cert, key)
        return self._cert

    def start_sink(self, *options: str) -> SinkProcess:
        """`jcsh sink --starttls` on 127.0.0.1 in its own process, with the shared certificate."""
        if not have_module("jcsh.runtime.sink"):
            raise Unavailable("runtime/sink.py is not there yet")
        cert, key = self.cert
        # --chunking: the sink offers what Postfix offers (PIPELINING and CHUNKING), as a real MTA would
        argv = [
            *jcsh_command(),
            "sink",
            "--port",
            "0",
            "--starttls",
            "--chunking",
            "--cert",
            str(cert),
            "--key",
            str(key),
        ]
        sink = SinkProcess([*argv, *options], self.env(self.folder("sink-home")), cert)
        self._sinks.append(sink)
        return sink

    def server(self, *, auth: bool = False) -> MailServer:
        """The mail server of this run: a real MTA with --mta, else a sink process (with AUTH if asked)."""
        key = "auth" if auth else "plain"
        if key in self._servers:
            return self._servers[key]
        mta = self.settings.mta
        if mta is not None:
            port = mta.port
            user = password = None
            if auth:
                if mta.auth_port is None or mta.user is None:
                    raise Unavailable("no --mta-auth-port/--mta-user given for the AUTH case")
                port, user, password = mta.auth_port, mta.user, mta.password()
            server = MailServer("MTA", mta.host, port, mta.ca, user, password)
        else:
            options = ["--auth", f"{SINK_USER}:{SINK_PASSWORD}", "--require-auth"] if auth else []
            sink = self.start_sink(*options)
            user, password = (SINK_USER, SINK_PASSWORD) if auth else (None, None)
            server = MailServer("sink", sink.host, sink.port, sink.cert_path, user, password, sink)
        self._servers[key] = server
        return server

    def mail_home(self, server: MailServer) -> Path:
        """A jcsh home configured for the server: STARTTLS required, its certificate trusted, its login."""
        key = f"{server.host}:{server.port}"
        if key in self._homes:
            return self._homes[key]
        home = self.folder("mail-home")
        from jcsh.runtime.credentials import X509, CredentialStore
        from jcsh.runtime.registry import open_registry

        reg = open_registry(home)
        try:
            for path, value in {
                "/configuration/mail/Server": server.host,
                "/configuration/mail/Transport": "smtp",
                "/configuration/mail/Port": str(server.port),
                "/configuration/mail/From": FROM,
                "/configuration/mail/JavaMail/mail.smtp.starttls.enable": "true",
                "/configuration/mail/JavaMail/mail.smtp.starttls.required": "true",
            }.items():
                reg.set(path, value)
            store = CredentialStore(reg, home)
            for protocol in (X509, "smtp"):
                if protocol not in store.protocols():
                    store.add_protocol(protocol)
            store.add(X509, "bench-server", "default", certificate=server.cafile.read_text())
            if server.user is not None:
                store.add("smtp", server.host, "default", real_user=server.user, secret=server.password)
        finally:
            reg.close()
        self._homes[key] = home
        return home

    def close(self) -> None:
        for sink in self._sinks:
            sink.stop()
        self._sinks.clear()
        self._servers.clear()
        shutil.rmtree(self.scratch, ignore_errors=True)
