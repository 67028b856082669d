"""``compat/deviations.toml``: the Django tests sessionplus fails on purpose, and why."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (the test extra's tomli)
    import tomli as tomllib

ENGINES = {
    "db",
    "db-project-model",
    "cache-locmem",
    "cache-django-redis",
    "cached_db-locmem",
    "cached_db-django-redis",
    "file",
    "signed_cookies",
    "redis",
    "middleware",
}


@dataclass(frozen=True)
class Deviation:
    """
    An expected failure.

    ``test`` is ``StockClass.test_method`` or a bare ``test_method`` (any stock class
    run for the engine); ``readme`` the README anchor documenting the difference.
    """

    test: str
    engines: tuple[str, ...]
    reason: str
    readme: str

    def matches(self, engine: str, test: str) -> bool:
        if engine not in self.engines:
            return False
        return test == self.test if "." in self.test else test.split(".")[1] == self.test


def readme_anchors(readme: Path) -> set[str]:
    """Return the anchors GitHub gives the README's headings."""
    anchors = set()
    for line in readme.read_text().splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return anchors


def load_deviations(path: Path, readme: Path) -> list[Deviation]:
    """Read and check the deviations file; raise SystemExit naming the first bad entry."""
    anchors = readme_anchors(readme)
    entries = tomllib.loads(path.read_text()).get("deviation", [])
    deviations = []
    for number, entry in enumerate(entries, 1):
        try:
            deviation = Deviation(
                entry["test"], tuple(entry["engines"]), entry["reason"].strip(), entry["readme"]
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise SystemExit(f"{path.name}: entry {number} lacks {exc}") from None
        problems = [
            f"unknown engine {engine!r}" for engine in deviation.engines if engine not in ENGINES
        ]
        if not deviation.engines or not deviation.reason:
            problems.append("no engines or no reason")
        if deviation.readme.removeprefix("#") not in anchors:
            problems.append(f"README.md has no heading {deviation.readme!r}")
        if problems:
            raise SystemExit(f"{path.name}: entry {number} ({deviation.test}): {problems}")
        deviations.append(deviation)
    return deviations
