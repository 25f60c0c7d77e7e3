"""The worker's operating-system limits: rlimits, and a seccomp filter where libseccomp exists.

The filter allows by default and names what it refuses, because CPython needs a long and
version-dependent list of ordinary system calls. What it refuses (see facts.md):
- kills the process on exec (execve, execveat), ptrace, process_vm_*, io_uring_*;
- refuses with EPERM process creation: clone without CLONE_THREAD (threads still work), fork,
  vfork, and clone3 with ENOSYS so that the C library falls back to clone;
- refuses with EACCES socket creation and connect, every file open or path change, and every
  call that looks a path up (stat, access, readlink, chdir, xattrs ...): the worker learns nothing
  of the file tree (fstat goes through newfstatat too; the worker needs it for nothing);
- refuses kill/tkill/tgkill/rt_*sigqueueinfo aimed at any pid but the worker's own, pidfd signals;
- refuses SysV IPC and POSIX message queues (shared with other processes of the machine);
- refuses scheduling and priority changes of any process but the worker itself (named by its pid);
- refuses raising rlimits back (setrlimit, prlimit64 with a new limit),
  catching or ignoring SIGXCPU (the CPU-time backstop), clearing PR_SET_PDEATHSIG, and the calls
  only an administrator would make (mount, modules, bpf, namespaces ...), since tests may run as root.
"""

from __future__ import annotations

import errno
import os
import sys
import types

TYPE_CHECKING = False  # no typing import: the parent may import this before anything else
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "available_layers",
    "apply_rlimits",
    "cpu_backstop",
    "install_seccomp",
    "seccomp_available",
    "DEFAULT_LIMITS",
    "LAYERS",
]

# Every layer in the order a request meets them, outermost last.
LAYERS = ("restrictedpython", "process", "rlimits", "seccomp")

DEFAULT_LIMITS: dict[str, int] = {
    "address_space_bytes": 1 << 30,
    "open_files": 32,
    "file_size_bytes": 0,
    "core_bytes": 0,
}

_CLONE_THREAD = 0x00010000

_KILL = (
    "execve",
    "execveat",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
)
_NO_PROCESS = ("fork", "vfork")
_NO_NETWORK = ("socket", "socketpair", "connect")
# Opening a file, and every call that changes or reveals the file tree by path.
_NO_FILES = (
    "open",
    "openat",
    "openat2",
    "creat",
    "open_by_handle_at",
    "name_to_handle_at",
    "mkdir",
    "mkdirat",
    "rmdir",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "readlink",
    "readlinkat",
    "mknod",
    "mknodat",
    "chmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "lchown",
    "fchownat",
    "truncate",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "setxattr",
    "lsetxattr",
    "removexattr",
    "lremovexattr",
    "uselib",
    "inotify_init",
    "inotify_init1",
    "fanotify_init",
    "memfd_create",
    "chroot",
    "pivot_root",
    # looking a path up reveals the file tree even without opening anything
    "stat",
    "lstat",
    "newfstatat",
    "fstatat64",
    "statx",
    "statfs",
    "access",
    "faccessat",
    "faccessat2",
    "chdir",
    "fchdir",
    "getxattr",
    "lgetxattr",
    "listxattr",
    "llistxattr",
)
# Shared with every process of the machine, outside the worker's process group.
_NO_IPC = (
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
)
_NO_ADMIN = (
    "mount",
    "umount2",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fspick",
    "mount_setattr",
    "swapon",
    "swapoff",
    "reboot",
    "sethostname",
    "setdomainname",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "acct",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "syslog",
    "quotactl",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "iopl",
    "ioperm",
    "setrlimit",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "process_madvise",
    "kcmp",
    "lookup_dcookie",
)
# Signals and scheduling: allowed only when the first argument is the worker's own pid. (libseccomp
# takes one comparison per argument in a rule, so 0 for "this process" is refused as well.)
_OWN_PID_ONLY = (
    "kill",
    "tkill",
    "tgkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "sched_setaffinity",
    "sched_setscheduler",
    "sched_setparam",
    "sched_setattr",
)
# (which, who) calls: allowed only for (this kind of target, the worker's own pid).
_WHICH_WHO = {"setpriority": 0, "ioprio_set": 1}  # PRIO_PROCESS, IOPRIO_WHO_PROCESS
_PR_SET_PDEATHSIG = 1
_SIGXCPU = 24  # the same number on every Linux architecture jcsh runs on (x86, arm, riscv)


def _load_seccomp() -> Any:
    """pyseccomp, or None where it or libseccomp is missing."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return _import_pyseccomp()
    except (ImportError, OSError, RuntimeError):
        return None


def _import_pyseccomp() -> Any:
    """Import pyseccomp without ctypes.util where the sonames load directly.

    pyseccomp finds libc and libseccomp with ctypes.util.find_library, whose import (shutil,
    subprocess) and ldconfig runs cost a fifth of the worker's start-up; the sonames are known.
    """
    import ctypes

    if "ctypes.util" in sys.modules or "pyseccomp" in sys.modules:
        import pyseccomp

        return pyseccomp
    known = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}
    try:
        for soname in known.values():
            ctypes.CDLL(soname)
    except OSError:
        import pyseccomp  # another C library or soname: let it search

        return pyseccomp
    stub = types.ModuleType("ctypes.util")
    stub.find_library = known.get  # type: ignore[attr-defined]
    sys.modules["ctypes.util"] = stub
    ctypes.util = stub
    try:
        import pyseccomp
    finally:
        del sys.modules["ctypes.util"]
        del ctypes.util
    return pyseccomp


def seccomp_available() -> bool:
    """Whether this platform can filter system calls (Linux with libseccomp)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes.util

    return ctypes.util.find_library("seccomp") is not None


def available_layers() -> list[str]:
    """The sandbox layers this platform can apply."""
    layers = ["restrictedpython", "process"]
    try:
        import resource  # noqa: F401
    except ImportError:
        pass
    else:
        layers.append("rlimits")
    if seccomp_available():
        layers.append("seccomp")
    return layers


def apply_rlimits(limits: dict[str, int]) -> dict[str, int]:
    """Set soft and hard limits (hard too, so the script cannot raise them back); returns what was set."""
    try:
        import resource
    except ImportError:
        return {}
    applied: dict[str, int] = {}
    wanted = {
        "address_space_bytes": getattr(resource, "RLIMIT_AS", None),
        "core_bytes": resource.RLIMIT_CORE,
        "file_size_bytes": resource.RLIMIT_FSIZE,
        "open_files": resource.RLIMIT_NOFILE,
    }
    for name, which in wanted.items():
        if which is None or name not in limits:
            continue
        value = int(limits[name])
        if name == "open_files":
            # The descriptors already open (the channel, stdio) must stay below the limit.
            value = max(value, _highest_fd() + 1)
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            continue
        applied[name] = value
    return applied


def cpu_backstop(pid: int, seconds: float) -> None:
    """Let the worker `pid` use at most `seconds` more CPU time before the kernel ends it (SIGXCPU).

    Set from the parent before each run: the worker cannot change its own limits under the filter,
    and its CPU time adds up over the statements of a REPL session.
    """
    try:
        import resource

        prlimit = resource.prlimit
    except (ImportError, AttributeError):
        return
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        used = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        _soft, hard = prlimit(pid, resource.RLIMIT_CPU)
        soft = int(used + seconds) + 1
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        prlimit(pid, resource.RLIMIT_CPU, (soft, hard))
    except (OSError, ValueError, IndexError):
        pass  # the worker is gone, or this system has no /proc: the parent's clock still holds


def _highest_fd() -> int:
    try:
        return max(int(n) for n in os.listdir("/proc/self/fd"))
    except (OSError, ValueError):
        return 16


def install_seccomp(own_pid: int | None = None) -> bool:
    """Load the filter into this process (irreversibly); False where seccomp is unavailable."""
    sc = _load_seccomp()
    if sc is None:
        return False
    pid = os.getpid() if own_pid is None else own_pid
    f = sc.SyscallFilter(sc.ALLOW)

    def rule(action: int, name: str, *args: Any) -> None:
        try:
            f.add_rule(action, name, *args)
        except (OSError, ValueError, RuntimeError):
            pass  # a call this kernel or libseccomp does not know cannot be made either

    for name in _KILL:
        rule(sc.KILL_PROCESS, name)
    for name in _NO_PROCESS:
        rule(sc.ERRNO(errno.EPERM), name)
    rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, _CLONE_THREAD, 0))
    rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for name in _NO_NETWORK + _NO_FILES:
        rule(sc.ERRNO(errno.EACCES), name)
    for name in _NO_ADMIN + _NO_IPC:
        rule(sc.ERRNO(errno.EPERM), name)
    rule(sc.ERRNO(errno.EPERM), "prlimit64", sc.Arg(2, sc.NE, 0))
    for name in _OWN_PID_ONLY:
        rule(sc.ERRNO(errno.EPERM), name, sc.Arg(0, sc.NE, pid))
    for name, which in _WHICH_WHO.items():
        rule(sc.ERRNO(errno.EPERM), name, sc.Arg(0, sc.NE, which))
        rule(sc.ERRNO(errno.EPERM), name, sc.Arg(1, sc.NE, pid))
    rule(sc.ERRNO(errno.EPERM), "prctl", sc.Arg(0, sc.EQ, _PR_SET_PDEATHSIG))
    rule(sc.ERRNO(errno.EPERM), "rt_sigaction", sc.Arg(0, sc.EQ, _SIGXCPU))
    try:
        f.load()
    except OSError:
        return False
    return True
