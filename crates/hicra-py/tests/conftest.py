"""Shared fixtures: the workspace paths and the Rust binaries the parity tests compare with."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest

WORKSPACE = Path(__file__).resolve().parents[3]


def _target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", WORKSPACE / "target"))


@functools.cache
def _cargo_binary(env_var: str, relative: str, build_args: tuple) -> Path:
    """A Rust binary: `$env_var` if set, else built with cargo once per test run (a no-op when
    up to date)."""
    if os.environ.get(env_var):
        return Path(os.environ[env_var])
    subprocess.run(["cargo", "build", "-q", *build_args], cwd=WORKSPACE, check=True)
    path = _target_dir() / "debug" / relative
    assert path.exists(), f"cargo built no {path}"
    return path


@pytest.fixture
def reference_bin() -> Path:
    """The Rust reference runner for apply_hicra (examples/apply_hicra_reference.rs)."""
    return _cargo_binary(
        "HICRA_REFERENCE_BIN",
        "examples/apply_hicra_reference",
        ("-p", "hicra-py", "--example", "apply_hicra_reference"),
    )


@pytest.fixture
def hicra_bin() -> Path:
    """The `hicra` command-line binary."""
    return _cargo_binary("HICRA_BIN", "hicra", ("-p", "hicra-cli"))
