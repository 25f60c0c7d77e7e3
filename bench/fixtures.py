"""What the cases run against: a scratch folder, jcsh homes, and a STARTTLS sink on loopback."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import Settings, Unavailable

__all__ = ["Fixtures", "have_module"]

FROM = "bench@example.test"
TO = "rcpt@example.test"


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
        self._sink: Any = None
        self._sinks: list[Any] = []
        self._mail_home: Path | None = None
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

    # -- the sink -------------------------------------------------------------------------------

    def start_sink(self, **config: Any) -> Any:
        """A STARTTLS sink on 127.0.0.1; every sink of the run shares one self-signed certificate."""
        if not have_module("jcsh.runtime.sink"):
            raise Unavailable("runtime/sink.py is not there yet")
        from jcsh.runtime.sink import Sink, SinkConfig

        # a kept cert_dir makes the sink reuse the certificate the first one generated
        sink = Sink(
            SinkConfig(host="127.0.0.1", port=0, mode="starttls", cert_dir=self.scratch / "sink-cert", **config)
        )
        sink.start()
        self._sinks.append(sink)
        return sink

    @property
    def sink(self) -> Any:
        """The mail sink: STARTTLS on 127.0.0.1, versions as OpenSSL defaults."""
        if self._sink is None:
            self._sink = self.start_sink()
        return self._sink

    def drain(self) -> None:
        """Forget what the sink received (thousands of messages per case)."""
        if self._sink is not None:
            self._sink.messages.clear()

    @property
    def mail_home(self) -> Path:
        """A jcsh home configured for the sink: STARTTLS required, its certificate trusted."""
        if self._mail_home is None:
            sink = self.sink
            home = self.folder("mail-home")
            from jcsh.runtime.credentials import X509, CredentialStore
            from jcsh.runtime.registry import open_registry

            reg = open_registry(home)
            try:
                for key, value in {
                    "/configuration/mail/Server": sink.host,
                    "/configuration/mail/Transport": "smtp",
                    "/configuration/mail/Port": str(sink.port),
                    "/configuration/mail/From": FROM,
                    "/configuration/mail/JavaMail/mail.smtp.starttls.enable": "true",
                    "/configuration/mail/JavaMail/mail.smtp.starttls.required": "true",
                }.items():
                    reg.set(key, value)
                store = CredentialStore(reg, home)
                if X509 not in store.protocols():
                    store.add_protocol(X509)
                store.add(X509, "bench-sink", "default", certificate=Path(sink.cert_path).read_text())
            finally:
                reg.close()
            self._mail_home = home
        return self._mail_home

    def close(self) -> None:
        for sink in self._sinks:
            sink.stop()
        self._sinks.clear()
        self._sink = None
        shutil.rmtree(self.scratch, ignore_errors=True)
