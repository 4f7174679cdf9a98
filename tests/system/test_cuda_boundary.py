"""The CUDA backend's boundary: numba is imported in one file only (fastdl/cuda/_compat.py), importing it
changes no other package, and the backend uses public APIs only: no ctypes, no private attribute."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import fastdl

ROOT = Path(fastdl.__file__).parent
ALLOWED = {Path("cuda/_compat.py")}


def numba_imports(path):
    """Line numbers of the imports of numba (or a numba submodule) in one source file."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        if any(name == "numba" or name.startswith("numba.") for name in names):
            lines.append(node.lineno)
    return lines


def test_only_the_compat_module_imports_numba():
    offenders = {str(p.relative_to(ROOT)): numba_imports(p) for p in ROOT.rglob("*.py")
                 if p.relative_to(ROOT) not in ALLOWED and numba_imports(p)}
    assert offenders == {}, f"numba imported outside fastdl/cuda/_compat.py: {offenders}"
    assert numba_imports(ROOT / "cuda" / "_compat.py"), "the compat module should be the one that imports numba"


def test_the_guard_finds_an_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom numba import cuda\nimport numba.core as nc\n")
    assert numba_imports(bad) == [2, 3]


def test_importing_the_cuda_backend_changes_no_other_package():
    """numpy's functions and constants are the same objects before and after the import (numba importing
    numpy's own submodules, such as numpy.random, is not a change)."""
    script = (
        "import json, types, numpy\n"
        "def names():\n"
        "    return {k: id(v) for k, v in vars(numpy).items() if not isinstance(v, types.ModuleType)}\n"
        "before = names()\n"
        "import fastdl.cuda._compat as c\n"
        "print(json.dumps({'same': before == names(), 'numba': c.HAVE_NUMBA}))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["same"]


def private_uses(path):
    """(line, text) of every ctypes import and every private attribute (``x._name``) in one source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "ctypes" for a in node.names):
            found.append((node.lineno, "import ctypes"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ctypes":
            found.append((node.lineno, f"from {node.module} import ..."))
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_cuda_backend_uses_public_apis_only():
    """No ctypes (no driver calls of its own), no underscore attribute of numba or any other object."""
    offenders = {str(p.relative_to(ROOT)): private_uses(p) for p in (ROOT / "cuda").rglob("*.py") if private_uses(p)}
    assert offenders == {}, f"private attributes or ctypes under fastdl/cuda: {offenders}"


def test_the_private_use_guard_finds_them(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import ctypes\nf = kern._codelibrary.get_cufunc()\nok = x.__class__\n")
    assert private_uses(bad) == [(1, "import ctypes"), (2, "kern._codelibrary")]
