"""
The one Redis string a session is stored as, and taking it apart.

A session is read with one ``GET`` of one value: a header line naming the fields, then
their stored texts, separated by single spaces::

    [["<data key>", …], ["<metadata name>", …], <1 if a user index is named, else 0>]
    <data text> … <metadata text> … [<index text>]

The stored texts are the codec's (``codec``): URL-safe base64, ``.``, ``:``, never a space,
each signed for its field (``d:<key>``, ``m:<name>``, ``x:index``), so a text moved to
another place in the value fails its signature. The header is JSON, the one format that
both Python and the Lua of the write scripts (``cjson``) read and that frames any session
key; it is the same for every read of a session between two changes of its keys, so each
header text is read once per process (``memo``), and so is each whole value until it
changes. Taking a value apart is a handful of C calls, where a Redis hash of the same
fields took a Python step per field; a write script (``scripts.SAVE``) still changes only
the fields a save names. A value ``pack()`` makes is remembered taken apart too: the next
read of a session a process wrote is often in that process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sessionplus.backends.memo import TextMemo

__all__ = ["Malformed", "pack", "unpack"]

# value -> what unpack() returns, for values read before: a session is read many times
# between two writes, and taking 2 KB apart costs more than hashing it.
_values = TextMemo()
# header text -> (data keys, metadata names, number of texts, number of data texts): the
# header stays the same across writes that change no key.
_shapes = TextMemo()
# (data keys, metadata names, whether an index is named) -> header text, for pack().
_headers = TextMemo()


class Malformed(ValueError):
    """A value that is not a session as this engine writes them."""


def pack(data: Mapping[str, bytes], metadata: Mapping[str, bytes], index: bytes | None) -> bytes:
    """Return the value of a session holding these stored texts (see the module)."""
    shape = (tuple(data), tuple(metadata), index is not None)
    header = _headers.get(shape)
    if header is None:
        header = json.dumps(
            [list(data), list(metadata), 0 if index is None else 1],
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        _headers.remember(shape, len(header), header)
    texts = [*data.values(), *metadata.values()]
    if index is not None:
        texts.append(index)
    value = b"%b\n%b" % (header, b" ".join(texts))
    # The next read of the session, often in this process, finds it taken apart.
    _values.remember(value, len(value), (dict(data), dict(metadata), index))
    return value


def unpack(value: object) -> tuple[dict[str, bytes], dict[str, bytes], bytes | None]:
    """
    Return the data texts by key, the metadata texts by name and the index text (or
    None) of a session's value as a GET returns it (str from a client made with
    decode_responses=True); nothing is verified here. Raise ``Malformed`` for a value
    this engine did not write (not a string, a missing or bad header, texts not matching
    it). The dicts are the caller's to change.
    """
    if type(value) is str:
        value = value.encode()
    if type(value) is not bytes:
        raise Malformed("it is not a string")
    known = _values.get(value)
    if known is None:
        known = _unpacked(value)
        _values.remember(value, len(value), known)
    data, metadata, index = known
    return data.copy(), metadata.copy(), index


def _unpacked(value: bytes) -> tuple[dict[str, bytes], dict[str, bytes], bytes | None]:
    header, newline, body = value.partition(b"\n")
    shape = _shapes.get(header)
    if shape is None:
        shape = _shape(header)
        _shapes.remember(header, len(header), shape)
    data_keys, metadata_names, count, data_count = shape
    texts = body.split(b" ") if body else []
    if not newline or len(texts) != count or not all(texts):
        raise Malformed("its texts do not match its header")
    # (The count was checked above: zip stops at the shorter on purpose in the second.)
    data = dict(zip(data_keys, texts, strict=False))
    metadata = dict(zip(metadata_names, texts[data_count:], strict=False))
    index = texts[-1] if count > data_count + len(metadata_names) else None
    return data, metadata, index


def _shape(header: bytes) -> tuple[tuple[str, ...], tuple[str, ...], int, int]:
    try:
        data_keys, metadata_names, index_count = json.loads(header)
        names = [*data_keys, *metadata_names]
        for name in names:
            name.encode()  # str, and text the scripts can name (no lone surrogates)
    except Exception as exc:  # anything json or a wrong shape raises
        raise Malformed(f"its header is not ours ({type(exc).__name__})") from None
    if (
        type(data_keys) is not list
        or type(metadata_names) is not list
        or type(index_count) is not int
        or index_count not in (0, 1)
        or len(set(data_keys)) != len(data_keys)
        or len(set(metadata_names)) != len(metadata_names)
    ):
        raise Malformed("its header is not ours")
    return (tuple(data_keys), tuple(metadata_names), len(names) + index_count, len(data_keys))
