"""The registry: round trips, bad input, concurrency, crash safety, export/import identity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jcsh.runtime.errors import NotFound, UsageError
from jcsh.runtime.registry import MAX_PATH, MAX_VALUE, open_registry, validate_path
from tests.support.cli import jcsh

ROOT = str(Path(__file__).resolve().parent.parent)


def test_set_get_ls_rm_round_trip(tmp_path: Path) -> None:
    assert jcsh(tmp_path, "registry", "set", "/configuration/mail/Server", "smtp.example.test").code == 0
    got = jcsh(tmp_path, "registry", "get", "/configuration/mail/Server")
    assert (got.code, got.out) == (0, "smtp.example.test\n")
    assert jcsh(tmp_path, "registry", "set", "/configuration/mail/Port", "587").code == 0
    ls = jcsh(tmp_path, "registry", "ls", "/configuration/mail")
    assert ls.out.splitlines() == ["Port = 587", "Server = smtp.example.test"]
    tree = jcsh(tmp_path, "registry", "ls", "/configuration", "-r").out.splitlines()
    assert tree == ["/configuration", "  mail", "    Port = 587", "    Server = smtp.example.test"]
    assert jcsh(tmp_path, "registry", "rm", "/configuration/mail/Port").code == 0
    gone = jcsh(tmp_path, "registry", "get", "/configuration/mail/Port")
    assert gone.code == 1 and "no registry entry at /configuration/mail/Port" in gone.err


def test_paths_are_case_sensitive(tmp_path: Path) -> None:
    jcsh(tmp_path, "registry", "set", "/configuration/mail/Server", "a")
    jcsh(tmp_path, "registry", "set", "/configuration/mail/server", "b")
    assert jcsh(tmp_path, "registry", "get", "/configuration/mail/Server").out == "a\n"
    assert jcsh(tmp_path, "registry", "get", "/configuration/mail/server").out == "b\n"


def test_entry_with_children_needs_recursive_rm(tmp_path: Path) -> None:
    jcsh(tmp_path, "registry", "set", "/a/b/c", "1")
    refused = jcsh(tmp_path, "registry", "rm", "/a")
    assert refused.code == 2 and "use -r" in refused.err
    assert jcsh(tmp_path, "registry", "get", "/a/b/c").out == "1\n"
    removed = jcsh(tmp_path, "--json", "registry", "rm", "/a", "-r")
    assert removed.code == 0 and removed.json == {"path": "/a", "removed": 3}
    assert jcsh(tmp_path, "registry", "ls").out == ""


def test_get_of_entry_without_value_says_so(tmp_path: Path) -> None:
    jcsh(tmp_path, "registry", "set", "/a/b", "1")
    ran = jcsh(tmp_path, "registry", "get", "/a")
    assert ran.code == 1 and "has no value" in ran.err


def test_unicode_values_and_names(tmp_path: Path) -> None:
    path, value = "/configuration/mail/Grüße/名前", "Ünïcødé ✉ \U0001f4e7\nsecond line\ttab"
    assert jcsh(tmp_path, "registry", "set", path, value).code == 0
    assert jcsh(tmp_path, "--json", "registry", "get", path).json == {"path": path, "value": value}


def test_json_output_of_ls(tmp_path: Path) -> None:
    jcsh(tmp_path, "registry", "set", "/a/b", "1")
    jcsh(tmp_path, "registry", "set", "/a/c/d", "2")
    doc = jcsh(tmp_path, "--json", "registry", "ls", "/a").json
    assert doc == {
        "path": "/a",
        "children": [
            {"name": "b", "path": "/a/b", "value": "1", "has_children": False},
            {"name": "c", "path": "/a/c", "value": None, "has_children": True},
        ],
    }


BAD_PATHS = [
    ("", "must be absolute"),
    ("relative/path", "must be absolute"),
    ("/a//b", "empty segment"),
    ("/a/b/", "empty segment"),
    ("/a/./b", "'.' segment"),
    ("/a/../b", "'..' segment"),
    ("/a\x00b", "control character"),
    ("/a\nb", "control character"),
    ("/a\tb", "control character"),
    ("/a\x7fb", "control character"),
    ("/" + "x" * MAX_PATH, "the limit is 1024"),
    ("/", "root"),
]


@pytest.mark.parametrize(("path", "why"), BAD_PATHS)
def test_bad_paths_exit_2_and_change_nothing(tmp_path: Path, path: str, why: str) -> None:
    jcsh(tmp_path, "registry", "set", "/keep/me", "v")
    before = jcsh(tmp_path, "registry", "export").out
    for args in (("set", path, "v"), ("get", path), ("rm", path, "-r")):
        ran = jcsh(tmp_path, "registry", *args)
        assert ran.code == 2, (args, ran)
        assert why in ran.err and len(ran.err.strip().splitlines()) == 1
        assert jcsh(tmp_path, "registry", "export").out == before


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("x" * (MAX_VALUE + 1), "the limit is 65536"),
        ("é" * (MAX_VALUE // 2 + 1), "the limit is 65536"),
        ("a\x00b", "control character '\\x00'"),
        ("red \x1b[31m", "control character '\\x1b'"),
        ("\x9b", "control character"),
    ],
)
def test_bad_values_exit_2_and_change_nothing(tmp_path: Path, value: str, why: str) -> None:
    jcsh(tmp_path, "registry", "set", "/keep/me", "v")
    ran = jcsh(tmp_path, "--json", "registry", "set", "/keep/me", value)
    assert ran.code == 2 and why in ran.json["error"]["message"]
    assert jcsh(tmp_path, "registry", "get", "/keep/me").out == "v\n"


def test_largest_value_is_accepted(tmp_path: Path) -> None:
    assert jcsh(tmp_path, "registry", "set", "/big", "x" * MAX_VALUE).code == 0


def test_export_import_export_is_identical_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for i in range(50):
        jcsh(a, "registry", "set", f"/t/n{i % 7}/k{i}", f"v{i} ✓")
    first = jcsh(a, "registry", "export").out
    (tmp_path / "doc.json").write_text(first, encoding="utf-8")
    assert jcsh(b, "registry", "import", str(tmp_path / "doc.json")).code == 0
    assert jcsh(b, "registry", "export").out == first
    sub = jcsh(a, "registry", "export", "/t/n3").out
    assert json.loads(sub)["path"] == "/t/n3"


def test_ten_thousand_entries_round_trip(tmp_path: Path) -> None:
    reg = open_registry(tmp_path)
    with reg.transaction():
        for i in range(10_000):
            reg.set(f"/bulk/g{i % 100}/e{i}", str(i))
    doc = reg.export("/bulk")
    (tmp_path / "other").mkdir()
    other = open_registry(tmp_path / "other")
    assert other.import_(doc) == 10_101  # /bulk, 100 groups, 10,000 entries
    assert other.export_json("/bulk") == reg.export_json("/bulk")
    assert len(other.walk("/bulk")) == 10_101


def test_import_merges_and_replace_replaces(tmp_path: Path) -> None:
    reg = open_registry(tmp_path)
    reg.set("/s/keep", "old")
    reg.set("/s/change", "old")
    doc = {
        "path": "/s",
        "value": None,
        "children": {"change": {"value": "new", "children": {}}, "add": {"value": "x", "children": {}}},
    }
    reg.import_(doc)
    assert [(p, v) for p, v in reg.walk("/s")] == [
        ("/s", None),
        ("/s/add", "x"),
        ("/s/change", "new"),
        ("/s/keep", "old"),
    ]
    reg.import_(doc, replace=True)
    assert [p for p, _ in reg.walk("/s")] == ["/s", "/s/add", "/s/change"]


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ("[]", "must be a JSON object"),
        ('{"path": "rel", "children": {}}', "must be absolute"),
        ('{"path": "/a", "children": {"b": {"value": 5, "children": {}}}}', "must be a string"),
        ('{"path": "/a", "children": {"x/y": {"value": "1", "children": {}}}}', "contains '/'"),
        ('{"path": "/a", "children": {"..": {"value": "1", "children": {}}}}', "'..' segment"),
        ('{"path": "/a", "children": {"ok": {"value": "1"}, "bad": {"value": "a\\u0000"}}}', "control character"),
        ('{"path": "/a", "children": [1]}', "must be an object"),
        ("{not json", "not valid JSON: line 1"),
    ],
)
def test_bad_import_is_all_or_nothing(tmp_path: Path, document: str, why: str) -> None:
    jcsh(tmp_path, "registry", "set", "/a/keep", "v")
    before = jcsh(tmp_path, "registry", "export").out
    (tmp_path / "doc.json").write_text(document, encoding="utf-8")
    ran = jcsh(tmp_path, "registry", "import", str(tmp_path / "doc.json"))
    assert ran.code == 2 and why in ran.err
    assert jcsh(tmp_path, "registry", "export").out == before


def test_import_stores_each_parent_and_leaves_the_collector_as_it_was(tmp_path: Path) -> None:
    import gc
    import sqlite3

    from jcsh.runtime.home import DB_NAME

    leaf = {"value": "v", "children": {}}
    doc = {
        "path": "/p/q",
        "value": "r",
        "children": {"a": {"value": None, "children": {"b": leaf, "c": leaf}}, "d": leaf},
    }
    (tmp_path / "doc.json").write_text(json.dumps(doc), encoding="utf-8")
    (tmp_path / "bad.json").write_text('{"path": "/p", "children": {', encoding="utf-8")
    (tmp_path / "root.json").write_text(json.dumps({"path": "/", "value": None, "children": {"t": leaf}}), "utf-8")
    assert jcsh(tmp_path, "registry", "import", str(tmp_path / "root.json")).code == 0
    assert gc.isenabled()
    assert jcsh(tmp_path, "registry", "import", str(tmp_path / "doc.json")).code == 0
    assert gc.isenabled()
    assert jcsh(tmp_path, "registry", "import", str(tmp_path / "bad.json")).code == 2
    assert gc.isenabled()
    gc.disable()
    try:  # a caller's choice stands too
        assert jcsh(tmp_path, "registry", "import", str(tmp_path / "doc.json")).code == 0
        assert not gc.isenabled()
    finally:
        gc.enable()
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        rows = conn.execute("SELECT path, parent FROM entry ORDER BY path").fetchall()
    assert rows == [
        ("/p", "/"),
        ("/p/q", "/p"),
        ("/p/q/a", "/p/q"),
        ("/p/q/a/b", "/p/q/a"),
        ("/p/q/a/c", "/p/q/a"),
        ("/p/q/d", "/p/q"),
        ("/t", "/"),
    ]
    assert jcsh(tmp_path, "registry", "check").code == 0


def test_import_of_missing_file_is_usage_error(tmp_path: Path) -> None:
    ran = jcsh(tmp_path, "--json", "registry", "import", str(tmp_path / "nope.json"))
    assert ran.code == 2 and "cannot read" in ran.json["error"]["message"]


def test_home_folder_is_private(tmp_path: Path) -> None:
    home = tmp_path / "new-home"
    jcsh(home, "registry", "set", "/a", "1")
    assert home.stat().st_mode & 0o777 == 0o700
    assert (home / "registry.sqlite3").stat().st_mode & 0o077 == 0


def test_home_from_environment(tmp_path: Path) -> None:
    env = {**os.environ, "JCSH_HOME": str(tmp_path / "envhome"), "PYTHONPATH": ROOT}
    subprocess.run([sys.executable, "-m", "jcsh", "registry", "set", "/x", "1"], env=env, check=True, cwd=ROOT)
    assert (tmp_path / "envhome" / "registry.sqlite3").exists()


_WRITER = """
import sys
from pathlib import Path
from jcsh.runtime.registry import open_registry
home, tag, n, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
while not go.exists():
    pass
reg = open_registry(home)
for i in range(n):
    reg.set(f"/c/{tag}/e{i}", str(i))
"""


def _writers(home: Path, tags: list[str], n: int) -> None:
    go = home.parent / (home.name + ".go")
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(home), t, str(n), str(go)], cwd=ROOT) for t in tags]
    time.sleep(0.3)  # let every interpreter start, so they really open at the same moment
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0] * len(tags)


@pytest.mark.timeout(120)
def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    open_registry(home).close()
    _writers(home, ["p1", "p2"], 500)
    reg = open_registry(home)
    assert len(reg.children("/c/p1")) == 500 and len(reg.children("/c/p2")) == 500


@pytest.mark.timeout(120)
def test_processes_opening_a_brand_new_home_at_once(tmp_path: Path) -> None:
    for attempt in range(3):
        home = tmp_path / f"fresh{attempt}"
        home.mkdir()
        _writers(home, ["a", "b", "c", "d"], 5)
        assert len(open_registry(home).walk("/c")) == 1 + 4 + 20


_IMPORTER = """
import json, sys
from pathlib import Path
from jcsh.runtime.registry import open_registry
reg = open_registry(Path(sys.argv[1]))
doc = json.loads(Path(sys.argv[2]).read_text())
print("importing", flush=True)
reg.import_(doc)
"""


@pytest.mark.timeout(120)
def test_sigkill_during_import_leaves_registry_as_before(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    reg = open_registry(home)
    reg.set("/before/x", "1")
    before = reg.export_json()
    children = {f"e{i}": {"value": "v" * 50, "children": {}} for i in range(300_000)}
    doc = tmp_path / "big.json"
    doc.write_text(json.dumps({"path": "/big", "value": None, "children": children}))
    proc = subprocess.Popen(
        [sys.executable, "-c", _IMPORTER, str(home), str(doc)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "importing\n"
    time.sleep(0.3)
    assert proc.poll() is None, "the import finished before it could be interrupted; make the document bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert open_registry(home).export_json() == before


segment = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/"), min_size=1, max_size=12
).filter(lambda s: s not in (".", ".."))


@given(st.lists(segment, min_size=1, max_size=6))
def test_valid_paths_are_accepted(segments: list[str]) -> None:
    path = "/" + "/".join(segments)
    if len(path) <= MAX_PATH:
        assert validate_path(path) == path


@given(st.text(max_size=40))
def test_path_validation_accepts_exactly_the_rule(path: str) -> None:
    ok = (
        path.startswith("/")
        and path != "/"
        and all(s not in ("", ".", "..") for s in path[1:].split("/"))
        and not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in path)
        and not any(0xD800 <= ord(c) <= 0xDFFF for c in path)
    )
    try:
        validate_path(path)
    except UsageError:
        assert not ok
    else:
        assert ok


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.lists(segment, min_size=1, max_size=3).map(lambda s: "/r/" + "/".join(s)),
        st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t\n\r"), max_size=20),
        max_size=15,
    )
)
def test_export_import_round_trip_property(tmp_path_factory: pytest.TempPathFactory, entries: dict) -> None:
    a = open_registry(tmp_path_factory.mktemp("a"))
    for path, value in entries.items():
        a.set(path, value)
    if not entries:
        return
    text = a.export_json("/r")
    b = open_registry(tmp_path_factory.mktemp("b"))
    b.import_(json.loads(text))
    assert b.export_json("/r") == text
    for path, value in entries.items():
        assert b.value(path) == value


def test_api_errors(tmp_path: Path) -> None:
    reg = open_registry(tmp_path)
    with pytest.raises(NotFound):
        reg.get("/missing")
    with pytest.raises(NotFound):
        reg.children("/missing")
    with pytest.raises(UsageError):
        reg.set("/a", 5)
    with pytest.raises(ZeroDivisionError):
        with reg.transaction():
            reg.set("/t/x", "1")
            raise ZeroDivisionError
    assert reg.value("/t/x") is None
