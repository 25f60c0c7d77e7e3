"""Escape attempts: each fails with the expected error and leaves no trace outside the worker.

Every payload starts with `attempt(b)`, which, given anything holding the real builtins, tries to
write a file, read a secret, connect to the test's listening socket and start processes. With
both layers on, the RestrictedPython layer refuses the trick before `attempt` is reached. With
that layer off (`restricted=False`, a test-only switch), the tricks work and `attempt` runs: the
process layer alone (rlimits, seccomp, empty folder, no environment) must still contain it.
"""

from __future__ import annotations

import pytest

from jcsh.runtime.sandbox.client import Session
from jcsh.runtime.sandbox.limits import seccomp_available
from tests.sandbox.helpers import Outside, Ran, run

ATTEMPT = """\
def attempt(b):
    if not isinstance(b, dict):
        b = vars(b)
    imp = b['__import__']
    for step in (lambda: b['open']('SENTINEL', 'w').write('x'),
                 lambda: print(b['open']('SECRETFILE').read()),
                 lambda: imp('socket').create_connection(('127.0.0.1', PORT), timeout=1),
                 lambda: imp('os').system('touch SENTINEL2'),
                 lambda: imp('os').fork()):
        try:
            print('result:', step())
        except Exception as e:
            print('denied:', repr(e).split('(')[0])
"""

# (id, payload, what the restricted run reports, whether the unrestricted run reaches attempt())
PAYLOADS: list[tuple[str, str, str, bool]] = [
    (
        "subclasses-walk",
        (
            "for c in ().__class__.__base__.__subclasses__():\n    if c.__name__ == '_wrap_close':\n"
            "        attempt(c.__init__.__globals__['__builtins__'])"
        ),
        '"__class__" is an invalid attribute name',
        True,
    ),
    (
        "subclasses-built-names",
        (
            "base = getattr(getattr((), '__cla' + 'ss__'), '__ba' + 'se__')\n"
            "for c in getattr(base, '__subcl' + 'asses__')():\n    if getattr(c, '__na' + 'me__') == '_wrap_close':\n"
            "        attempt(getattr(getattr(c, '__init__'), '__globals__')['__builtins__'])"
        ),
        '"__class__" is an invalid attribute name',
        True,
    ),
    (
        "subclasses-via-mro",
        (
            "top = type(()).mro()[-1]\nfor c in getattr(top, '__subclasses__')():\n"
            "    if getattr(c, '__na' + 'me__') == '_wrap_close':\n"
            "        attempt(getattr(getattr(c, '__init__'), '__globals__')['__builtins__'])"
        ),
        '"__subclasses__" is an invalid attribute name',
        True,
    ),
    (
        "function-globals",
        "def f():\n    pass\nattempt(f.__globals__['__builtins__'])",
        '"__globals__" is an invalid attribute name',
        True,
    ),
    (
        "lambda-globals-getattr",
        "attempt(getattr(lambda: 0, '__glo' + 'bals__')['__builtins__'])",
        '"__globals__" is an invalid attribute name',
        True,
    ),
    (
        "stub-method-globals",
        "attempt(jcsOut.println.__func__.__globals__['__builtins__'])",
        '"__func__" is an invalid attribute name',
        True,
    ),
    (
        "stub-method-globals-getattr",
        "m = getattr(registry.get, '__fu' + 'nc__')\nattempt(getattr(m, '__globals__')['__builtins__'])",
        '"__func__" is an invalid attribute name',
        True,
    ),
    (
        "stub-private-link",
        (
            "link = getattr(registry, '_li' + 'nk')\n"
            "attempt(getattr(getattr(link, 'write'), '__globals__')['__builtins__'])"
        ),
        '"_link" is an invalid attribute name',
        True,
    ),
    (
        "shim-globals",
        "attempt(getattr(SSLContext.getDefault, '__globals__')['__builtins__'])",
        '"__globals__" is an invalid attribute name',
        True,
    ),
    (
        "generator-frame",
        "def g():\n    yield 1\ngen = g()\nnext(gen)\nattempt(gen.gi_frame.f_builtins)",
        '"gi_frame" is a restricted name',
        True,
    ),
    (
        "generator-frame-getattr",
        "def g():\n    yield 1\ngen = g()\nnext(gen)\nattempt(getattr(getattr(gen, 'gi_' + 'frame'), 'f_builtins'))",
        '"gi_frame" is a restricted name',
        True,
    ),
    (
        "generator-frame-back",
        (
            "def g():\n    yield 1\ngen = g()\nnext(gen)\nframe = getattr(gen, 'gi_frame')\n"
            "attempt(getattr(frame, 'f_back') or getattr(frame, 'f_builtins'))"
        ),
        '"gi_frame" is a restricted name',
        True,
    ),
    (
        "coroutine-frame",
        "async def c():\n    pass\nco = c()\nattempt(co.cr_frame.f_builtins)\nco.close()",
        "AsyncFunctionDef statements are not allowed",
        True,
    ),
    (
        "async-generator-frame",
        "async def ag():\n    yield 1\nattempt(ag().ag_frame.f_builtins)",
        "AsyncFunctionDef statements are not allowed",
        True,
    ),
    (
        "traceback-frame",
        "try:\n    1/0\nexcept ZeroDivisionError as e:\n    attempt(e.__traceback__.tb_frame.f_builtins)",
        '"__traceback__" is an invalid attribute name',
        True,
    ),
    (
        "traceback-frame-getattr",
        (
            "try:\n    1/0\nexcept ZeroDivisionError as e:\n    tb = getattr(e, '__trace' + 'back__')\n"
            "    attempt(getattr(getattr(tb, 'tb_frame'), 'f_' + 'builtins'))"
        ),
        '"__traceback__" is an invalid attribute name',
        True,
    ),
    (
        "exception-context",
        "try:\n    registry.get('/nope')\nexcept JcshError as e:\n    attempt(getattr(e, '__con' + 'text__'))",
        '"__context__" is an invalid attribute name',
        False,
    ),
    (
        "str-format-walk",
        "print('{0.__globals__[__builtins__]}'.format(attempt))",
        '"__globals__" is an invalid attribute name',
        False,
    ),
    (
        "str-format-map-walk",
        "print('{f.__globals__}'.format_map({'f': attempt}))",
        '"__globals__" is an invalid attribute name',
        False,
    ),
    (
        "str-format-unbound",
        "print(str.format('{0.__class__.__base__}', 1))",
        '"__class__" is an invalid attribute name',
        False,
    ),
    (
        "string-formatter",
        "import string\nattempt(string.Formatter().get_field('0.__globals__', [attempt], {})[0]['__builtins__'])",
        "has no attribute 'Formatter'",
        True,
    ),
    (
        "string-formatter-import",
        "from string import Formatter\nFormatter().get_field('0.__class__', [1], {})",
        "cannot import name 'Formatter'",
        False,
    ),
    (
        "userstring-format",
        "import collections\nprint(collections.UserString('{0.__class__}').format(1))",
        "has no attribute 'UserString'",
        False,
    ),
    (
        "attributeerror-obj",
        (
            "try:\n    registry.nothing\nexcept AttributeError as e:\n    link = getattr(e.obj, '_li' + 'nk')\n"
            "    attempt(getattr(getattr(link, 'write'), '__glo' + 'bals__')['__builtins__'])"
        ),
        '"obj" of an exception is not available',
        True,
    ),
    (
        "getattr-built-string",
        "name = ''.join(['_', '_', 'class', '_', '_'])\ncls = getattr(1, name)",
        '"__class__" is an invalid attribute name',
        False,
    ),
    (
        "operator-attrgetter",
        "import operator\nattempt(operator.attrgetter('__globals__')(attempt)['__builtins__'])",
        "import of 'operator' is not allowed",
        True,
    ),
    (
        "typing-string-annotation",
        "import typing\ndef f(x: \"open('SENTINEL', 'w')\"):\n    pass\ntyping.get_type_hints(f)",
        "import of 'typing' is not allowed",
        False,
    ),
    ("dataclasses", "import dataclasses\ndataclasses.make_dataclass('D', ['a'])", "import of 'dataclasses'", False),
    ("vars", "attempt(vars()['__builtins__'])", "vars() is not available", True),
    (
        "dir-private-names",
        (
            "names = [n for n in dir(registry) if n.startswith('_l')]\nassert names, 'no private names listed'\n"
            "attempt(getattr(getattr(getattr(registry, names[0]), 'call'), '__globals__')['__builtins__'])"
        ),
        "no private names listed",
        True,
    ),
    (
        "type-three-arguments",
        "M = type(type)\nT = M('T', (object,), {})\nattempt(getattr(T, '__subclasses__')())",
        '"__subclasses__" is an invalid attribute name',
        False,
    ),
    ("globals", "attempt(globals()['__builtins__'])", "globals() is not available", True),
    ("try-except-star", "try:\n    pass\nexcept* ValueError:\n    pass", "TryStar statements are not allowed", False),
    (
        "shadow-guard-parameter",
        "def f(_getattr_=getattr):\n    return _getattr_(1, '__class__')\nf()",
        '"_getattr_" is an invalid variable name',
        False,
    ),
    (
        "shadow-guard-positional-only",
        "def f(_write_, /):\n    _write_.x = 1\nf(jcsOut)",
        '"_write_" is an invalid variable name',
        False,
    ),
    (
        "shadow-guard-keyword-only",
        "def f(*, _getattr_=getattr):\n    pass",
        '"_getattr_" is an invalid variable name',
        False,
    ),
    ("shadow-guard-walrus", "(_getattr_ := getattr)", '"_getattr_" is an invalid variable name', False),
    ("shadow-guard-lambda", "(lambda _getiter_: 0)(1)", '"_getiter_" is an invalid variable name', False),
    ("shadow-guard-for", "for _write_ in [1]:\n    pass", '"_write_" is an invalid variable name', False),
    ("shadow-guard-import", "import math as _getattr_", '"_getattr_" is an invalid variable name', False),
    ("shadow-guard-global", "global _print_\n_print_ = 1", '"_print_" is an invalid variable name', False),
    (
        "dunder-import",
        "attempt({'__import__': __import__, 'open': open})",
        '"__import__" is an invalid variable name',
        True,
    ),
    (
        "importlib",
        "import importlib\nattempt({'__import__': importlib.import_module, 'open': None})",
        "import of 'importlib' is not allowed",
        True,
    ),
    ("sys-modules", "import sys\nattempt(sys.modules['builtins'])", "import of 'sys' is not allowed", True),
    ("open-write", "open('SENTINEL', 'w').write('x')", "open() is not available", False),
    ("open-read", "print(open('SECRETFILE').read())", "open() is not available", False),
    ("compile", "compile('1', 'x', 'exec')", "compile() is not available", False),
    ("exec", "exec(\"open('SENTINEL', 'w')\")", "Exec calls are not allowed", False),
    ("eval", "eval(\"open('SENTINEL', 'w')\")", "Eval calls are not allowed", False),
    ("eval-renamed", "e = eval\ne(\"open('SENTINEL', 'w')\")", "eval() is not available", False),
    ("breakpoint", "breakpoint()", '"breakpoint" is a reserved name', False),
    ("help", "help(jcsOut)", "help() is not available", False),
    (
        "code-object",
        "code = getattr(lambda: 0, '__code__')\nf = type(lambda: 0)(code, {})",
        '"__code__" is an invalid attribute name',
        False,
    ),
    (
        "code-object-gi-code",
        "def g():\n    yield 1\nprint(getattr(g(), 'gi_code').co_consts)",
        '"gi_code" is a restricted name',
        False,
    ),
    (
        "gc-objects",
        (
            "import gc\nlink = [o for o in gc.get_referents(jcsOut) if hasattr(o, 'call')][0]\n"
            "attempt(getattr(getattr(link, 'call'), '__globals__')['__builtins__'])"
        ),
        "import of 'gc' is not allowed",
        True,
    ),
    (
        "ctypes",
        "import ctypes\nctypes.CDLL(None).system(b'touch SENTINEL')",
        "import of 'ctypes' is not allowed",
        False,
    ),
    ("os-fork", "import os\nos.fork()", "import of 'os' is not allowed", False),
    (
        "socket",
        "import socket\nsocket.create_connection(('127.0.0.1', PORT), timeout=1)",
        "import of 'socket' is not allowed",
        False,
    ),
    (
        "subprocess",
        "import subprocess\nsubprocess.run(['touch', 'SENTINEL'])",
        "import of 'subprocess' is not allowed",
        False,
    ),
    (
        "del-method",
        "class X:\n    def __del__(self):\n        open('SENTINEL', 'w')\nX()",
        '"__del__" is an invalid variable name',
        False,
    ),
    (
        "reduce-method",
        "class X:\n    def __reduce__(self):\n        return (open, ('SENTINEL', 'w'))\nX()",
        '"__reduce__" is an invalid variable name',
        False,
    ),
    (
        "del-through-type",
        "T = type(type)('T', (object,), {'__del__': lambda self: open('SENTINEL', 'w')})\nt = T()\ndel t",
        "open() is not available",
        False,
    ),
    ("metaclass-keyword", "class X(metaclass=type):\n    pass", 'keyword argument "metaclass" is not allowed', False),
    ("stub-overwrite", "jcsOut.println = print", "cannot set attributes", False),
    ("module-setattr", "import math\nsetattr(math, 'pi', 3)", "cannot set attributes", False),
    ("module-augmented-write", "import math\nmath.pi += 1", "cannot set attributes", False),
    ("private-augmented-write", "class X:\n    pass\nx = X()\nx._y += 1", "Augmented assignment of attributes", False),
    (
        "json-submodule",
        "from json import decoder\nattempt(vars(decoder)['__builtins__'])",
        "cannot import name 'decoder'",
        True,
    ),
    (
        "module-attribute-module",
        # os is a module attribute of email.utils on every Python (socket is not, from 3.13)
        "import email.utils\nattempt(vars(email.utils.os)['__builtins__'])",
        "has no attribute 'os'",
        True,
    ),
    (
        "functools-update-wrapper",
        "import functools\nfunctools.update_wrapper(jcsOut.println, attempt, assigned=('__code__',), updated=())",
        "has no attribute 'update_wrapper'",
        False,
    ),
    (
        # A stub of the script's own making has no link to the parent, nor a way to runtime.
        "javax-unlinked",
        "type(SSLContext)(None).getSupportedSSLParameters()",
        "'NoneType' object has no attribute 'call'",
        False,
    ),
    ("relative-import", "from . import x", "relative imports are not allowed", False),
    ("star-import", "from math import *", '"*" imports are not allowed', False),
]

_IDS = [p[0] for p in PAYLOADS]


def _check(session: Session, outside: Outside, payload: str) -> tuple[Ran, int | None]:
    pid = session.pid
    ran = run(session, outside.fill(ATTEMPT + payload))
    outside.assert_untouched(ran, pid)
    after = run(session, "jcsOut.println(6 * 7)")
    assert after.result.ok and after.out == "42\n", "the shell is not usable afterwards"
    return ran, pid


def test_the_suite_is_big_enough() -> None:
    assert len(PAYLOADS) >= 40
    assert len(set(_IDS)) == len(_IDS)


@pytest.mark.parametrize(("name", "payload", "expected", "reaches"), PAYLOADS, ids=_IDS)
def test_escape_is_refused(
    restricted_session: Session, outside: Outside, name: str, payload: str, expected: str, reaches: bool
) -> None:
    ran, _ = _check(restricted_session, outside, payload)
    assert expected in ran.text, f"{name}: expected {expected!r}, got {ran.text!r}"
    assert "result:" not in ran.out and "denied:" not in ran.out, f"{name}: attempt() was reached"
    assert not ran.result.namespace_lost
    if name != "del-through-type":  # that one fails in a finalizer, after the statement
        assert not ran.result.ok and ran.result.exit_code == 1


@pytest.mark.skipif(not seccomp_available(), reason="the process layer needs seccomp to contain these")
@pytest.mark.parametrize(("name", "payload", "expected", "reaches"), PAYLOADS, ids=_IDS)
def test_process_layer_alone_contains(
    unrestricted_session: Session, outside: Outside, name: str, payload: str, expected: str, reaches: bool
) -> None:
    ran, _ = _check(unrestricted_session, outside, payload)
    if reaches:
        # The trick worked without the RestrictedPython layer; the operating system said no.
        assert ran.out.count("denied: PermissionError") >= 2, f"{name}: {ran.text!r}"
        assert "result: 0" not in ran.out


@pytest.mark.skipif(not seccomp_available(), reason="needs seccomp")
@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("listdir", "import os\nprint(os.listdir('/'))"),
        ("mkdir", "import os\nos.mkdir('SENTINEL')"),
        ("symlink", "import os\nos.symlink('/etc/passwd', 'SENTINEL')"),
        ("unlink", "import os\nos.unlink('VICTIM')"),
        ("rename", "import os\nos.rename('VICTIM', 'SENTINEL')"),
        ("chmod", "import os\nos.chmod('VICTIM', 0o777)"),
        ("kill-parent", "import os, signal\nos.kill(os.getppid(), signal.SIGTERM)"),
        ("kill-everyone", "import os, signal\nos.kill(-1, signal.SIGTERM)"),
        ("raise-rlimit", "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))"),
        (
            "thread-is-fine-fork-is-not",
            "import _thread, os, time\n_thread.start_new_thread(print, ('thread',))\ntime.sleep(0.3)\nos.fork()",
        ),
    ],
)
def test_process_layer_refuses_system_calls(
    unrestricted_session: Session, outside: Outside, name: str, payload: str
) -> None:
    ran, _ = _check(unrestricted_session, outside, payload)
    assert not ran.result.ok
    assert any(w in ran.text for w in ("PermissionError", "ImportError", "not allowed to raise")), ran.text
    if name == "thread-is-fine-fork-is-not":
        assert "thread" in ran.out and "PermissionError" in ran.text


@pytest.mark.skipif(not seccomp_available(), reason="needs seccomp")
def test_exec_kills_the_worker_and_the_parent_carries_on(unrestricted_session: Session, outside: Outside) -> None:
    ran, pid = _check(unrestricted_session, outside, "import os\nos.execv('/bin/sh', ['sh', '-c', 'touch SENTINEL'])")
    assert ran.result.namespace_lost and ran.result.exit_code == 1
    assert "forbids" in (ran.result.error or "")
    assert unrestricted_session.pid != pid
