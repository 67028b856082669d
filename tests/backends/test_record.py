"""The text record cache, file and cached_db's cache store: a JSON header, then the data."""

from __future__ import annotations

import pytest
from django.test import SimpleTestCase

from sessionplus.backends.record import StoredSession, parse_record_header


class StoredSessionTests(SimpleTestCase):
    def test_a_record_reads_back_as_written_with_its_header_on_the_first_line(self):
        record = StoredSession("signed:data", 1700000000.5, {"user_id": "7", "created_at": 1.0})
        text = record.to_text()
        assert text.split("\n") == [
            '{"expires_at":1700000000.5,"user_id":"7","created_at":1.0}',
            "signed:data",
        ]
        back = StoredSession.from_text(text)
        assert (back.data, back.expires_at) == ("signed:data", 1700000000.5)
        assert back.metadata == {
            "created_at": 1.0,
            "last_activity": None,
            "user_id": "7",
            "ip": None,
            "user_agent": None,
        }

    def test_a_text_read_again_is_the_same_read_only_record_and_a_changed_one_is_parsed(self):
        text = StoredSession("signed:data", 1700000000.5, {"ip": "::1"}).to_text()
        first = StoredSession.from_text(text)
        # A copy of the text, as each read from storage is: found by its value.
        assert StoredSession.from_text("".join(list(text))) is first
        with pytest.raises(TypeError):
            first.metadata["ip"] = "10.0.0.1"  # type: ignore[index]
        changed = StoredSession.from_text(text.replace("::1", "::2"))
        assert changed.metadata["ip"] == "::2"
        assert first.metadata["ip"] == "::1"

    def test_a_record_written_with_invalid_metadata_is_refused_when_read(self):
        text = StoredSession("signed:x", 1700000002.0, {"user_id": 7}).to_text()
        with pytest.raises(ValueError, match="invalid user_id"):
            StoredSession.from_text(text)

    def test_a_damaged_text_is_refused_at_every_read(self):
        text = '{"expires_at": "soon"}\nsigned:data'
        for _ in range(2):
            with pytest.raises(ValueError, match="no valid expiry"):
                StoredSession.from_text(text)

    def test_text_without_a_header_line_is_not_a_record(self):
        with pytest.raises(ValueError, match="no header line"):
            StoredSession.from_text('{"expires_at": 1}')


class ParseRecordHeaderTests(SimpleTestCase):
    def test_a_header_reads_as_expiry_and_metadata_from_text_or_bytes(self):
        expires_at, metadata = parse_record_header(b'{"expires_at": 5, "ip": "::1", "other": 1}')
        assert expires_at == 5
        assert metadata["ip"] == "::1"
        assert "other" not in metadata

    def test_damaged_headers_raise_value_error(self):
        for line, problem in (
            ("[1]", "not a JSON object"),
            ("{}", "no valid expiry"),
            ('{"expires_at": true}', "no valid expiry"),
            ('{"expires_at": NaN}', "no valid expiry"),
            ('{"expires_at": 1, "created_at": "yesterday"}', "invalid created_at"),
            ('{"expires_at": 1, "user_id": 7}', "invalid user_id"),
            ("[" * 100_000, "nests too deeply"),
        ):
            with pytest.raises(ValueError, match=problem):
                parse_record_header(line)

    def test_text_that_is_not_json_raises_value_error(self):
        with pytest.raises(ValueError, match="Expecting value"):
            parse_record_header("not json")
