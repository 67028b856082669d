"""The docs/ reference pages name every setting and system check; the README's links resolve."""

from __future__ import annotations

import inspect
import re

from django.test import SimpleTestCase

from sessionplus import checks
from sessionplus.conf import DEFAULTS
from tests.support.services import repo_root

DOCS = repo_root() / "docs"


def headings(page: str) -> set[str]:
    """Return the text of every Markdown heading of a docs page."""
    text = (DOCS / page).read_text()
    return {match.strip() for match in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}


def check_ids_in(text: str) -> set[str]:
    return set(re.findall(r"sessionplus\.[EW]\d{3}", text))


class SettingsReferenceTests(SimpleTestCase):
    def test_every_setting_in_conf_defaults_has_a_heading(self):
        assert sorted(set(DEFAULTS) - headings("settings.md")) == []

    def test_every_sessionplus_setting_heading_is_a_setting_conf_reads(self):
        documented = {name for name in headings("settings.md") if name.startswith("SESSIONPLUS_")}
        assert sorted(documented - set(DEFAULTS)) == []


class ReadmeLinksTests(SimpleTestCase):
    def test_every_relative_link_in_the_readme_names_a_file_in_the_repository(self):
        readme = (repo_root() / "README.md").read_text()
        targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme)
        assert "docs/index.md" in targets  # the pattern still finds the links
        assert sorted(t for t in targets if not (repo_root() / t).is_file()) == []


class ChecksReferenceTests(SimpleTestCase):
    def test_every_check_id_in_checks_py_is_listed(self):
        code = check_ids_in(inspect.getsource(checks))
        assert code  # the pattern still finds the ids
        assert sorted(code - check_ids_in((DOCS / "checks.md").read_text())) == []

    def test_every_listed_check_id_exists_in_checks_py(self):
        listed = check_ids_in((DOCS / "checks.md").read_text())
        assert sorted(listed - check_ids_in(inspect.getsource(checks))) == []
