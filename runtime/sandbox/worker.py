"""The worker process: limit itself, then run the parent's statements in one script namespace.

Started by the parent as `python -I -S <this file> FD CONFIG` with an empty environment, in a fresh
empty folder, in its own session and process group. Before it reads any code it imports
everything scripts may use, touches what those modules load lazily, sets its rlimits and loads
the seccomp filter; from then on it needs no file at all. Its names come from a module the parent
names (`stdlib.preload`), so that runtime never imports stdlib.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    # Started by path with -I -S: no site processing (it costs a quarter of the start-up), so the
    # parent names the folders to import from: the package root and its site-packages.
    import json as _json

    sys.path[:0] = [p for p in _json.loads(sys.argv[2]).get("path", []) if isinstance(p, str)]

import _socket
import gc
import importlib
import json
import os
import signal
from typing import Any

from jcsh.runtime.sandbox.engine import Engine
from jcsh.runtime.sandbox.imports import ModuleTable
from jcsh.runtime.sandbox.limits import DEFAULT_LIMITS, apply_rlimits, install_seccomp
from jcsh.runtime.sandbox.link import Link, OutputStream
from jcsh.runtime.sandbox.policy import make_globals
from jcsh.runtime.sandbox.protocol import Channel

__all__ = ["main", "touch_lazy_data"]


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to kill us when the parent goes (a stuck script must not outlive its shell)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError, ImportError):
        pass
    if parent and os.getppid() != parent:
        os._exit(1)


def touch_lazy_data() -> None:
    """Load now what the allowed modules would otherwise read from disk on first use."""
    import codecs
    import datetime
    import email.utils
    import hashlib
    import random
    import time
    import unicodedata

    time.localtime()
    time.strftime("%Z")
    datetime.datetime.now().astimezone()
    datetime.datetime.strptime("2024-01-02 03:04", "%Y-%m-%d %H:%M")
    time.strptime("2024", "%Y")
    email.utils.formatdate(localtime=True)
    email.utils.make_msgid(domain="localhost")  # imports socket and random on first use from 3.13
    unicodedata.name("a")
    random.SystemRandom().random()
    # Text encodings a script may name in str.encode/bytes.decode (codecs itself is not importable).
    for name in ("idna", "punycode", "latin-1", "ascii", "utf-16", "utf-32", "utf-8-sig", "cp1252", "unicode_escape"):
        try:
            codecs.lookup(name)
        except LookupError:
            pass
    for name in (
        "md5",
        "sha1",
        "sha224",
        "sha256",
        "sha384",
        "sha512",
        "sha3_256",
        "sha3_512",
        "blake2b",
        "blake2s",
        "shake_128",
    ):
        try:
            hashlib.new(name)
        except ValueError:
            pass


def _prepare(config: dict[str, Any], link: Link) -> Engine:
    namespace_module = importlib.import_module(str(config.get("namespace", "jcsh.stdlib.preload")))
    # A one-shot script without an import statement can reach no module: skip importing them all.
    modules = ModuleTable(getattr(namespace_module, "ALIASES", {}), load=bool(config.get("modules", True)))
    restricted = bool(config.get("restricted", True))
    preloaded = namespace_module.build(link, list(config.get("args") or []))
    for module, exported in getattr(namespace_module, "EXPORTS", {}).items():
        modules.provide(module, {name: preloaded[name] for name in exported})

    def make_namespace(display: Any) -> dict[str, Any]:
        return make_globals(
            preloaded,
            restricted=restricted,
            write_out=lambda text: link.write("out", text),
            importer=modules.importer(),
            display=display,
        )

    limits = config.get("limits") or DEFAULT_LIMITS
    return Engine(link, make_namespace, restricted=restricted, memory_limit=limits.get("address_space_bytes"))


def _serve(channel: Channel, engine: Engine) -> None:
    while True:
        try:
            message = channel.recv()
        except (EOFError, OSError):
            return
        if message is None:  # recv() without a timeout only returns None if it is given one
            continue
        kind = message.get("t")
        if kind == "run":
            args = message.get("args")
            done = engine.run(
                str(message.get("src", "")),
                str(message.get("file", "<stdin>")),
                interactive=message.get("mode") == "single",
                args=[str(a) for a in args] if isinstance(args, list) else None,
            )
            channel.send(done)
        elif kind == "names":
            channel.send({"t": "names", "names": engine.names()})
        elif kind == "exit":
            return


def main(argv: list[str]) -> int:
    fd, config = int(argv[1]), json.loads(argv[2])
    _die_with_parent(int(config.get("parent", 0)))
    # Only stdin, stdout, stderr and the channel: nothing the parent's own caller left open.
    limit = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024
    os.closerange(3, fd)
    os.closerange(fd + 1, max(limit, fd + 1))
    if config.get("folder"):
        os.chdir(config["folder"])
    channel = Channel(_socket.socket(fileno=fd))
    link = Link(channel, int(config.get("output_limit", 1 << 20)))
    signal.signal(signal.SIGINT, link.on_sigint)  # ignored until a statement runs
    restricted = bool(config.get("restricted", True))
    try:
        engine = _prepare(config, link)
        if config.get("modules", True):
            touch_lazy_data()
        sys.stdout = OutputStream(link, "out")
        sys.stderr = OutputStream(link, "err")
        gc.freeze()  # the engine's own objects need no collecting: cheaper collections for scripts
        limits = dict(config.get("limits") or DEFAULT_LIMITS)
        applied = apply_rlimits(limits)
        layers = (["restrictedpython"] if restricted else []) + ["process"]
        if applied:
            layers.append("rlimits")
        if install_seccomp():
            layers.append("seccomp")
    except BaseException as e:
        channel.send({"t": "fatal", "error": f"{type(e).__name__}: {e}"})
        return 1
    channel.send({"t": "ready", "layers": layers, "limits": applied, "pid": os.getpid()})
    _serve(channel, engine)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
