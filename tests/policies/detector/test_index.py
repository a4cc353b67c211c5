"""The cross-account index: doorkeeper, groups, bounds and group scores."""

from __future__ import annotations

from policies.detector.config import ClusterSettings
from policies.detector.index import INFRA, TEMPLATE, TemplateIndex, group_score

CLUSTER = ClusterSettings()


def test_a_key_becomes_a_group_on_its_second_sighting() -> None:
    index = TemplateIndex(100, 10)
    assert index.touch(1, TEMPLATE, "a", 0.9, 0.0) == (None, False)
    group, seen = index.touch(1, TEMPLATE, "b", 0.9, 1.0)
    assert group is not None and not seen and set(group.members) == {"a", "b"}
    group, seen = index.touch(1, TEMPLATE, "a", 0.9, 2.0)
    assert seen and group is not None and group.requests == 3


def test_the_index_is_bounded() -> None:
    index = TemplateIndex(50, 3)
    for key in range(500):
        index.touch(key, TEMPLATE, "a", 0.0, 0.0)
        index.touch(key, TEMPLATE, "b", 0.0, 0.0)
    assert len(index) <= 50 and len(index._door) <= 50
    for member in range(10):
        index.touch(9999, TEMPLATE, f"m{member}", 0.0, 0.0)
    group = index.get(9999)
    assert group is not None and len(group.members) == 3 and group.accounts == 10


def test_template_group_scores_with_accounts_and_extraction_content() -> None:
    index = TemplateIndex(100, 100)
    for member in range(12):
        index.touch(7, TEMPLATE, f"m{member}", 0.9, 0.0)
    group = index.get(7)
    assert group is not None and group_score(group, CLUSTER) == 1.0
    for member in range(12):
        index.touch(8, TEMPLATE, f"m{member}", 0.1, 0.0)  # shared, but benign content
    benign = index.get(8)
    assert benign is not None and group_score(benign, CLUSTER) == 0.0


def test_infra_group_scores_by_linked_members() -> None:
    index = TemplateIndex(100, 100)
    for member in range(20):
        index.touch("ua|1.2.3.0/24", INFRA, f"m{member}", 0.0, 0.0)
    group = index.get("ua|1.2.3.0/24")
    assert group is not None and group_score(group, CLUSTER) == 0.0  # a NAT full of ordinary users
    for member in range(4):
        index.link(group, f"m{member}")
    assert group_score(group, CLUSTER) == 1.0  # 4/20 linked = the full-score fraction
    assert index.find(group.id) is group
