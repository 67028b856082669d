"""
Django's test code for the installed Django, from its sdist, cached outside the repository.

Nothing of Django's test suite is kept in this repository: the sdist of exactly the
installed version is downloaded once with pip and the two test packages the session tests
need are unpacked under ``~/.cache/sessionplus-compat/Django-X.Y.Z``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import django

# sessions_tests itself, and the failing cache backend its cached_db tests configure.
PACKAGES = ("sessions_tests", "cache")


def cache_root() -> Path:
    configured = os.environ.get("SESSIONPLUS_COMPAT_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sessionplus-compat"


def django_tests_dir(version: str = django.__version__) -> Path:
    """Return a directory holding Django ``version``'s test packages, downloading once."""
    target = cache_root() / f"Django-{version}"
    if (target / "sessions_tests" / "tests.py").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        archive = _download(version, Path(work))
        unpacked = Path(work) / "tests"
        _unpack_tests(archive, unpacked)
        # One rename: a run killed midway never leaves a half-unpacked cache behind.
        shutil.rmtree(target, ignore_errors=True)
        unpacked.rename(target)
    return target


def _download(version: str, directory: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"Django=={version}",
        "--dest",
        str(directory),
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    archives = list(directory.glob("*.tar.gz"))
    if completed.returncode != 0 or len(archives) != 1:
        raise SystemExit(
            f"Could not download the sdist of Django {version} (needed for its test suite):\n"
            f"{completed.stderr.strip()}"
        )
    return archives[0]


def _unpack_tests(archive: Path, destination: Path) -> None:
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            # <name>-<version>/tests/<package>/...
            parts = Path(member.name).parts
            if len(parts) > 3 and parts[1] == "tests" and parts[2] in PACKAGES:
                member.name = str(Path(*parts[2:]))
                members.append(member)
        if not members:
            raise SystemExit(f"{archive.name} holds no tests/sessions_tests.")
        # The "data" filter refuses links and paths leaving the destination.
        tar.extractall(destination, members=members, filter="data")
