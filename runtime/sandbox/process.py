"""One worker process seen from the parent: spawn it, signal it, kill its group, say how it died.

Importing this module costs next to nothing (no subprocess, tempfile or socket module), so that a
command line can start the worker before it has even parsed its arguments.
"""

from __future__ import annotations

import _socket
import os
import sys
import time

from jcsh.runtime.sandbox.protocol import Channel

__all__ = ["WorkerProcess", "WORKER_PATH", "CHANNEL_FD", "sweep_stale_folders"]

WORKER_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")
CHANNEL_FD = 3  # where the worker finds its end of the socketpair
# The folder that holds the `jcsh` package: worker.py is jcsh/runtime/sandbox/worker.py below it.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(WORKER_PATH))))


def _import_path() -> list[str]:
    """Where the worker imports from: this package's root, then the interpreter's site-packages."""
    return [_ROOT] + [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")]


def _json(value: object) -> str:
    """JSON for the small config (text, numbers, booleans, lists, objects) without importing json."""
    from _json import encode_basestring_ascii as text

    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return text(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{text(str(k))}:{_json(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot send {type(value).__name__} in the worker's config")


_PREFIX = "jcsh-worker-"
_STALE_AFTER = 30.0  # seconds: a worker moves into its folder long before this
_swept = False


def _base() -> str:
    return os.environ.get("TMPDIR") or "/tmp"


def _new_folder() -> str:
    base = _base()
    for _ in range(100):
        folder = os.path.join(base, _PREFIX + os.urandom(6).hex())
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"cannot make a fresh folder in {base}")


class WorkerProcess:
    """A started worker: `python -I -S worker.py`, no environment, an empty folder, its own session."""

    def __init__(self, config: dict[str, object]) -> None:
        _reap_stopped()
        self.returncode: int | None = None
        self.folder = _new_folder()
        parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        err_read, err_write = os.pipe()
        config = {**config, "parent": os.getpid(), "path": _import_path(), "folder": self.folder}
        # -S skips site processing (a quarter of the start-up); the config names the import path.
        argv = [sys.executable, "-I", "-S", WORKER_PATH, str(CHANNEL_FD), _json(config)]
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, err_write, 2),
        ]
        if child.fileno() == CHANNEL_FD:
            os.set_inheritable(CHANNEL_FD, True)  # dup2 onto itself would keep close-on-exec
        else:
            actions.append((os.POSIX_SPAWN_DUP2, child.fileno(), CHANNEL_FD))
        try:
            # Its own session (and so process group): the terminal's Ctrl-C reaches only the parent,
            # and the parent can kill the whole group. Other descriptors are close-on-exec; the
            # worker closes any inherited one anyway before it reads code.
            self.pid = os.posix_spawn(argv[0], argv, {}, file_actions=actions, setsid=True)
        except OSError:
            parent.close()
            os.close(err_read)
            os.rmdir(self.folder)
            raise
        finally:
            child.close()
            os.close(err_write)
        self._stderr = err_read
        self.channel = Channel(parent)
        sweep_stale_folders()  # while the worker boots

    def sigint(self) -> None:
        """Ask the running statement to stop (the script sees KeyboardInterrupt)."""
        if self.returncode is None:  # not reaped, so the pid is still this worker's
            try:
                os.kill(self.pid, 2)  # SIGINT
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self, *, wait: bool = True) -> str:
        """Kill the whole process group, reap it, remove its folder; how it ended, in words.

        wait=False skips reaping (for a parent about to exit: init reaps the worker).
        """
        if self.returncode is None:  # not reaped yet, so its pid and group cannot have been reused
            try:
                os.killpg(self.pid, 9)  # SIGKILL
            except (ProcessLookupError, PermissionError):
                pass
            if not wait:
                self.returncode = -9
                _UNREAPED.append(self.pid)  # reaped by a later spawn, or by init once we exit
                os.close(self._stderr)
                self.channel.close()
                _remove(self.folder)
                return "it was stopped"
            self._reap(5.0)
        tail = self._stderr_tail()
        self.channel.close()
        _remove(self.folder)
        return _ending(self.returncode) + (f": {tail}" if tail else "")

    def _reap(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -9
                return
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                return
            if time.monotonic() > deadline:
                return
            time.sleep(0.001)

    def _stderr_tail(self) -> str:
        """The last line the worker wrote to stderr (a Python fatal error, say)."""
        try:
            os.set_blocking(self._stderr, False)
            data = os.read(self._stderr, 1 << 16)
        except OSError:
            data = b""
        finally:
            os.close(self._stderr)
        lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
        if not lines:
            return ""
        return lines[-1][:300]  # shown through the shell's sanitizer


_UNREAPED: list[int] = []


def _reap_stopped() -> None:
    for pid in list(_UNREAPED):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _UNREAPED.remove(pid)


def sweep_stale_folders() -> None:
    """Remove the folders of workers whose parent was killed (once per process).

    A folder is stale when it is ours, empty, older than a worker's start-up, and no process has
    it as its working folder: other jcsh processes share this folder, and theirs stay.
    """
    global _swept
    if _swept:
        return
    _swept = True
    uid, now, found = os.getuid(), time.time(), []
    try:
        with os.scandir(_base()) as entries:
            for entry in entries:
                if entry.name.startswith(_PREFIX) and entry.is_dir(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    if st.st_uid == uid and now - st.st_mtime > _STALE_AFTER:
                        found.append(os.path.realpath(entry.path))
    except OSError:
        return
    if not found:
        return
    busy = _working_folders()
    if busy is None:
        return  # which folders are in use cannot be told: leave them all
    for folder in found:
        if folder not in busy:
            try:
                os.rmdir(folder)  # only an empty folder goes: a worker cannot create files
            except OSError:
                pass


def _working_folders() -> set[str] | None:
    """The working folder of every process we can see, or None without /proc."""
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    folders = set()
    for pid in pids:
        try:
            folders.add(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            continue  # gone, or another user's process (which cannot enter a 0700 folder of ours)
    return folders


def _remove(folder: str) -> None:
    try:
        os.rmdir(folder)  # the worker cannot create files, so it is empty
    except OSError:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def _ending(code: int | None) -> str:
    if code is None:
        return "it stopped responding"
    if code >= 0:
        return f"it exited with status {code}"
    import signal

    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return {
        "SIGSYS": "it made a system call the sandbox forbids (SIGSYS)",
        "SIGKILL": "it was killed (SIGKILL)",
        "SIGSEGV": "it crashed (SIGSEGV)",
    }.get(name, f"it was ended by {name}")
