"""The memory twin's sorted sets: trimming stops at the first live member, so they stay in score order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from policies.quota.twin import _zadd, _zremrange

operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from("abcdefgh"), st.integers(0, 50)),
        st.tuples(st.just("trim"), st.just(""), st.integers(0, 50)),
    ),
    max_size=60,
)


@given(operations)
def test_sorted_set_matches_a_full_scan_whatever_the_order_of_scores(ops: list[tuple[str, str, int]]) -> None:
    members: dict[str, float] = {}
    reference: dict[str, float] = {}
    for op, member, score in ops:
        if op == "add":
            _zadd(members, member, float(score))
            reference[member] = float(score)
        else:
            _zremrange(members, float(score))
            reference = {m: s for m, s in reference.items() if s > score}
        assert members == reference
        assert list(members.values()) == sorted(members.values())


def test_trimming_a_large_set_keeps_the_live_members_in_order() -> None:
    members: dict[str, float] = {}
    for second in range(5000):
        _zadd(members, f"p{second}", float(second))
    _zadd(members, "p10", 6000.0)  # a known member seen again moves to the end
    _zremrange(members, 2999.0)
    assert len(members) == 2001 and next(iter(members)) == "p3000" and next(reversed(members)) == "p10"
