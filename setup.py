"""Cython kernels; the Rust extension is declared in pyproject.toml (setuptools-rust)."""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

# Bounds checks are off for speed; THREEDPAI_CYTHON_CHECKS=1 turns them on for a checked test run.
checks = os.environ.get("THREEDPAI_CYTHON_CHECKS") == "1"

extensions = [
    Extension("threedpai._align", ["python/threedpai/_align.pyx"], extra_compile_args=["-O3"]),
    Extension("threedpai._align_channels", ["python/threedpai/_align_channels.pyx"], extra_compile_args=["-O3"]),
]

setup(
    ext_modules=cythonize(
        extensions,
        build_dir="build/cython",
        compiler_directives={
            "language_level": "3",
            "boundscheck": checks,
            "wraparound": checks,
            "initializedcheck": checks,
            "cdivision": True,
        },
    )
)
