"""The engine itself: framing, results, tracebacks, the REPL contract, guards, and a worker gone bad."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jcsh.runtime.sandbox import protocol
from jcsh.runtime.sandbox.client import Session
from jcsh.runtime.sandbox.compiler import compile_user
from jcsh.runtime.sandbox.imports import ALLOWED
from jcsh.runtime.sandbox.limits import available_layers, seccomp_available
from jcsh.runtime.sandbox.link import Link
from jcsh.runtime.sandbox.protocol import MAX_FRAME, Channel, ProtocolError, decode, encode, encode_reply
from tests.sandbox.helpers import run

# -- framing --------------------------------------------------------------------------------------


def test_frames_round_trip_and_bad_frames_are_refused() -> None:
    a, b = socket.socketpair()
    left, right = Channel(a), Channel(b)
    left.send({"t": "out", "d": "é\n" * 3})
    assert right.recv(1) == {"t": "out", "d": "é\n" * 3}
    assert right.recv(0.05) is None
    for body in (b"not json", b"[1, 2]", b'{"no": "type"}', b"[" * 100000 + b"]" * 100000):
        with pytest.raises(ProtocolError):
            decode(body)
    a.sendall((MAX_FRAME + 1).to_bytes(4, "big"))
    with pytest.raises(ProtocolError):
        right.recv(1)
    with pytest.raises(ProtocolError):
        encode({"t": "x", "d": "x" * MAX_FRAME})
    left.close()
    with pytest.raises(EOFError):
        Channel(b).recv(1)


@pytest.mark.parametrize("c_encoder", [True, False])
def test_frames_are_what_json_makes_and_reads(c_encoder: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # The C encoder made once writes what json.dumps writes (as JSONEncoder.encode does where
    # there is none); the scanner reads what json.loads reads.
    if not c_encoder:
        monkeypatch.setattr(protocol, "_ENCODE", None)
    assert (protocol._ENCODE is not None) == c_encoder
    for message in (
        {"t": "call", "id": 7, "m": "registry.get", "a": {"path": "/a/é"}},
        {"t": "out", "d": 'quote " and \\ and \n', "n": None, "f": 1.5, "l": [True, {}, [1, -2]]},
    ):
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        assert encode(message) == len(body).to_bytes(4, "big") + body
        assert decode(body) == message
    surrogate = {"t": "out", "d": "\ud800"}  # a lone surrogate goes out as json.dumps makes it
    assert encode(surrogate)[4:] == json.dumps(surrogate, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"
    )
    assert decode(b' \n{"t": "x"}\t') == {"t": "x"}  # whitespace around the object, as json.loads allows
    for body in (b"", b"  ", b'{"t":"x"} {"t":"y"}', b'{"t":"x"}]', b'{"t":"x"'):
        with pytest.raises(ProtocolError, match="not valid JSON"):
            decode(body)


@given(st.integers(), st.text())
def test_a_text_reply_is_the_frame_encode_makes(ident: int, value: str) -> None:
    assert encode_reply(ident, value) == encode({"t": "reply", "id": ident, "ok": value})


def test_every_other_reply_goes_through_encode() -> None:
    for ident, value in [(1, None), (2, ["a", 1]), (3, {"k": "v"}), (4, True), (5, 7), ("x", "t"), (True, "t")]:
        assert encode_reply(ident, value) == encode({"t": "reply", "id": ident, "ok": value})
    assert decode(encode_reply(9, 'a "quoted" \\ é\n')[4:]) == {"t": "reply", "id": 9, "ok": 'a "quoted" \\ é\n'}
    with pytest.raises(ProtocolError):
        encode_reply(1, "x" * MAX_FRAME)


def test_frames_arrive_whole_however_the_reads_cut_them() -> None:
    a, b = socket.socketpair()
    right = Channel(b)
    first, second = encode({"t": "out", "d": "1"}), encode({"t": "out", "d": "2" * 70000})
    a.sendall(first + second[:3])  # one frame and a part of the next header in one read
    threading.Timer(0.1, a.sendall, [second[3:]]).start()
    assert right.recv(5) == {"t": "out", "d": "1"}
    assert right.recv(5) == {"t": "out", "d": "2" * 70000}
    a.sendall(first + first)  # two frames in one read
    assert right.recv(5) == right.recv(0.01) == {"t": "out", "d": "1"}
    assert right.recv(0.01) is None


def _timed_receives(right: Channel, left: socket.socket) -> None:
    started = time.monotonic()
    assert right.recv(0.2) is None
    assert 0.19 <= time.monotonic() - started < 1.0  # the time asked for, not much more
    threading.Timer(0.1, left.sendall, [encode({"t": "out", "d": "late"})]).start()
    started = time.monotonic()
    assert right.recv(5) == {"t": "out", "d": "late"}  # a message ends the wait
    assert time.monotonic() - started < 2
    assert right.recv(0.05) is None
    threading.Timer(0.3, left.sendall, [encode({"t": "out", "d": "later"})]).start()
    assert right.recv() == {"t": "out", "d": "later"}  # no timeout: it waits, past the 0.05 s just set


def test_receive_waits_as_long_as_asked() -> None:
    a, b = socket.socketpair()
    _timed_receives(Channel(b), a)


class _NoReceiveTimeout(socket.socket):
    """A socket whose system has no SO_RCVTIMEO: the channel polls instead."""

    def setsockopt(self, level: int, name: int, value: object) -> None:  # type: ignore[override]
        if name == socket.SO_RCVTIMEO:
            raise OSError(errno.ENOPROTOOPT, "no receive timeout here")
        super().setsockopt(level, name, value)  # type: ignore[call-overload]


def test_receive_waits_by_polling_without_a_receive_timeout() -> None:
    a, b = socket.socketpair()
    right = Channel(_NoReceiveTimeout(fileno=b.detach()))
    _timed_receives(right, a)
    assert right._selector is not None


def test_ctrl_c_during_a_request_is_raised_after_its_reply() -> None:
    # The worker's request and its reply go whole: a Ctrl-C that comes between them waits.
    a, b = socket.socketpair()
    link, parent = Link(Channel(a), 1 << 20), Channel(b)

    def serve() -> None:
        call = parent.recv(5)
        assert call is not None
        os.kill(os.getpid(), signal.SIGINT)  # while the worker waits for the reply
        time.sleep(0.2)
        parent.send({"t": "reply", "id": call["id"], "ok": "first"})

    old = signal.signal(signal.SIGINT, link.on_sigint)
    link.running = True
    try:
        server = threading.Thread(target=serve)
        server.start()
        with pytest.raises(KeyboardInterrupt):
            link.call("registry.get", {"path": "/a"})
        server.join(5)
        with pytest.raises(BlockingIOError):
            a.recv(1, socket.MSG_DONTWAIT)  # the reply was read, not left for the next request
        threading.Timer(0.05, lambda: parent.send({"t": "reply", "id": parent.recv(5)["id"], "ok": "second"})).start()
        assert link.call("registry.get", {"path": "/a"}) == "second"
    finally:
        link.running = False
        signal.signal(signal.SIGINT, old)


# -- results --------------------------------------------------------------------------------------


def test_interactive_values_and_underscore(restricted_session: Session) -> None:
    assert run(restricted_session, "6 * 7", interactive=True).result.value == "42"
    assert run(restricted_session, "_ + 1", interactive=True).result.value == "43"
    assert run(restricted_session, "x = 1", interactive=True).result.value is None
    assert run(restricted_session, "None", interactive=True).result.value is None
    assert run(restricted_session, "6 * 7").result.value is None  # scripts echo nothing


@pytest.mark.parametrize(
    ("code", "exit_code", "error"),
    [
        ("exit()", 0, None),
        ("exit(0)", 0, None),
        ("raise SystemExit(3)", 3, None),
        ("quit(300)", 44, None),
        ("exit('bye')", 1, "bye"),
        ("raise KeyboardInterrupt", 130, "KeyboardInterrupt"),
    ],
)
def test_exit_statuses(restricted_session: Session, code: str, exit_code: int, error: str | None) -> None:
    r = run(restricted_session, code).result
    assert r.exit_code == exit_code and r.exited == code.startswith(("exit", "quit", "raise SystemExit"))
    assert (r.error is None) if error is None else (error in r.error)


def test_tracebacks_show_user_lines_only(restricted_session: Session) -> None:
    code = "def inner():\n    return registry.get(5)\n\ndef outer():\n    return inner()\nouter()"
    r = run(restricted_session, code, filename="scripts/check.jcs").result
    assert r.error == (
        "Traceback (most recent call last):\n"
        '  File "scripts/check.jcs", line 6, in <module>\n    outer()\n'
        '  File "scripts/check.jcs", line 5, in outer\n    return inner()\n'
        '  File "scripts/check.jcs", line 2, in inner\n    return registry.get(5)\n'
        "TypeError: path must be a string, not int"
    )
    assert "runtime" not in r.error and "stdlib" not in r.error


def test_repl_entries_are_numbered(restricted_session: Session) -> None:
    run(restricted_session, "def half(n):\n    return 1 / n", interactive=True)
    r = run(restricted_session, "half(0)", interactive=True).result
    assert "<stdin-" in r.error and "line 2, in half" in r.error and "return 1 / n" in r.error


def test_syntax_error_points_at_the_line(restricted_session: Session) -> None:
    r = run(restricted_session, "x = 1\ny = (2 +\n", filename="bad.jcs").result
    assert r.exit_code == 1 and r.error.startswith('File "bad.jcs", line 2') and "SyntaxError" in r.error


def test_refusals_are_one_line(restricted_session: Session) -> None:
    for code in ("import os", "x = 1\nopen('/etc/passwd')", "getattr(1, '__class__')", "().__class__"):
        r = run(restricted_session, code).result
        assert r.exit_code == 1 and "\n" not in r.error and r.error.startswith('File "<stdin>", line ')
    assert "line 2: open()" in run(restricted_session, "x = 1\nopen('/etc/passwd')").result.error


def test_output_and_errors_reach_the_shell_as_the_script_made_them(restricted_session: Session) -> None:
    # The session hands texts over unchanged; the shell's sanitizer escapes them where they are
    # shown (tests/test_sanitize.py), and --json keeps them exact.
    ran = run(
        restricted_session,
        "print('\\x1b[2J\\x1b]0;owned\\x07clear')\nraise ValueError('\\x1b[31mred')",
        interactive=True,
    )
    assert ran.out == "\x1b[2J\x1b]0;owned\x07clear\n" and ran.result.error.endswith("ValueError: \x1b[31mred")
    assert run(restricted_session, "'\\x1b[31m'", interactive=True).result.value == "'\\x1b[31m'"  # repr escapes


def test_what_scripts_can_do(restricted_session: Session) -> None:
    code = """
import collections, enum, json, re, datetime, time, math, statistics, decimal, hashlib, base64, ipaddress, uuid
import email.utils, string, textwrap, pprint, functools, itertools, random, fractions, calendar, hmac, binascii, cmath
class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y
    def __eq__(self, other):
        return (self.x, self.y) == (other.x, other.y)
class Color(enum.Enum):
    RED = 1
P = collections.namedtuple('P', 'a b')
p = Point(1, 2)
p.x += 10
total = 0
for k, v in {'a': 1, 'b': 2}.items():
    total += v
a, (b, c) = 1, (2, 3)
print(p.x, Color.RED.name, P(1, 2).b, total, a + b + c, '{0.x}-{1}'.format(p, [1][0]), '{a}'.format_map({'a': 5}))
print(json.dumps({'k': [1]}), re.sub(r'\\d', '#', 'a1b2'), math.sqrt(16), statistics.mean([1, 2, 3]))
print(hashlib.sha256(b'x').hexdigest()[:8], ipaddress.ip_address('::1').is_loopback, len(str(uuid.uuid4())))
print(email.utils.parseaddr('Admin <admin@example.test>'), 'bücher.example'.encode('idna'), 'é'.encode('latin-1'))
print(datetime.datetime.strptime('2024-05-06', '%Y-%m-%d').date(), time.localtime().tm_year > 2000)
print(sorted({3, 1, 2}), list(reversed([1, 2])), dict(zip('ab', [1, 2])), max([1, 5]), sum(range(5)))
print(dir(p), hasattr(p, 'x'), getattr(p, 'nope', 'default'), Point(1, 2) == Point(1, 2))
pprint.pprint({'z': 1})
"""
    ran = run(restricted_session, code)
    assert ran.result.ok, ran.text
    lines = ran.out.splitlines()
    assert lines[0] == "11 RED 2 3 6 11-1 5"
    assert lines[3] == "('Admin', 'admin@example.test') b'xn--bcher-kva.example' b'\\xe9'"
    assert lines[6] == "['x', 'y'] True default True" and lines[7] == "{'z': 1}"


def test_lazily_loaded_helpers_work_and_stay_private(restricted_session: Session) -> None:
    # time.strptime and datetime.strptime import _strptime on first use (through the script's
    # __import__), make_msgid imports socket on first use from 3.13: both after seccomp is on.
    code = (
        "import time, datetime, email.utils\n"
        "print(time.strptime('2024-05-06', '%Y-%m-%d').tm_yday)\n"
        "print(datetime.datetime.strptime('06/05/2024 10:30', '%d/%m/%Y %H:%M').isoformat())\n"
        "print(datetime.date.today() == datetime.datetime.strptime(str(datetime.date.today()), '%Y-%m-%d').date())\n"
        "m = email.utils.make_msgid(domain='example.test')\n"
        "print(m.startswith('<') and m.endswith('@example.test>'), email.utils.make_msgid().count('@'))"
    )
    ran = run(restricted_session, code)
    assert ran.result.ok, ran.text
    assert ran.out.splitlines() == ["127", "2024-05-06T10:30:00", "True", "True 1"]
    # The module the C code imports is not something a script can name.
    refused = run(restricted_session, "import _strptime").result
    assert not refused.ok and "_strptime" in refused.error


def test_every_allowed_module_imports(restricted_session: Session) -> None:
    code = "\n".join(f"import {name}" for name in ALLOWED)
    assert run(restricted_session, code).result.ok


def test_writes_only_to_what_the_script_made(restricted_session: Session) -> None:
    r = run(
        restricted_session,
        "rows = registry.list('/')\nd = {}\nd['k'] = 1\nimport collections\n"
        "c = collections.Counter()\nc['k'] += 1\nprint(d, dict(c))",
    ).result
    assert r.ok, r.error
    assert "cannot set attributes of PrintWriter" in run(restricted_session, "jcsOut.x = 1").result.error


def test_names_reset_layers_and_limits(session: Session) -> None:
    run(session, "alpha = 1\ndef beta():\n    pass")
    names = session.names()
    assert {"alpha", "beta", "jcsOut", "registry", "mail", "tls", "jcsArgs", "SSLContext"} <= set(names)
    assert not any(n.startswith("_") for n in names)
    session.reset()
    assert "alpha" not in session.names()
    assert session.layers == available_layers()
    limits = session.limits
    assert limits["timeout_seconds"] == 1.0 and limits["output_bytes"] == 1 << 20
    assert limits["address_space_bytes"] == 1 << 30 and limits["file_size_bytes"] == 0


def test_interrupt_from_another_thread(session: Session) -> None:
    session.timeout = 30
    run(session, "kept = 5")
    timer = threading.Timer(0.3, session.interrupt)
    timer.start()
    started = time.monotonic()
    r = run(session, "while True:\n    pass").result
    assert time.monotonic() - started < 3
    assert (r.exit_code, r.namespace_lost) == (130, False) and "KeyboardInterrupt" in r.error
    assert run(session, "print(kept)").out == "5\n"


def test_guarded_attribute_reads_compile_to_plain_reads() -> None:
    code = compile_user("p.x + p.y\n'{}'.format(1)", "<t>", interactive=False)
    names = set(code.co_names)
    assert "x" in names and "y" in names  # plain LOAD_ATTR
    assert "_getattr_" in names  # format still goes through the guard


# -- a worker gone bad ----------------------------------------------------------------------------


@pytest.mark.skipif(not seccomp_available(), reason="needs the unrestricted worker to be contained")
@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("import os, sys\nos.write(int(sys.argv[1]), b'\\xff\\xff\\xff\\xff')", "broke the protocol"),
        ("import os, sys\nos.write(int(sys.argv[1]), b'\\x00\\x00\\x00\\x05hello')", "broke the protocol"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "killed (SIGKILL)"),
        ("import os\nos._exit(3)", "exited with status 3"),
    ],
)
def test_a_worker_that_dies_or_babbles_is_replaced(unrestricted_session: Session, code: str, says: str) -> None:
    before = unrestricted_session.pid
    r = run(unrestricted_session, code).result
    assert (r.ok, r.exit_code, r.namespace_lost) == (False, 1, True)
    assert says in r.error
    assert unrestricted_session.pid != before
    assert run(unrestricted_session, "print(1)").out == "1\n"


def test_a_closed_output_stops_the_script(session: Session) -> None:
    session.timeout = 10

    def closed(stream: str, text: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    started = time.monotonic()
    r = session.run("while True:\n    print('x')", on_output=closed)
    assert (r.exit_code, r.namespace_lost) == (1, False) and "broken pipe" in r.error
    assert time.monotonic() - started < 3


@pytest.mark.skipif(not seccomp_available(), reason="needs the unrestricted worker to be contained")
def test_the_worker_has_no_environment_an_empty_folder_and_few_descriptors(unrestricted_session: Session) -> None:
    code = (
        # dup() tells an open descriptor from a closed one (fstat looks nothing up: it is refused)
        "import os\nopen_fds = []\nfor fd in range(256):\n    try:\n        os.close(os.dup(fd))\n"
        "        open_fds.append(fd)\n    except OSError:\n        pass\n"
        "env = sorted(os.environ)\n"
        "print(env, os.path.basename(os.getcwd()).startswith('jcsh-worker-'), len(open_fds))\n"
        "print(os.getcwd())"
    )
    ran = run(unrestricted_session, code)
    assert ran.result.ok, ran.text
    first, folder = ran.out.splitlines()
    # Nothing but what the interpreter's C-locale coercion sets itself (PEP 538); 4 descriptors:
    # stdin, stdout (/dev/null), stderr (a pipe read when the worker dies) and the channel.
    assert first in ("[] True 4", "['LC_CTYPE'] True 4")
    import os

    assert os.path.isdir(folder) and os.listdir(folder) == []
    unrestricted_session.reset()
    assert not os.path.exists(folder)
