"""The framework versions the integrations are written against, and the guard that stops an
import with any other version up front, with a message naming both versions and what to run,
instead of an ``AttributeError`` deep inside a trainer.

``hicra.trl`` supports TRL 1.16 (any 1.16.x release); ``hicra.verl`` supports verl 0.9.1.
Setting the environment variable ``HICRA_ALLOW_UNSUPPORTED_VERSIONS=1`` turns the error into
a warning, for trying a newer release at your own risk.
"""

from __future__ import annotations

import os
import warnings
from importlib import metadata
from typing import Optional

SUPPORTED = {"trl": "1.16", "verl": "0.9.1"}
"""Package name -> supported release: a ``major.minor`` prefix or one exact version."""

_PROJECT_NAMES = {"trl": "TRL", "verl": "verl"}
_EXTRAS = {"trl": "trl", "verl": "verl"}
ALLOW_ENV = "HICRA_ALLOW_UNSUPPORTED_VERSIONS"


class UnsupportedVersionError(ImportError):
    """A framework hicra integrates with is missing or at a version hicra does not support."""


def installed_version(package: str) -> Optional[str]:
    """The installed distribution's version, or ``None`` when it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def is_supported(package: str, version: str) -> bool:
    """Whether ``version`` of ``package`` is one hicra supports (``1.16`` covers ``1.16.x``)."""
    want = SUPPORTED[package]
    return version == want or (want.count(".") == 1 and version.startswith(want + "."))


def _pin(package: str) -> str:
    want = SUPPORTED[package]
    return f"{package}=={want}.*" if want.count(".") == 1 else f"{package}=={want}"


def require(package: str, module: str) -> str:
    """Returns the installed version of ``package`` when ``module`` supports it; raises
    :class:`UnsupportedVersionError` naming the supported and installed versions otherwise
    (a warning instead when ``HICRA_ALLOW_UNSUPPORTED_VERSIONS=1``)."""
    name = _PROJECT_NAMES[package]
    version = installed_version(package)
    install = f'pip install "{_pin(package)}" (or pip install "hicra[{_EXTRAS[package]}]")'
    if version is None:
        raise UnsupportedVersionError(f"{module} needs {name} {SUPPORTED[package]}, which is not installed: {install}")
    if is_supported(package, version):
        return version
    message = f"{module} supports {name} {SUPPORTED[package]}, but {name} {version} is installed: {install}"
    if os.environ.get(ALLOW_ENV, "") not in ("", "0"):
        warnings.warn(f"{message}; going on because {ALLOW_ENV} is set", stacklevel=3)
        return version
    raise UnsupportedVersionError(f"{message}, or set {ALLOW_ENV}=1 to try {name} {version} at your own risk")
