"""lmlab.sandbox: untrusted functions run in a limited child; escapes are refused."""

import socket

import pytest

from lmlab import sandbox
from lmlab.sandbox import SandboxError, check_source, numeric_values, run_function


def test_runs_a_pure_function_over_many_inputs_in_one_child():
    code = "import math\ndef f(s):\n    return math.sqrt(s['x']) + len(s['v'])\n"
    res = run_function(code, "f", [{"x": 4.0, "v": [1, 2]}, {"x": 9.0, "v": []}])
    assert res.ok, res.error
    assert res.values == [4.0, 3.0]


@pytest.mark.parametrize("code, why", [
    ("import os\ndef f(s):\n    return 1.0\n", "import of os"),
    ("from subprocess import run\ndef f(s):\n    return 1.0\n", "import from subprocess"),
    ("def f(s):\n    return __import__('os').getpid()\n", "__import__"),
    ("def f(s):\n    return ().__class__.__base__.__subclasses__()\n", "attribute .__"),
    ("def f(s):\n    global x\n    return 1.0\n", "global"),
    ("def f(s:\n", "syntax error"),
])
def test_source_check_refuses(code, why):
    with pytest.raises(SandboxError, match=why):
        check_source(code)
    res = run_function(code, "f", [{}])
    assert not res.ok and res.error.startswith("refused")


def test_open_a_file_is_refused():
    res = run_function("def f(s):\n    return open('/etc/passwd').read()\n", "f", [{}])
    assert not res.ok and "open" in res.error


def test_import_a_module_is_refused():
    res = run_function("import socket\ndef f(s):\n    return 1.0\n", "f", [{}])
    assert not res.ok and "socket" in res.error


def test_loop_forever_is_killed():
    res = run_function("def f(s):\n    while True:\n        pass\n", "f", [{}], timeout_s=1.0)
    assert not res.ok
    assert "timeout" in res.error or "SIGXCPU" in res.error or "SIGKILL" in res.error


def test_exhausting_memory_is_refused():
    code = "def f(s):\n    x = []\n    while True:\n        x.append(' ' * 10**7)\n"
    res = run_function(code, "f", [{}], timeout_s=10.0, memory_mb=256)
    assert not res.ok and ("MemoryError" in res.error or "died" in res.error)


def test_runtime_layer_holds_when_the_source_check_is_bypassed(monkeypatch):
    """Defence in depth: with the static check disabled, the child still has no open,
    no real import, and no socket."""
    monkeypatch.setattr(sandbox, "check_source", lambda code: None)
    res = run_function("def f(s):\n    return open('/etc/hostname').read()\n", "f", [{}])
    assert not res.ok and "NameError" in res.error
    code = ("def f(s):\n    m = __import__('socket')\n"
            "    m.create_connection(('127.0.0.1', 9))\n    return 1.0\n")
    res = run_function(code, "f", [{}])
    assert not res.ok and "not available in the sandbox" in res.error
    code = ("import math\ndef f(s):\n    return str(math)\n")
    res = run_function(code, "f", [{}])
    assert res.ok and "namespace" in res.values[0]  # not the real module


def test_cannot_write_files(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "check_source", lambda code: None)
    target = tmp_path / "x.txt"
    code = f"def f(s):\n    open({str(target)!r}, 'w').write('hi')\n    return 1.0\n"
    res = run_function(code, "f", [{}])
    assert not res.ok and not target.exists()


def test_no_network_even_with_a_listener(monkeypatch):
    """A server listening on loopback in THIS process is not reachable from the child."""
    monkeypatch.setattr(sandbox, "check_source", lambda code: None)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    code = (f"def f(s):\n    m = __import__('socket')\n"
            f"    m.create_connection(('127.0.0.1', {port}), timeout=1)\n    return 1.0\n")
    res = run_function(code, "f", [{}])
    srv.close()
    assert not res.ok


def test_numeric_values_rejects_non_finite_and_non_numbers():
    assert numeric_values("def f(s):\n    return s > 0\n", "f", [1, -1]) == [1.0, 0.0]
    with pytest.raises(SandboxError, match="not a finite number"):
        numeric_values("def f(s):\n    return float('nan')\n", "f", [1])
    with pytest.raises(SandboxError, match="not a finite number"):
        numeric_values("def f(s):\n    return 'a'\n", "f", [1])
    with pytest.raises(SandboxError, match="ZeroDivisionError"):
        numeric_values("def f(s):\n    return 1 / s\n", "f", [1, 0])


def test_missing_entry_point():
    res = run_function("def g(s):\n    return 1.0\n", "f", [1])
    assert not res.ok and "defines no function" in res.error
