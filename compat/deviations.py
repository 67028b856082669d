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
    run for the engine); ``docs`` the docs/ page (``page.md`` or ``page.md#anchor``)
    documenting the difference for users.
    """

    test: str
    engines: tuple[str, ...]
    reason: str
    docs: str

    def matches(self, engine: str, test: str) -> bool:
        if engine not in self.engines:
            return False
        return test == self.test if "." in self.test else test.split(".")[1] == self.test


def heading_anchors(page: Path) -> set[str]:
    """Return the anchors GitHub (and MyST, as docs/conf.py sets it) gives a page's headings."""
    anchors = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return anchors


def load_deviations(path: Path, docs: Path) -> list[Deviation]:
    """Read and check the deviations file; raise SystemExit naming the first bad entry."""
    entries = tomllib.loads(path.read_text()).get("deviation", [])
    deviations = []
    for number, entry in enumerate(entries, 1):
        try:
            deviation = Deviation(
                entry["test"], tuple(entry["engines"]), entry["reason"].strip(), entry["docs"]
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise SystemExit(f"{path.name}: entry {number} lacks {exc}") from None
        problems = [
            f"unknown engine {engine!r}" for engine in deviation.engines if engine not in ENGINES
        ]
        if not deviation.engines or not deviation.reason:
            problems.append("no engines or no reason")
        page, _, anchor = deviation.docs.partition("#")
        if not (docs / page).is_file() or (anchor and anchor not in heading_anchors(docs / page)):
            problems.append(f"docs/ has no page or heading {deviation.docs!r}")
        if problems:
            raise SystemExit(f"{path.name}: entry {number} ({deviation.test}): {problems}")
        deviations.append(deviation)
    return deviations
