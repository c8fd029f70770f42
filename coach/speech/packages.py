"""Installed package versions (a part of every speech cache key), read cheaply.

importlib.metadata takes about 12 ms to import (it brings email parsing and more), and a
live session asks for the versions on its way to the first sound. A package that pip
installed has a `NAME-VERSION.dist-info` folder in a sys.path entry, and that folder's
name alone gives the version, found in the same sys.path order importlib.metadata looks
in. A package found no such way (an egg, an unusual name) is asked of importlib.metadata.
"""

from __future__ import annotations

import os
import re
import sys

DIST_INFO = ".dist-info"
_listings: dict[str, list[str]] = {}


def package_version(distribution: str) -> str:
    """The installed version of `distribution` (its name on PyPI), or "unknown"."""
    wanted = _normalised(distribution)
    for entry in sys.path:
        for name in _listing(entry):
            project, _, version = name[: -len(DIST_INFO)].partition("-")
            if version and _normalised(project) == wanted:
                return version
    return _from_metadata(distribution)


def _listing(entry: str) -> list[str]:
    """The .dist-info folders in one sys.path entry (listed once per process)."""
    if entry not in _listings:
        try:
            _listings[entry] = [name for name in os.listdir(entry or ".") if name.endswith(DIST_INFO)]
        except OSError:  # a zip file, or a folder that is not there
            _listings[entry] = []
    return _listings[entry]


def _normalised(name: str) -> str:
    # PEP 503 names: case, and runs of -, _ and ., do not matter (dist-info folders use _).
    return re.sub(r"[-_.]+", "_", name).lower()


def _from_metadata(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"
