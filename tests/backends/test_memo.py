"""What a process remembers of texts it read before."""

from __future__ import annotations

from sessionplus.backends.memo import TextMemo, is_flat


def test_it_keeps_texts_up_to_its_budget_then_starts_afresh():
    memo = TextMemo(budget=640)
    for number in range(64):
        memo.remember(number, 10, f"result {number}")
    assert len(memo) == 64
    assert memo[0] == "result 0"
    memo.remember("one more", 10, "result")
    assert dict(memo) == {"one more": "result"}


def test_a_text_larger_than_a_sixty_fourth_of_the_budget_is_not_kept():
    memo = TextMemo(budget=640)
    memo.remember("too large for the budget", 11, "result")
    assert "too large for the budget" not in memo
    memo.remember("just fits", 10, "result")
    assert memo["just fits"] == "result"


def test_flat_means_a_dict_of_values_that_cannot_change_in_place():
    assert is_flat({"a": "text", "b": 1, "c": 1.5, "d": True, "e": None})
    assert is_flat({})
    assert not is_flat({"a": [1]})
    assert not is_flat({"a": {"b": 1}})
    assert not is_flat([("a", 1)])

    class Text(str):
        pass

    # A subclass may carry state of its own: only the exact types count.
    assert not is_flat({"a": Text("x")})
