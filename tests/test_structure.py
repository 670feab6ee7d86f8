"""The shape of the code: stages import downward without circles, and a variant loads only its maker."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Repository folder -> the package it installs as (pyproject.toml's package-dir).
PACKAGES = {"petseg": "petseg", "train": "petseg.train", "export": "petseg.export",
            "benchmark": "petseg.benchmark"}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).glob("*.py"):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Every petseg module ``module`` imports anywhere in its file (lazy imports in functions too)."""
    package = module if path.stem == "__init__" else module.rsplit(".", 1)[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets.update([base, *(f"{base}.{alias.name}" for alias in node.names)])
    return {t for t in targets if t in known and t != module}


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                circles.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circle():
    modules = _modules()
    edges = {m: _imports(m, p, set(modules)) for m, p in modules.items()}
    assert _circles(edges) == []


def _export_modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(m for m in sys.modules if m.startswith('petseg.export')))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_int8_loads_only_its_maker():
    """petseg-export --quantize int8 parses, picks and builds through the converter's makers alone."""
    loaded = _export_modules_after("from petseg.export import cli, pipeline, variants\n"
                                   "variants.pick('int8')")
    assert "petseg.export.converter" in loaded
    assert not loaded & {"petseg.export.aeq_variants", "petseg.export.aeq", "petseg.export.onnx_export"}
    other = _export_modules_after("from petseg.export import variants\nvariants.pick('int8', 'aeq')")
    assert "petseg.export.aeq_variants" in other


def test_flag_defaults_are_the_settings_defaults():
    from petseg.export.cli import build_parser
    from petseg.export.settings import Budget, Build, Sampling

    args = build_parser().parse_args([])
    assert (args.calibration_samples, args.verify_images, args.holdout_images, args.seed) == (
        Sampling().calibration_samples, Sampling().verify_images, Sampling().holdout_images, Sampling().seed)
    assert (args.decoder, args.bias_correction) == (Build().decoder, Build().bias_correction)
    assert args.max_drop == Budget().max_drop
    assert args.min_agreement / 100 == pytest.approx(Budget().min_agreement)
