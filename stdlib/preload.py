"""The names a script starts with. The worker imports this module by name and calls build()."""

from __future__ import annotations

from typing import Any

from jcsh.stdlib.credentials import CredentialsStub
from jcsh.stdlib.errors import ConnectFailed, JcshError, JobFailed, LimitHit, TempFailure, name_for_scripts
from jcsh.stdlib.javax.net import ssl as javax_ssl
from jcsh.stdlib.mail import MailStub
from jcsh.stdlib.out import PrintWriter
from jcsh.stdlib.registry import RegistryStub
from jcsh.stdlib.tls import TlsStub

__all__ = ["build", "ALIASES", "EXPORTS", "PRELOADED"]

# Modules a script may import that live here: importable name -> real module.
ALIASES = {"javax.net.ssl": "jcsh.stdlib.javax.net.ssl"}
# Importable module -> the preloaded names it hands out, so that `from javax.net.ssl import
# SSLContext` is the very object preloaded as SSLContext (the one on this worker's link).
EXPORTS = {"javax.net.ssl": ("SSLContext",)}

# Preloaded name -> the class of its object (describe() reads the docs from these).
PRELOADED: dict[str, type] = {
    "jcsOut": PrintWriter,
    "jcsErr": PrintWriter,
    "registry": RegistryStub,
    "credentials": CredentialsStub,
    "mail": MailStub,
    "tls": TlsStub,
    "SSLContext": javax_ssl.SSLContextStub,
    "JcshError": JcshError,
    # The errors a network call raises, caught as the command line's exit codes name them.
    "ConnectFailed": ConnectFailed,  # connection, TLS, trust, protocol (3)
    "LimitHit": LimitHit,  # a step's deadline or the script's own time limit (4)
    "TempFailure": TempFailure,  # the server answered 4xx (75)
    "JobFailed": JobFailed,  # refused (5xx), partial delivery (1)
}


def build(link: Any, args: list[str]) -> dict[str, Any]:
    """The preloaded objects, each talking to the parent over link."""
    name_for_scripts()
    return {
        "jcsOut": PrintWriter(link, "out"),
        "jcsErr": PrintWriter(link, "err"),
        "registry": RegistryStub(link),
        "credentials": CredentialsStub(link),
        "mail": MailStub(link),
        "tls": TlsStub(link),
        "SSLContext": javax_ssl.SSLContextStub(link),
        "JcshError": JcshError,
        "ConnectFailed": ConnectFailed,
        "LimitHit": LimitHit,
        "TempFailure": TempFailure,
        "JobFailed": JobFailed,
        "jcsArgs": list(args),
    }
