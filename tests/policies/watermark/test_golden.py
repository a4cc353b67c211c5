"""The marker's output is byte for byte what it was when the golden record was written (see golden.py)."""

from __future__ import annotations

from tests.policies.watermark.golden import load, record


def test_marker_output_matches_golden_record() -> None:
    texts, digests = load()
    current = record(texts)
    assert current.keys() == digests.keys()
    changed = [name for name, digest in digests.items() if current[name] != digest]
    assert not changed, f"output changed for {len(changed)} cases, e.g. {changed[:5]}"
