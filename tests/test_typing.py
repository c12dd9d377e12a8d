"""Typing: `mypy --strict` is clean, the `_C.pyi` stub matches the built module, the
Tensor operator declarations match what `_tensor_ops.install()` sets, and the
markers type checkers need are installed."""
import ast
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nnfast
from nnfast import _C
from nnfast.tensor import Tensor

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "python" / "nnfast"
PKG = Path(nnfast.__file__).resolve().parent  # the copy under test (installed or NNFAST_EXT_DIR dev tree)


def _stub_path() -> Path:
    # The source tree's stub when running from a checkout, else the installed one.
    return SRC / "_C.pyi" if (SRC / "_C.pyi").exists() else PKG / "_C.pyi"


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy not installed (pip install .[test])")
@pytest.mark.skipif(not SRC.is_dir(), reason="needs the source checkout (python/nnfast, examples)")
def test_mypy_strict_is_clean():
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "python/nnfast", "examples"], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - t0
    assert r.returncode == 0, f"mypy --strict failed ({took:.0f} s):\n{r.stdout[-6000:]}\n{r.stderr[-2000:]}"
    assert "Success: no issues found" in r.stdout


def _runtime_signature(fn):
    """(name, [(param, default-or-None)], return) from a pybind11 docstring's first line."""
    first = fn.__doc__.strip().splitlines()[0]
    m = re.match(r"(\w+)\((.*)\) -> (.+)$", first)
    assert m, f"unexpected pybind11 signature line: {first!r}"
    params, depth, cur = [], 0, ""
    for ch in m.group(2):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            params.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        params.append(cur.strip())
    out = []
    for p in params:
        name = p.split(":", 1)[0].strip()
        default = p.split(" = ", 1)[1] if " = " in p else None
        out.append((name, default))
    return out, m.group(3)


def _stub_functions():
    tree = ast.parse(_stub_path().read_text())
    funcs: dict[str, list[ast.FunctionDef]] = {}
    attrs = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            funcs.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            attrs.add(node.target.id)
        elif isinstance(node, ast.ClassDef):  # exported enums (_C.Act)
            attrs.add(node.name)
    return funcs, attrs


def _stub_params(fn: ast.FunctionDef):
    a = fn.args
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    out = [(p.arg, None if d is None else ast.unparse(d)) for p, d in zip(positional, defaults)]
    out += [(p.arg, None if d is None else ast.unparse(d)) for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    return out


def _norm_default(d):
    if d is None:
        return None
    return {"None": "None", "True": "True", "False": "False"}.get(d, repr(ast.literal_eval(d)))


SANITIZER_ONLY = {"_sanitizer_selftest"}


def test_c_stub_names_every_native_function():
    funcs, attrs = _stub_functions()
    runtime = {n for n in dir(_C) if not n.startswith("__") and callable(getattr(_C, n))
               and not isinstance(getattr(_C, n), type)}
    classes = {n for n in dir(_C) if not n.startswith("__") and isinstance(getattr(_C, n), type)}
    assert classes <= attrs, f"nnfast._C classes missing from _C.pyi: {sorted(classes - attrs)}"
    missing = sorted(runtime - set(funcs))
    extra = sorted(set(funcs) - runtime - SANITIZER_ONLY)
    assert not missing, f"nnfast._C functions missing from _C.pyi (add them): {missing}"
    assert not extra, f"_C.pyi declares functions nnfast._C does not have: {extra}"
    values = {n for n in dir(_C) if not n.startswith("__") and not callable(getattr(_C, n))
              and not inspect.ismodule(getattr(_C, n))}
    assert values <= attrs | {"__version__"}, f"module attributes missing from _C.pyi: {sorted(values - attrs)}"


def test_c_stub_parameters_match_bindings():
    funcs, _ = _stub_functions()
    wrong = []
    for name, defs in sorted(funcs.items()):
        if not hasattr(_C, name):
            continue
        rt, ret = _runtime_signature(getattr(_C, name))
        rt_norm = [(p, _norm_default(d)) for p, d in rt]
        for fn in defs:  # every overload takes the same parameters (types may be narrower)
            st = [(p, _norm_default(d)) for p, d in _stub_params(fn)]
            if [p for p, _ in st] != [p for p, _ in rt_norm]:
                wrong.append(f"{name}: stub parameters {[p for p, _ in st]} != binding {[p for p, _ in rt_norm]}")
                continue
            # An overload may drop a default to require an argument (per_tensor: Literal[True]).
            for (p, sd), (_, rd) in zip(st, rt_norm) if len(defs) > 1 else ():
                if sd is not None and sd != rd:
                    wrong.append(f"{name}({p}): stub default {sd} != binding default {rd}")
        if len(defs) == 1:
            st = [(p, _norm_default(d)) for p, d in _stub_params(defs[0])]
            for (p, sd), (_, rd) in zip(st, rt_norm):
                if sd != rd:
                    wrong.append(f"{name}({p}): stub default {sd} != binding default {rd}")
            stub_ret = ast.unparse(defs[0].returns)
            if (ret == "None") != (stub_ret == "None"):
                wrong.append(f"{name}: stub returns {stub_ret}, binding returns {ret}")
    assert not wrong, "_C.pyi is out of date with csrc/bindings:\n" + "\n".join(wrong)


def _declared_tensor_methods():
    tree = ast.parse((Path(inspect.getfile(Tensor))).read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tensor")
    block = next(n for n in cls.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    out: dict[str, list[ast.FunctionDef]] = {}
    for n in block.body:
        if isinstance(n, ast.FunctionDef):
            out.setdefault(n.name, []).append(n)
        elif isinstance(n, ast.Assign):  # aliases: `add, sub = __add__, __sub__`, `matmul = mm = __matmul__`
            values = n.value.elts if isinstance(n.value, ast.Tuple) else [n.value]
            for target in n.targets:
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                for alias, value in zip(names, values, strict=True):
                    out[alias.id] = out[value.id]
    return out


def test_tensor_declarations_match_installed_methods():
    from nnfast import _tensor_ops

    # Every core operator is declared; the nnfast.ops areas add more (typed as Any via __getattr__).
    declared = _declared_tensor_methods()
    declared.pop("__getattr__", None)
    core = _tensor_ops.methods()
    missing = sorted(n for n in declared if not hasattr(Tensor, n))
    assert not missing, f"declared but not installed: {missing}"
    undeclared = sorted(set(core) - set(declared))
    assert not undeclared, f"core methods not declared in tensor.py: {undeclared}"
    for name, defs in declared.items():
        impl = getattr(Tensor, name)
        if isinstance(impl, property) or impl.__name__ in ("method", "<lambda>"):
            continue  # generated wrappers (binary ops, comparisons) take (self, other)
        params = list(inspect.signature(impl).parameters)
        decl = defs[-1].args
        names = [a.arg for a in decl.args] + ([decl.vararg.arg] if decl.vararg else [])
        assert params[:len(names)] == names or "args" in params, \
            f"Tensor.{name}: declared {names}, installed {params}"


def test_typing_markers_are_installed():
    assert (PKG / "py.typed").is_file(), f"py.typed missing from {PKG}"
    assert (PKG / "_C.pyi").is_file(), f"_C.pyi missing from {PKG}"


def test_public_api_is_exported_for_type_checkers():
    missing = [n for n in nnfast.__all__ if not hasattr(nnfast, n)]
    assert not missing, missing
    for name in ("Tensor", "tensor", "manual_seed", "no_grad", "nn", "optim", "save", "load", "fit", "info"):
        assert name in nnfast.__all__
