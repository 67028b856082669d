"""The one value a redis engine session is stored as: putting it together, taking it apart."""

from __future__ import annotations

import pytest
from django.test import SimpleTestCase

from sessionplus.backends.redis import layout


class LayoutTests(SimpleTestCase):
    def test_a_value_comes_apart_as_it_was_put_together(self):
        data = {"a": b"YQ:s1", 'é/"x"\n': b"Yg:s2"}
        metadata = {"created_at": b"MQ:s3", "last_activity": b"Mg:s4"}
        for index in (None, b"WyIxIl0:s5"):
            with self.subTest(index=index):
                value = layout.pack(data, metadata, index)
                assert layout.unpack(value) == (data, metadata, index)

    def test_the_header_names_the_fields_and_the_texts_follow_in_order(self):
        value = layout.pack({"a": b"1:x"}, {"ip": b"2:y"}, b"3:z")
        assert value == b'[["a"],["ip"],1]\n1:x 2:y 3:z'

    def test_a_session_without_data_has_only_its_metadata(self):
        value = layout.pack({}, {"last_activity": b"1:x"}, None)
        assert layout.unpack(value) == ({}, {"last_activity": b"1:x"}, None)

    def test_what_unpack_returns_is_the_callers_to_change(self):
        value = layout.pack({"a": b"1:x"}, {"ip": b"2:y"}, None)
        data, metadata, _ = layout.unpack(value)
        data.pop("a")
        metadata["ip"] = b"changed"
        assert layout.unpack(value) == ({"a": b"1:x"}, {"ip": b"2:y"}, None)

    def test_a_value_packed_or_read_is_remembered_and_a_malformed_one_is_not(self):
        packed = layout.pack({"remembered": b"1:x"}, {}, None)
        assert layout._values[packed] == ({"remembered": b"1:x"}, {}, None)
        read = packed.replace(b"1:x", b"2:y")  # as another process would have written it
        assert layout.unpack(read) == ({"remembered": b"2:y"}, {}, None)
        assert read in layout._values
        assert read.partition(b"\n")[0] in layout._shapes
        bad = b'[["a","a"],[],0]\n1:x 2:y'
        with pytest.raises(layout.Malformed):
            layout.unpack(bad)
        assert bad not in layout._values
        assert bad.partition(b"\n")[0] not in layout._shapes

    def test_what_pack_remembers_is_not_what_its_caller_changes_later(self):
        data = {"a": b"1:x"}
        value = layout.pack(data, {}, None)
        data["a"] = b"changed"
        assert layout.unpack(value) == ({"a": b"1:x"}, {}, None)

    def test_a_value_read_as_text_comes_apart_as_its_bytes_and_anything_else_is_malformed(self):
        value = layout.pack({"é": b"1:x"}, {"ip": b"2:y"}, None)
        assert layout.unpack(value.decode()) == layout.unpack(value)
        for not_a_string in (None, 42, [value], Exception("WRONGTYPE")):
            with self.subTest(value=not_a_string), pytest.raises(layout.Malformed):
                layout.unpack(not_a_string)

    def test_values_the_engine_never_writes_are_malformed(self):
        for value in (
            b"",
            b"no header",
            b"[[],[],0]",  # no newline
            b"[[1],[],0]\n1:x",  # a key that is not text
            b'[["\\ud800"],[],0]\n1:x',  # not text Redis can name
            b"[[],[],true]\n1:x",
            b"[[],[],0.0]\n",
            b'[["a"],[],0]\n1:x 2:y',
            b'[["a","b"],[],0]\n1:x',
            b'[["a","b"],[],0]\n1:x ',
            b"[" * 100_000,
        ):
            with self.subTest(value=value[:40]), pytest.raises(layout.Malformed):
                layout.unpack(value)
