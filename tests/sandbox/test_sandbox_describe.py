"""jcsh.stdlib.describe: what completion shows for the preloaded names, read statically."""

from __future__ import annotations

from jcsh.runtime.sandbox.limits import LAYERS, available_layers
from jcsh.stdlib.describe import describe


def test_describe_lists_every_preloaded_name_with_one_line_docs() -> None:
    d = describe()
    assert set(d) == {
        "jcsOut",
        "jcsErr",
        "registry",
        "credentials",
        "mail",
        "tls",
        "SSLContext",
        "JcshError",
        "ConnectFailed",
        "LimitHit",
        "TempFailure",
        "JobFailed",
        "jcsArgs",
    }
    assert set(d["jcsOut"]) >= {"print", "println", "printf"}
    assert set(d["registry"]) == {"get", "get_many", "set", "delete", "list", "walk", "exists"}
    assert set(d["mail"]) == {"settings", "configure", "send", "test", "session"}
    assert set(d["tls"]) >= {"protocols", "probe"}
    assert {"getDefault", "getSupportedSSLParameters"} <= set(d["SSLContext"])
    assert d["jcsArgs"] == {}
    for members in d.values():
        for name, doc in members.items():
            assert not name.startswith("_") and "\n" not in doc and doc, name


def test_available_layers_are_named_in_order() -> None:
    layers = available_layers()
    assert layers[:2] == ["restrictedpython", "process"]
    assert [x for x in LAYERS if x in layers] == layers
