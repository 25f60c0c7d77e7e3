"""The streamed export is byte for byte what json.dumps of the whole tree gives, in the order a sort
per path segment gives, whatever characters the names hold (below "/" especially)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jcsh.runtime.registry import open_registry

# Names built from the characters that sort below "/" (where plain string order and per-segment
# order part), a few letters, and text beyond ASCII.
name = st.text(st.sampled_from(" !\"#$%&'()*+,-.0aAbé☃\U0001f600"), min_size=1, max_size=4).filter(
    lambda s: s not in (".", "..")
)


def _reference(rows: dict[str, str | None], path: str) -> str:
    """The document as release 0.1.0 built it: the whole tree in memory, then json.dumps."""
    root: dict[str, Any] = {"value": None, "children": {}}
    nodes = {path: root}
    for p in sorted(rows, key=lambda p: p.split("/")):
        if p == path:
            root["value"] = rows[p]
            continue
        if not p.startswith(path.rstrip("/") + "/"):
            continue
        node: dict[str, Any] = {"value": rows[p], "children": {}}
        parent, _, leaf = p.rpartition("/")
        nodes[parent or "/"]["children"][leaf] = node
        nodes[p] = node
    return json.dumps({"path": path, **root}, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(name, min_size=1, max_size=4), min_size=1, max_size=25), st.data())
def test_streamed_export_equals_json_dumps(tmp_path_factory: pytest.TempPathFactory, paths: list, data: Any) -> None:
    registry = open_registry(tmp_path_factory.mktemp("export"))
    rows: dict[str, str | None] = {}
    for segments in paths:
        path = "/" + "/".join(segments)
        value = data.draw(st.text(max_size=5).filter(str.isprintable))
        registry.set(path, value)
        rows[path] = value
        parent = path.rpartition("/")[0]
        while parent:
            rows.setdefault(parent, None)
            parent = parent.rpartition("/")[0]
    for path in ["/", *sorted(rows)[:3]]:
        assert registry.export_json(path) == _reference(rows, path)
    walked = [p for p, _ in registry.walk("/")]
    assert walked == sorted(rows, key=lambda p: p.split("/"))
    registry.close()


def test_names_that_continue_below_slash_keep_their_subtrees_together(tmp_path: Path) -> None:
    registry = open_registry(tmp_path)
    for path in ["/a/x", "/a-b/y/z", "/a-b-c/q", "/a.b", "/a!", "/a/x y/z", "/a /k"]:
        registry.set(path, path)
    assert [p for p, _ in registry.walk("/")] == [
        "/a",
        "/a/x",
        "/a/x y",
        "/a/x y/z",
        "/a ",
        "/a /k",
        "/a!",
        "/a-b",
        "/a-b/y",
        "/a-b/y/z",
        "/a-b-c",
        "/a-b-c/q",
        "/a.b",
    ]
