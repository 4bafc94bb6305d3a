"""The typed surface stays honest: stubs match the compiled modules, the package type-checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT)


def test_stubs_match_the_extensions() -> None:
    allow = ROOT / "tests" / "stubtest-allowlist.txt"
    modules = ["threedpai._native", "threedpai._align", "threedpai._align_channels"]
    # Unused entries are fine: whether Cython adds its doctest registry depends on its version.
    result = run("mypy.stubtest", *modules, "--allowlist", str(allow), "--ignore-unused-allowlist")
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_type_checks() -> None:
    result = run("mypy", "python/threedpai")
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint() -> None:
    result = run("ruff", "check", "python", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr
