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


# -- run_program: whole programs (a solution and its tests) with whitelisted imports ----------

SOLUTION = """from typing import List
import collections, hashlib, math

class Box:
    def __init__(self, items):
        self.items = list(items)

def most_common(xs: List[int]) -> int:
    return collections.Counter(xs).most_common(1)[0][0]

for _ in range(2):
    assert most_common([1, 2, 2, 3]) == 2
assert math.isclose(math.sqrt(2) ** 2, 2.0)
assert hashlib.md5(b"abc").hexdigest().startswith("900150")
print(len(Box("ab").items))
"""


def test_program_with_allowed_imports_runs():
    res = sandbox.run_program(SOLUTION)
    assert res.ok, res.error
    assert res.output == "2\n"


def test_program_failing_its_tests_is_not_ok():
    res = sandbox.run_program("def f(x):\n    return x - 1\nassert f(2) == 3, 'wrong'\n")
    assert not res.ok and "AssertionError: wrong" in res.error


@pytest.mark.parametrize("code, why", [
    ("import os\nos.system('true')\n", "import of os"),
    ("import socket\n", "import of socket"),
    ("from subprocess import run\n", "import from subprocess"),
    ("open('x.txt', 'w').write('hi')\n", "'open'"),
    ("eval('1')\n", "'eval'"),
    ("x = ().__class__.__base__.__subclasses__()\n", "the attribute '__"),
    ("import random\nrandom._os.system('true')\n", "'_os'"),
    ("print(__builtins__)\n", "'__builtins__'"),
])
def test_program_source_check_refuses(code, why):
    with pytest.raises(SandboxError, match=why):
        sandbox.check_program(code)
    res = sandbox.run_program(code)
    assert not res.ok and res.error.startswith("refused") and why in res.error


def test_program_runtime_layer_holds_when_the_check_is_bypassed(monkeypatch, tmp_path):
    """With the static check disabled: no real import, no open, no file written, modules are
    namespaces without the modules they imported themselves."""
    monkeypatch.setattr(sandbox, "check_program", lambda code, modules=(): None)
    for mod in ("os", "socket", "subprocess"):
        res = sandbox.run_program(f"import {mod}\n")
        assert not res.ok and "not available in the sandbox" in res.error, mod
    target = tmp_path / "x.txt"
    res = sandbox.run_program(f"open({str(target)!r}, 'w').write('hi')\n")
    assert not res.ok and "NameError" in res.error and not target.exists()
    res = sandbox.run_program("import typing\ntyping.sys.modules['os'].system('true')\n")
    assert not res.ok and "has no attribute 'sys'" in res.error


def test_program_socket_is_refused_even_with_a_listener(monkeypatch):
    monkeypatch.setattr(sandbox, "check_program", lambda code, modules=(): None)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    code = f"s = __import__('socket')\ns.create_connection(('127.0.0.1', {port}), timeout=1)\n"
    res = sandbox.run_program(code)
    srv.close()
    assert not res.ok and "not available in the sandbox" in res.error


def test_program_loop_forever_is_killed():
    res = sandbox.run_program("while True:\n    pass\n", timeout_s=1.0)
    assert not res.ok
    assert "timeout" in res.error or "SIGXCPU" in res.error or "SIGKILL" in res.error


def test_program_exhausting_memory_is_refused():
    res = sandbox.run_program("x = []\nwhile True:\n    x.append(' ' * 10**7)\n", timeout_s=10.0, memory_mb=256)
    assert not res.ok and ("MemoryError" in res.error or "died" in res.error)


def test_program_modules_are_a_parameter():
    res = sandbox.run_program("import re\n", modules=("math",))
    assert not res.ok and "import of re" in res.error
    assert sandbox.run_program("import math\nassert math.gcd(4, 6) == 2\n", modules=("math",)).ok
