"""The metrics package is pure domain code: numpy, scipy, the standard library and the registry's
own pure modules only (no pandas, SQLAlchemy, torch, sklearn …); its metric registry is a
:class:`registry.plugins.PluginRegistry` (standard library only)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import registry.domain.metrics as metrics

ALLOWED = {"numpy", "scipy", "__future__"} | set(sys.stdlib_module_names)
ALLOWED_REGISTRY = ("registry.domain", "registry.errors", "registry.plugins")


def test_metrics_import_only_numpy_scipy_and_stdlib():
    files = sorted(Path(metrics.__file__).parent.glob("*.py"))
    assert len(files) >= 10
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                ok = name.split(".")[0] in ALLOWED or name.startswith(ALLOWED_REGISTRY)
                assert ok, f"{f.name} imports {name}"


def test_importing_metrics_loads_no_heavy_library():
    code = ("import sys, registry.domain.metrics; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'pandas', 'pyarrow', 'sqlalchemy', 'torch', 'sklearn', 'prefect', 'transformers'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
