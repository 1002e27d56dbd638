"""Running untrusted (model-written) functions: a subprocess with limits and restricted builtins.

A function written by a language model is code we did not write and must not trust. `run_function`
evaluates one function of such code on many inputs in ONE child process, so the cost of starting
Python is paid once per batch, not once per input. Four layers keep it contained:

1. **Source check** (`check_source`, in this process, before anything runs): the code must parse;
   it may not import anything except the provided modules (``math``), use ``global``/``nonlocal``,
   or name any identifier or attribute that starts with an underscore (which closes the classic
   ``().__class__.__bases__[0].__subclasses__()`` escapes and ``__import__``/``__builtins__``).
2. **Restricted builtins** in the child: pure functions only (``abs``, ``min``, ``len``,
   ``sorted``, ...); no ``open``, ``eval``, ``exec``, ``compile``, ``getattr``, ``globals``,
   ``type``, ``print`` or ``input``. ``import math`` is answered with a plain namespace of the
   ``math`` module's public functions; any other import raises ImportError.
3. **Resource limits** set in the child before it starts (``resource.setrlimit``): CPU seconds,
   address space (memory), file size 0 (it cannot write a file) and, on Linux where permitted, a
   fresh empty network namespace. The parent also enforces a wall-clock timeout and kills the
   child's process group when it expires.
4. **Isolation of the interpreter**: ``python -I -S`` (no site-packages, no user paths, no
   environment variables such as PYTHONPATH), an empty environment and a temporary working folder.

Inputs and outputs travel as JSON on the child's stdin and stdout, so only plain data (numbers,
strings, lists, dicts) crosses the boundary. `numeric_values` additionally insists that every
output is a finite number.

`run_program` is the second mode, for a whole program (a generated solution plus its unit tests,
as in HumanEval): it passes when the program runs to its end without an exception. It runs under
the same limits (layers 3 and 4) with a wider but still closed set of builtins (``print``,
``type``, classes, ``next``, ...) and a whitelist of importable modules (`PROGRAM_MODULES`: math,
re, collections, itertools, typing, hashlib, ... by default). The source check of this mode
(`check_program`) refuses any import outside the whitelist, dunder names and attributes
(``__class__``, ``__import__``, ``__globals__``), private attributes (``mod._os``) and the
builtins that reach the interpreter (``eval``, ``exec``, ``open``, ``getattr``, ``globals``...);
an imported module arrives as a namespace of its public attributes without the modules it
imported itself (``typing.sys`` does not exist in the sandbox).

    >>> res = run_function("def f(s):\\n    return s['x'] * 2", "f", [{"x": 1}, {"x": 2}])
    >>> res.ok, res.values
    (True, [2, 4])
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lmlab.errors import LmlabError

__all__ = [
    "PROGRAM_BUILTINS",
    "PROGRAM_MODULES",
    "SAFE_BUILTINS",
    "ProgramResult",
    "SandboxError",
    "SandboxResult",
    "check_program",
    "check_source",
    "numeric_values",
    "run_function",
    "run_program",
]

# Builtins a pure numeric/string function needs; nothing that reaches files, modules or frames.
SAFE_BUILTINS = (
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "frozenset",
    "int", "isinstance", "len", "list", "map", "max", "min", "pow", "range", "reversed", "round",
    "set", "sorted", "str", "sum", "tuple", "zip", "ValueError", "TypeError", "KeyError",
    "IndexError", "ZeroDivisionError", "Exception", "True", "False", "None",
)
PROVIDED_MODULES = ("math",)
MAX_SOURCE_CHARS = 20_000

# run_program: what a self-contained program with its tests needs besides SAFE_BUILTINS.
PROGRAM_BUILTINS = (
    *SAFE_BUILTINS, "print", "type", "object", "super", "property", "staticmethod", "classmethod", "issubclass",
    "callable", "repr", "format", "chr", "ord", "hex", "bin", "oct", "hash", "iter", "next",
    "slice", "complex", "bytes", "bytearray", "hasattr", "ascii", "NotImplemented", "Ellipsis",
    "AssertionError", "AttributeError", "RuntimeError", "StopIteration", "NotImplementedError",
    "ArithmeticError", "OverflowError", "LookupError", "RecursionError",
    "BaseException", "UnicodeError", "NameError",
)
# Modules a program may import: computation only, nothing that reaches files, processes or the net.
PROGRAM_MODULES = (
    "math", "cmath", "re", "string", "collections", "itertools", "functools", "operator", "heapq",
    "bisect", "typing", "fractions", "decimal", "statistics", "random", "hashlib", "copy",
    "dataclasses", "enum", "datetime", "numbers", "array",
)
# Builtins whose names a program may not even mention (they reach frames, code or files).
_FORBIDDEN_CALLS = frozenset({
    "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "globals", "locals", "vars",
    "dir", "breakpoint", "input", "memoryview", "help", "exit", "quit", "__import__",
})


class SandboxError(LmlabError):
    """Untrusted code was refused, failed, or produced an output that is not allowed."""


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed evaluation returned: the values, or why there are none."""

    ok: bool
    values: list[Any] | None
    error: str | None
    seconds: float


def check_source(code: str) -> None:
    """Raise SandboxError (naming the problem and line) if `code` may not run in the sandbox."""
    if not isinstance(code, str) or not code.strip():
        raise SandboxError("empty code")
    if len(code) > MAX_SOURCE_CHARS:
        raise SandboxError(f"code is {len(code)} characters long; the limit is {MAX_SOURCE_CHARS}")
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise SandboxError(f"syntax error at line {e.lineno}: {e.msg}") from None
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.Import):
            bad = [a.name for a in node.names if a.name not in PROVIDED_MODULES]
            if bad:
                raise SandboxError(f"line {line}: import of {', '.join(bad)} is not allowed")
        elif isinstance(node, ast.ImportFrom):
            if node.module not in PROVIDED_MODULES or node.level:
                raise SandboxError(f"line {line}: import from {node.module} is not allowed")
        elif isinstance(node, ast.Global | ast.Nonlocal):
            raise SandboxError(f"line {line}: global/nonlocal are not allowed")
        elif isinstance(node, ast.Name) and node.id.startswith("_"):
            raise SandboxError(f"line {line}: the name {node.id!r} is not allowed")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise SandboxError(f"line {line}: the attribute {node.attr!r} is not allowed")
        elif (isinstance(node, ast.alias) and (node.name.startswith("_")
                                              or (node.asname or "").startswith("_"))) or (isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name.startswith("_")):
            raise SandboxError(f"line {line}: the name {node.name!r} is not allowed")
        elif isinstance(node, ast.arg) and node.arg.startswith("_"):
            raise SandboxError(f"line {line}: the argument {node.arg!r} is not allowed")


def check_program(code: str, modules: Sequence[str] = PROGRAM_MODULES) -> None:
    """Raise SandboxError (naming the problem and line) if the program `code` may not run in
    `run_program`: imports outside `modules`, dunder names or attributes, private attributes,
    ``global``/``nonlocal`` of builtins' names, and the forbidden builtins."""
    if not isinstance(code, str) or not code.strip():
        raise SandboxError("empty code")
    if len(code) > 5 * MAX_SOURCE_CHARS:
        raise SandboxError(f"code is {len(code)} characters long; the limit is {5 * MAX_SOURCE_CHARS}")
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise SandboxError(f"syntax error at line {e.lineno}: {e.msg}") from None
    allowed = set(modules)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.Import):
            bad = [a.name for a in node.names if a.name not in allowed]
            if bad:
                raise SandboxError(f"line {line}: import of {', '.join(bad)} is not allowed")
        elif isinstance(node, ast.ImportFrom):
            if node.module not in allowed or node.level:
                raise SandboxError(f"line {line}: import from {node.module} is not allowed")
            if any(a.name == "*" or a.name.startswith("_") for a in node.names):
                raise SandboxError(f"line {line}: import of private names or * is not allowed")
        elif isinstance(node, ast.Name) and (node.id.startswith("__") or node.id in _FORBIDDEN_CALLS):
            raise SandboxError(f"line {line}: the name {node.id!r} is not allowed")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise SandboxError(f"line {line}: the attribute {node.attr!r} is not allowed")
        elif isinstance(node, ast.alias) and (node.asname or "").startswith("__"):
            raise SandboxError(f"line {line}: the name {node.asname!r} is not allowed")


# The child's program. It reads {"code", "entry", "inputs"} from stdin, runs the code with the
# restricted builtins and answers {"ok", "values"} or {"ok": false, "error"} on stdout.
_CHILD = r"""
import json, math, sys
def main():
    req = json.loads(sys.stdin.read())
    out = sys.stdout
    sys.stdin = sys.stdout = sys.stderr = None
    import builtins, types
    ns = types.SimpleNamespace(**{k: getattr(math, k) for k in dir(math) if not k.startswith("_")})
    provided = {"math": ns}
    def restricted_import(name, globals=None, locals=None, fromlist=(), level=0):
        if name in provided and not level:
            return provided[name]
        raise ImportError("module %r is not available in the sandbox" % name)
    safe = {k: getattr(builtins, k) for k in req["builtins"] if hasattr(builtins, k)}
    safe["__import__"] = restricted_import
    g = {"__builtins__": safe, "__name__": "sandboxed", "math": ns}
    try:
        exec(compile(req["code"], "<untrusted>", "exec"), g)
        fn = g.get(req["entry"])
        if not callable(fn):
            raise NameError("the code defines no function %r" % req["entry"])
        values = []
        for i, x in enumerate(req["inputs"]):
            try:
                values.append(fn(x))
            except BaseException as e:
                raise RuntimeError("input %d: %s: %s" % (i, type(e).__name__, e)) from None
        text = json.dumps({"ok": True, "values": values})
    except BaseException as e:
        text = json.dumps({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    out.write(text)
    out.flush()
main()
"""


# The child of run_program. It reads {"code", "modules", "builtins"} from stdin, builds a
# namespace of each allowed module's public, non-module attributes (imported here, before the
# program runs), runs the program with the restricted builtins and an import that answers only
# those namespaces, and answers {"ok", "output"} or {"ok": false, "error", "output"} on stdout.
_PROGRAM_CHILD = r"""
import io, json, sys, types, builtins, importlib
def main():
    req = json.loads(sys.stdin.read())
    out = sys.stdout
    provided = {}
    for name in req["modules"]:
        mod = importlib.import_module(name)
        public = {k: getattr(mod, k) for k in dir(mod)
                  if not k.startswith("_") and not isinstance(getattr(mod, k), types.ModuleType)}
        provided[name] = types.SimpleNamespace(**public)
    def restricted_import(name, globals=None, locals=None, fromlist=(), level=0):
        if name in provided and not level:
            return provided[name]
        raise ImportError("module %r is not available in the sandbox" % name)
    safe = {k: getattr(builtins, k) for k in req["builtins"] if hasattr(builtins, k)}
    safe["__import__"] = restricted_import
    safe["__build_class__"] = builtins.__build_class__
    g = {"__builtins__": safe, "__name__": "sandboxed"}
    captured = io.StringIO()
    sys.stdin, sys.stdout, sys.stderr = None, captured, captured
    try:
        exec(compile(req["code"], "<untrusted>", "exec"), g)
        ans = {"ok": True}
    except BaseException as e:
        ans = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
    ans["output"] = captured.getvalue()[-4000:]
    out.write(json.dumps(ans))
    out.flush()
main()
"""


@dataclass(frozen=True)
class ProgramResult:
    """What a sandboxed program did: whether it ran to its end, why not, what it printed."""

    ok: bool
    error: str | None
    output: str
    seconds: float


def run_program(
    code: str,
    *,
    modules: Sequence[str] = PROGRAM_MODULES,
    timeout_s: float = 10.0,
    memory_mb: int = 512,
) -> ProgramResult:
    """Run the untrusted program `code` in a limited child; ``ok`` when it ends without an
    exception (a failed ``assert`` of its tests is a failure). It may import only `modules`.

    Never raises for a fault of the code: a refused source, an exception, a timeout or a memory
    error come back as ``ok=False`` with the reason. `timeout_s` bounds the child's CPU time and
    (with two seconds of slack for starting Python and importing the modules) its wall time.
    """
    t0 = time.perf_counter()
    try:
        check_program(code, modules)
    except SandboxError as e:
        return ProgramResult(False, f"refused: {e}", "", time.perf_counter() - t0)
    payload = json.dumps({"code": code, "modules": list(modules), "builtins": list(PROGRAM_BUILTINS)})
    ans, why = _run_child(_PROGRAM_CHILD, payload, timeout_s, memory_mb)
    dt = time.perf_counter() - t0
    if ans is None:
        return ProgramResult(False, why, "", dt)
    return ProgramResult(bool(ans.get("ok")), None if ans.get("ok") else str(ans.get("error")),
                         str(ans.get("output", "")), dt)


def _run_child(child: str, payload: str, timeout_s: float, memory_mb: int) -> tuple[dict[str, Any] | None, str]:
    """Run the child program `child` under the limits with `payload` on its stdin: its JSON
    answer, or None and why there is none (timeout, death by a signal, no JSON)."""
    cpu = max(1, math.ceil(timeout_s))
    with tempfile.TemporaryDirectory(prefix="lmlab-sandbox-") as cwd:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", child],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=cwd, env={}, close_fds=True,
            preexec_fn=lambda: _limit_child(cpu, memory_mb * 2**20),
        )
        try:
            out, err = proc.communicate(payload.encode(), timeout=timeout_s + 2.0)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            return None, f"timeout: still running after {timeout_s:g} s"
    if proc.returncode != 0:
        why = _signal_name(proc.returncode)
        tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
        return None, f"child died ({why}){': ' + tail[0] if tail else ''}"
    try:
        return json.loads(out.decode()), ""
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, "child answered something that is not JSON"


def _limit_child(cpu_s: int, memory_bytes: int) -> None:
    """preexec_fn: resource limits, a new process group, and no network where Linux allows it."""
    import resource

    os.setsid()
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    unshare = getattr(os, "unshare", None)
    if unshare is not None:  # an empty network namespace: no interface but a downed loopback
        # where it is not permitted, the source check and the builtins still block sockets
        with contextlib.suppress(OSError):
            unshare(os.CLONE_NEWUSER | os.CLONE_NEWNET)


def run_function(
    code: str,
    entry: str,
    inputs: Sequence[Any],
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 512,
) -> SandboxResult:
    """Run `entry(x)` from the untrusted `code` for every JSON-able `x` of `inputs`, in one child.

    Never raises for a fault of the code: a refused source, an exception, a timeout or a memory
    error come back as ``ok=False`` with the reason. `timeout_s` bounds the child's CPU time and
    (with two seconds of slack for starting Python) its wall time.
    """
    t0 = time.perf_counter()
    try:
        check_source(code)
    except SandboxError as e:
        return SandboxResult(False, None, f"refused: {e}", time.perf_counter() - t0)
    payload = json.dumps({"code": code, "entry": entry, "inputs": list(inputs),
                          "builtins": list(SAFE_BUILTINS)})
    ans, why = _run_child(_CHILD, payload, timeout_s, memory_mb)
    dt = time.perf_counter() - t0
    if ans is None:
        return SandboxResult(False, None, why, dt)
    if not ans.get("ok"):
        return SandboxResult(False, None, str(ans.get("error")), dt)
    return SandboxResult(True, ans["values"], None, dt)


def numeric_values(code: str, entry: str, inputs: Sequence[Any], **limits: Any) -> list[float]:
    """`run_function`, insisting that every output is a finite number (bools count as 0/1).

    Raises SandboxError naming the first bad output or the child's failure.
    """
    res = run_function(code, entry, inputs, **limits)
    if not res.ok:
        raise SandboxError(res.error or "failed")
    assert res.values is not None
    out = []
    for i, v in enumerate(res.values):
        if isinstance(v, bool):
            v = float(v)
        if not isinstance(v, int | float) or not math.isfinite(float(v)):
            raise SandboxError(f"input {i}: returned {v!r}, not a finite number")
        out.append(float(v))
    return out


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _signal_name(rc: int) -> str:
    if rc < 0:
        try:
            return signal.Signals(-rc).name
        except ValueError:
            return f"signal {-rc}"
    return f"exit {rc}"
