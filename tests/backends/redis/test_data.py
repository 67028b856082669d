"""The redis engine's loaded data: each value verified and decoded when first read."""

from __future__ import annotations

import copy
import json
import pickle
import weakref

import pytest
from django.test import SimpleTestCase

from sessionplus.backends.redis.data import LazyData, StoredFields


class Decoder:
    """
    Decodes JSON text, failing on ``bad``; records what it decoded, and, as the data's
    owner, what failed and each walk.
    """

    def __init__(self) -> None:
        self.decoded: list[str] = []
        self.failures: list[Exception] = []
        self.walks = 0

    def __call__(self, key: str, stored: bytes) -> tuple[object, bytes]:
        if stored == b"bad":
            raise ValueError("not ours")
        self.decoded.append(key)
        return json.loads(stored), stored

    def _value_failed(self, exc: Exception) -> None:
        self.failures.append(exc)

    def _before_walk(self) -> None:
        self.walks += 1

    def data(self, **stored: bytes) -> LazyData:
        return LazyData(StoredFields(dict(stored)), self, weakref.ref(self))


def stored_data(decoder: Decoder) -> LazyData:
    return decoder.data(a=b"1", b=b"[2]", c=b'"three"')


class LazyDataTests(SimpleTestCase):
    def test_reading_one_value_decodes_that_value_only(self):
        decoder = Decoder()
        data = stored_data(decoder)
        assert data["a"] == 1
        assert data.get("b") == [2]
        assert data["a"] == 1
        assert decoder.decoded == ["a", "b"]
        assert "c" in data
        assert len(data) == 3
        assert decoder.decoded == ["a", "b"]

    def test_a_decoded_value_is_recorded_with_its_form(self):
        decoder = Decoder()
        stored = StoredFields({"b": b"[2]"})
        data = LazyData(stored, decoder, weakref.ref(decoder))
        value = data["b"]
        assert stored.values["b"] is value
        assert stored.forms == {"b": b"[2]"}
        assert stored.encoded == {}

    def test_walking_the_data_decodes_every_value(self):
        for walk in (
            lambda data: list(data.keys()),
            lambda data: list(data.values()),
            lambda data: list(data.items()),
            lambda data: list(data),
            lambda data: list(reversed(data)),
            dict,
            lambda data: {**data},
            lambda data: data.copy(),
            repr,
            lambda data: json.dumps(data),
            lambda data: pickle.loads(pickle.dumps(data)),
            copy.deepcopy,
            lambda data: data | {},
            lambda data: {} | data,
        ):
            decoder = Decoder()
            walk(stored_data(decoder))
            assert sorted(decoder.decoded) == ["a", "b", "c"], walk

    def test_walks_see_the_values_not_their_stored_form(self):
        data = stored_data(Decoder())
        assert dict(data) == {"a": 1, "b": [2], "c": "three"}
        assert data == {"a": 1, "b": [2], "c": "three"}
        assert data != {"a": 1}
        assert data == stored_data(Decoder())
        assert json.loads(json.dumps(data)) == {"a": 1, "b": [2], "c": "three"}
        assert pickle.loads(pickle.dumps(data)) == {"a": 1, "b": [2], "c": "three"}
        assert type(data.copy()) is dict
        assert repr(data) == "{'a': 1, 'b': [2], 'c': 'three'}"
        assert (data | {"d": 4})["d"] == 4
        assert ({"a": 0} | data)["a"] == 1
        # As with a dict, only a mapping merges.
        with pytest.raises(TypeError):
            data | 1
        with pytest.raises(TypeError):
            1 | data

    def test_popitem_pop_and_setdefault_return_values(self):
        data = stored_data(Decoder())
        assert data.popitem() == ("c", "three")
        assert data.pop("b") == [2]
        assert data.pop("b", None) is None
        with pytest.raises(KeyError):
            data.pop("b")
        assert data.setdefault("a", 9) == 1
        assert data.setdefault("z", 9) == 9
        assert dict(data) == {"a": 1, "z": 9}

    def test_assigning_replaces_a_value_never_read_without_decoding_it(self):
        decoder = Decoder()
        data = stored_data(decoder)
        data["a"] = 5
        del data["b"]
        assert data["a"] == 5
        assert decoder.decoded == []

    def test_the_stored_text_of_a_value_is_told_only_while_never_read(self):
        decoder = Decoder()
        data = decoder.data(a=b"1", b=b"bad", c=b"3")
        assert data.unread_text("b") == b"bad"  # told, not verified: no failure
        assert decoder.failures == []
        assert data["a"] == 1
        data["c"] = 4
        assert [data.unread_text(key) for key in ("a", "c", "z")] == [None, None, None]
        assert decoder.decoded == ["a"]

    def test_a_value_that_fails_is_never_returned_and_empties_the_data(self):
        for read in (
            lambda data: data.get("x"),
            lambda data: data.get("x", "default"),
            lambda data: data.pop("x", "default"),
            lambda data: data.setdefault("x", "default") and None,
        ):
            decoder = Decoder()
            data = decoder.data(a=b"1", x=b"bad")
            read(data)
            assert len(decoder.failures) == 1
            assert dict.__len__(data) <= 1  # setdefault may put its default in
            assert "a" not in data

    def test_indexing_a_value_that_fails_raises_key_error(self):
        decoder = Decoder()
        data = decoder.data(x=b"bad")
        with pytest.raises(KeyError):
            data["x"]
        assert [type(exc) for exc in decoder.failures] == [ValueError]
        assert list(data.items()) == []

    def test_a_walk_that_meets_a_failure_stops_with_nothing(self):
        decoder = Decoder()
        data = decoder.data(a=b"1", x=b"bad", z=b"2")
        assert list(data.keys()) == []
        assert len(decoder.failures) == 1

    def test_loaded_data_is_not_hashable(self):
        with pytest.raises(TypeError):
            hash(stored_data(Decoder()))

    def test_a_walk_of_the_data_asks_its_owner_first_and_one_of_the_metadata_does_not(self):
        decoder = Decoder()
        data = stored_data(decoder)
        metadata = LazyData(
            StoredFields({"ip": b'"10.0.0.1"'}), decoder, weakref.ref(decoder), data
        )
        dict(metadata)
        assert decoder.walks == 0
        dict(data)
        assert decoder.walks == 1

    def test_a_metadata_value_that_fails_empties_the_data_loaded_with_it(self):
        decoder = Decoder()
        data = stored_data(decoder)
        metadata = LazyData(StoredFields({"ip": b"bad"}), decoder, weakref.ref(decoder), data)
        assert metadata.get("ip") is None
        assert [type(exc) for exc in decoder.failures] == [ValueError]
        assert dict.__len__(data) == 0
        assert dict.__len__(metadata) == 0

    def test_the_owner_is_held_weakly_and_once_gone_failures_still_empty_the_data(self):
        owner = Decoder()
        data = LazyData(StoredFields({"a": b"bad", "b": b"2"}), Decoder(), weakref.ref(owner))
        del owner  # nothing else held it: reference counting freed it, no cycle kept it
        with pytest.raises(KeyError):
            data["a"]
        assert list(data.items()) == []
