"""
What a process remembers of texts it read before: a stored session is read many times
between two writes, and each read would verify, parse and decode the same text again.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

# Bytes of text each memo remembers: about two thousand sessions of 1 KB, or a hundred
# of their fields.
TEXT_MEMO_BUDGET = 2 << 20
# Values of these types cannot change in place: one object serves every read of a text.
IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def is_flat(value: object) -> bool:
    """Return whether ``value`` is a dict whose values cannot change in place."""
    # map() and issuperset() walk the values in C: this runs on every write.
    return type(value) is dict and IMMUTABLE.issuperset(map(type, value.values()))


class TextMemo(dict[Hashable, Any]):
    """
    Texts read before, with what reading them returned: finding a text here costs a hash
    of it. What a reading returns must be a function of the text alone, or of the text
    and something that holds the memo (a signer's keys, which never change: signers are
    made afresh when the secrets do), and only texts that read without error are kept.
    Up to ``TEXT_MEMO_BUDGET`` bytes of them; then it starts afresh. A dict, so that
    looking up is one C call.
    """

    def __init__(self, budget: int = TEXT_MEMO_BUDGET) -> None:
        super().__init__()
        self._size = 0
        self._budget = budget
        self._largest = budget // 64

    def remember(self, text: Hashable, size: int, result: Any) -> None:
        """Remember that ``text`` (``size`` bytes) read as ``result``."""
        if size > self._largest:
            return  # one text that large would push out dozens of the usual size
        # No lock: each dict operation is atomic, and threads racing here can only
        # miscount the size by the texts they add, which the budget allows for.
        self._size += size
        if self._size > self._budget:
            # All at once: dropping the oldest one by one makes each next pop walk past
            # the slots the earlier ones emptied.
            self.clear()
            self._size = size
        self[text] = result
