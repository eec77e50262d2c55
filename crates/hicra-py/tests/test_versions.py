"""The version guard: hicra.trl and hicra.verl refuse a TRL or verl release they were not
written against, with a message naming both versions and the install command.

Each check imports the module in a fresh interpreter whose path starts with a folder holding
only the distribution metadata of the other release (no torch, TRL or verl needed)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hicra import versions


def fake_distribution(root, name: str, version: str):
    info = root / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return root


def import_with(root, module: str, **env):
    path = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        env=dict(os.environ, PYTHONPATH=path, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_supported_versions():
    assert versions.SUPPORTED == {"trl": "1.16", "verl": "0.9.1"}
    assert versions.is_supported("trl", "1.16.0") and versions.is_supported("trl", "1.16.3")
    assert not versions.is_supported("trl", "1.15.2") and not versions.is_supported("trl", "1.160.0")
    assert versions.is_supported("verl", "0.9.1")
    assert not versions.is_supported("verl", "0.9.0") and not versions.is_supported("verl", "0.9.10")


@pytest.mark.parametrize(
    "package, version, module, want",
    [
        ("trl", "1.15.0", "hicra.trl", 'hicra.trl supports TRL 1.16, but TRL 1.15.0 is installed: pip install "trl==1.16.*"'),
        ("trl", "1.17.0", "hicra.trl", "supports TRL 1.16, but TRL 1.17.0 is installed"),
        ("verl", "0.8.0", "hicra.verl", 'hicra.verl supports verl 0.9.1, but verl 0.8.0 is installed: pip install "verl==0.9.1"'),
    ],
)
def test_another_release_is_refused_at_import(tmp_path, package, version, module, want):
    done = import_with(fake_distribution(tmp_path, package, version), module)
    assert done.returncode != 0
    assert "UnsupportedVersionError" in done.stderr and want in done.stderr, done.stderr[-2000:]
    assert "AttributeError" not in done.stderr
    assert f"{versions.ALLOW_ENV}=1" in done.stderr


def test_the_override_turns_the_error_into_a_warning(tmp_path):
    root = fake_distribution(tmp_path, "verl", "0.8.0")
    done = import_with(root, "hicra.verl", **{versions.ALLOW_ENV: "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "supports verl 0.9.1, but verl 0.8.0 is installed" in done.stderr


def test_require_names_a_missing_package(monkeypatch):
    monkeypatch.setattr(versions, "installed_version", lambda package: None)
    with pytest.raises(versions.UnsupportedVersionError, match=r'hicra.verl needs verl 0.9.1, which is not installed: pip install "verl==0.9.1"'):
        versions.require("verl", "hicra.verl")
