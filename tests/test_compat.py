"""compat/deviations.toml: the Django tests sessionplus fails on purpose (``make compat``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from django.test import SimpleTestCase

from tests.support.services import repo_root

pytest.importorskip("tomllib", reason="compat/ reads TOML with tomllib (Python 3.11+)")
from compat.deviations import Deviation, load_deviations

DOCS = repo_root() / "docs"


class DeviationsFileTests(SimpleTestCase):
    def load(self, text: str) -> list[Deviation]:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "deviations.toml"
            path.write_text(text)
            return load_deviations(path, DOCS)

    def test_every_listed_deviation_has_known_engines_a_reason_and_a_docs_page(self):
        deviations = load_deviations(repo_root() / "compat" / "deviations.toml", DOCS)
        assert {d.test for d in deviations} == {
            "test_session_key_valid_string_saved",
            "test_clearsessions_command",
        }

    def test_an_entry_pointing_at_a_missing_docs_page_is_refused(self):
        entry = '[[deviation]]\ntest = "t"\nengines = ["db"]\nreason = "r"\ndocs = "nowhere.md"\n'
        with pytest.raises(SystemExit, match=r"docs/ has no page or heading 'nowhere\.md'"):
            self.load(entry)

    def test_an_entry_pointing_at_a_missing_heading_of_a_page_is_refused(self):
        entry = (
            '[[deviation]]\ntest = "t"\nengines = ["db"]\nreason = "r"\ndocs = "security.md#x"\n'
        )
        with pytest.raises(SystemExit, match=r"docs/ has no page or heading 'security\.md#x'"):
            self.load(entry)

    def test_an_entry_with_an_unknown_engine_or_no_reason_is_refused(self):
        entry = (
            '[[deviation]]\ntest = "t"\nengines = ["dbx"]\nreason = " "\ndocs = "engines/file.md"\n'
        )
        with pytest.raises(SystemExit, match=r"unknown engine 'dbx'.*no engines or no reason"):
            self.load(entry)

    def test_an_entry_missing_a_field_is_refused(self):
        with pytest.raises(SystemExit, match="entry 1 lacks 'docs'"):
            self.load('[[deviation]]\ntest = "t"\nengines = ["db"]\nreason = "r"\n')

    def test_a_bare_method_name_matches_every_stock_class_of_its_engines_only(self):
        bare = Deviation("test_x", ("db", "file"), "r", "file")
        assert bare.matches("db", "DatabaseSessionWithTimeZoneTests.test_x")
        assert bare.matches("file", "FileSessionPathLibTests.test_x")
        assert not bare.matches("redis", "SessionTestsMixin.test_x")
        assert not bare.matches("db", "DatabaseSessionTests.test_x_async")
        qualified = Deviation("FileSessionTests.test_x", ("file",), "r", "file")
        assert qualified.matches("file", "FileSessionTests.test_x")
        assert not qualified.matches("file", "FileSessionPathLibTests.test_x")
