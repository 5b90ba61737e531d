"""The packages form layers that import one way only: ``jobs/`` -> ``pipelines/`` -> ``genprop/``.

``genprop/`` is the library (no Ray), ``pipelines/`` runs it distributed on Ray, ``jobs/`` holds the
entrypoints (and the ``genprop`` command) that wire both. An import against that direction would make the
library pull in Ray or a job's argument handling, so every absolute import is checked, those inside
functions included (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Top-level modules each package must never import.
FORBIDDEN = {
    "genprop": {"pipelines", "jobs", "ray"},
    "pipelines": {"jobs"},
    "jobs": set(),
}


def _imports(path: str) -> list[tuple[int, str]]:
    """Every absolute import in the file at ``path``: ``(line, module)``, wherever in the file it sits."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _sources(package: str) -> list[str]:
    paths = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, package)):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        paths += [os.path.join(dirpath, name) for name in filenames if name.endswith(".py")]
    return sorted(paths)


def upward_imports() -> list[str]:
    """``file:line: package imports module`` for each import against the layers."""
    bad = []
    for package, forbidden in FORBIDDEN.items():
        for path in _sources(package):
            for line, module in _imports(path):
                if module.split(".")[0] in forbidden:
                    bad.append(f"{os.path.relpath(path, ROOT)}:{line}: {package} imports {module}")
    return bad


def test_every_package_has_sources():
    for package in FORBIDDEN:
        assert _sources(package), f"{package}/: no Python files found under {ROOT}"


def test_no_package_imports_a_layer_above_it():
    bad = upward_imports()
    assert not bad, "imports against jobs/ -> pipelines/ -> genprop/:\n" + "\n".join(bad)


def test_the_check_sees_imports_inside_functions(tmp_path):
    path = tmp_path / "lazy.py"
    path.write_text("def f():\n    import ray.data\n    from jobs.common import x\n")
    assert _imports(str(path)) == [(2, "ray.data"), (3, "jobs.common")]
