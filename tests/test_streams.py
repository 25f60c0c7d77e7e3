"""Closed and endless streams: a closed stdin, stdout or stderr is one line and exit 1 for every command
family; /dev/zero as an import or a script stops at its first byte; limits are named; deep JSON is 2."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import JCSH, Ran, jcsh
from tests.support.faults import clean, fill_home

ROOT = str(Path(__file__).resolve().parent.parent)


def _run(home: Path, *args: str, close: int | None = None, stdin: bytes | None = None, timeout: float = 60) -> Ran:
    """jcsh as a process, with descriptor `close` closed (as `>&-` does)."""
    proc = subprocess.run(
        [*JCSH, "--home", str(home), *args],
        input=stdin,
        stdin=None if stdin is not None else (subprocess.DEVNULL if close != 0 else None),
        stdout=subprocess.PIPE if close != 1 else None,
        stderr=subprocess.PIPE if close != 2 else None,
        preexec_fn=(lambda: os.close(close)) if close is not None else None,
        timeout=timeout,
        cwd=ROOT,
    )
    return Ran(proc.returncode, (proc.stdout or b"").decode(), (proc.stderr or b"").decode())


FAMILIES = [
    ("registry", "ls", "/"),
    ("registry", "export"),
    ("credential", "ls"),
    ("mail", "settings", "--server", "mail.example.test"),
    ("tls", "protocols"),
    ("-c", "print('hello')"),
    ("registry", "check"),
    ("--version",),
]


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("streams") / "home"
    fill_home(home)
    assert jcsh(home, "registry", "set", "/configuration/mail/Transport", "smtp").code == 0  # no warnings
    return home


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args", FAMILIES, ids=lambda a: " ".join(a[:2]))
def test_a_closed_stdout_is_one_line_and_exit_1(filled: Path, args: tuple[str, ...]) -> None:
    ran = _run(filled, *args, close=1)
    clean(ran)
    assert ran.code == 1, ran
    [line] = ran.err.strip().splitlines()
    assert "standard output is closed" in line or "the output was closed" in line, line


@pytest.mark.timeout(60)
def test_a_closed_stdout_for_testmail_backup_and_run(filled: Path, tmp_path: Path) -> None:
    from jcsh.runtime.sink import Sink, SinkConfig

    script = tmp_path / "s.jcs"
    script.write_text("print(registry.get('/u/grüße'))\n")
    with Sink(SinkConfig(port=0)) as sink:
        home = tmp_path / "mail-home"
        for key, value in (("Server", "127.0.0.1"), ("Port", str(sink.port)), ("Transport", "smtp")):
            assert jcsh(home, "registry", "set", f"/configuration/mail/{key}", value).code == 0
        sent = _run(home, "testmail", "--to", "a@example.test", "--from", "b@example.test", close=1)
        assert len(sink.wait_for(1)) == 1  # the mail went; only the report could not be written
    for ran in (sent, _run(filled, "backup", str(tmp_path / "b"), close=1), _run(filled, "run", str(script), close=1)):
        clean(ran)
        assert ran.code == 1, ran
        assert ran.err.strip().splitlines()[-1] in (
            "jcsh: standard output is closed",
            "the output was closed (broken pipe), so the script was stopped",
        ), ran.err


@pytest.mark.timeout(30)
def test_an_attachment_over_its_limit(home: Path, tmp_path: Path) -> None:
    from jcsh.runtime.sink import Sink, SinkConfig

    files = tmp_path / "files"
    files.mkdir()
    big = files / "big.bin"
    with open(big, "wb") as f:
        f.truncate((25 << 20) + 1)  # sparse: no disk, but 25 MiB and a byte to read
    with Sink(SinkConfig(port=0)) as sink:
        for key, value in (("Server", "127.0.0.1"), ("Port", str(sink.port)), ("Transport", "smtp")):
            assert jcsh(home, "registry", "set", f"/configuration/mail/{key}", value).code == 0
        assert jcsh(home, "registry", "set", "/configuration/mail/AccessiblePath", str(files)).code == 0
        ran = jcsh(home, "testmail", "--to", "a@example.test", "--from", "b@example.test", "--attach", str(big))
        assert sink.messages == []  # nothing was sent
    assert ran.code == 2 and f"attachment {big} is larger than 25 MiB, the limit for an attachment" in ran.err


@pytest.mark.parametrize("args", [("registry", "ls", "/"), ("registry", "get", "/nope"), ("-c", "x = 1")])
def test_a_closed_stderr_does_not_crash(filled: Path, args: tuple[str, ...]) -> None:
    ran = _run(filled, *args, close=2)
    assert "Traceback" not in ran.out
    assert ran.code in (0, 1)
    assert (ran.code == 0) == (args[-1] != "/nope")


@pytest.mark.parametrize(
    "args",
    [
        ("registry", "import", "-"),
        ("run", "-"),
        (),
        ("credential", "add", "--protocol", "smtp", "--endpoint", "e", "--virtual-user", "v", "--password-stdin"),
        ("restore", "--force", "-"),
    ],
    ids=lambda a: " ".join(a[:2]) or "jcsh",
)
def test_a_closed_stdin_is_one_line_and_exit_1(filled: Path, args: tuple[str, ...]) -> None:
    before = jcsh(filled, "registry", "export").out
    ran = _run(filled, *args, close=0)
    clean(ran)
    assert ran.code == 1, ran
    assert ran.err.strip().splitlines() == ["jcsh: standard input is closed"]
    assert jcsh(filled, "registry", "export").out == before


def test_commands_that_do_not_read_stdin_do_not_mind_it_closed(filled: Path) -> None:
    ran = _run(filled, "registry", "get", "/u/grüße", close=0)
    assert (ran.code, ran.out) == (0, "☃ 日本語\n")


def test_a_reader_that_goes_away_is_one_line(filled: Path, tmp_path: Path) -> None:
    big = {
        "path": "/big",
        "value": None,
        "children": {f"e{i}": {"value": "v" * 100, "children": {}} for i in range(5000)},
    }
    (tmp_path / "big.json").write_text(json.dumps(big))
    assert jcsh(tmp_path / "h", "registry", "import", str(tmp_path / "big.json")).code == 0
    proc = subprocess.Popen(
        [*JCSH, "--home", str(tmp_path / "h"), "registry", "export"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()  # `| head -c 10`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert err.strip().splitlines() == ["jcsh: standard output was closed by its reader (broken pipe)"]


def test_a_full_disk_under_stdout(filled: Path) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*JCSH, "--home", str(filled), "registry", "ls"], stdout=full, stderr=subprocess.PIPE)
    assert proc.returncode == 1
    assert proc.stderr.decode().strip() == "jcsh: cannot write to standard output: No space left on device"


# -- endless and oversized input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("registry", "import", "/dev/zero"), "/dev/zero is not an import document: byte 0 is 0x00"),
        (("run", "/dev/zero"), "/dev/zero is not a script: byte 0 is 0x00"),
        (("run", "/dev/urandom"), "/dev/urandom is not"),
    ],
)
def test_dev_zero_stops_at_the_first_byte(home: Path, args: tuple[str, ...], why: str) -> None:
    ran = _run(home, *args, timeout=20)
    clean(ran)
    assert ran.code == 2 and why in ran.err, ran


def test_dev_zero_as_stdin_script(home: Path) -> None:
    with open("/dev/zero", "rb") as zero:
        proc = subprocess.run([*JCSH, "--home", str(home)], stdin=zero, capture_output=True, timeout=20)
    assert proc.returncode == 2
    assert b"standard input is not a script: byte 0 is 0x00" in proc.stderr and b"Traceback" not in proc.stderr


def test_an_endless_script_is_refused_at_8_mib(home: Path) -> None:
    yes = subprocess.Popen(["yes", "x = 1"], stdout=subprocess.PIPE)
    try:
        proc = subprocess.run(
            [*JCSH, "--home", str(home), "run", "-"], stdin=yes.stdout, capture_output=True, timeout=60
        )
    finally:
        yes.kill()
        yes.wait()
    assert proc.returncode == 2
    assert proc.stderr.decode().strip() == "jcsh: standard input is larger than 8 MiB, the limit for a script"


def test_html_over_its_limit(home: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(b"<p>" + b"x" * (4 << 20))
    ran = jcsh(home, "testmail", "--to", "a@example.test", "--html", str(page), "--server", "127.0.0.1")
    assert ran.code == 2 and f"--html {page} is larger than 4 MiB, the limit for an HTML body" in ran.err


def test_not_utf8_names_the_first_bad_byte(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "s.jcs"
    script.write_bytes(b"print('ok')\n# caf\xe9\n")
    ran = jcsh(home, "run", str(script))
    assert ran.code == 2 and f"{script} is not UTF-8 text: byte 17 (0xe9) is invalid" in ran.err


@pytest.mark.parametrize("depth", [300, 100_000])
def test_json_nested_deeper_than_256_levels_is_refused(home: Path, tmp_path: Path, depth: int) -> None:
    doc = tmp_path / "deep.json"
    if depth < 1000:  # a registry document of the right shape, too deep
        node: dict = {"value": None, "children": {}}
        root = {"path": "/d", **node}
        for _ in range(depth // 2):
            child: dict = {"value": None, "children": {}}
            node["children"]["x"] = child
            node = child
        doc.write_text(json.dumps(root))
    else:
        doc.write_text("[" * depth)
    before = jcsh(home, "registry", "export").out
    ran = jcsh(home, "registry", "import", str(doc))
    assert ran.code == 2 and "nested deeper than 256 levels" in ran.err, ran
    assert jcsh(home, "registry", "export").out == before


_ADD_V = ("credential", "add", "--protocol", "smtp", "--endpoint", "e", "--virtual-user", "v", "--password-stdin")


def test_a_password_from_dev_zero(home: Path) -> None:
    assert jcsh(home, "credential", "protocol", "add", "smtp").code == 0
    with open("/dev/zero", "rb") as zero:
        proc = subprocess.run(
            [*JCSH, "--home", str(home), *_ADD_V],
            stdin=zero,
            capture_output=True,
            timeout=20,
        )
    assert proc.returncode == 2 and b"is not a password: byte 0 is 0x00" in proc.stderr
