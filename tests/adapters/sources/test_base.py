"""Helpers shared by the source adapters (registry.adapters.sources.base)."""

import pytest

from registry.adapters.sources import base
from registry.adapters.sources.base import checked_score, map_label, place_pair, require_text
from registry.errors import InvalidInput

F = "f.json"


def test_map_label_rejects_booleans_for_integer_keys():
    mapping = {1: "consistent", 0: "inconsistent"}
    assert map_label(1, mapping, file=F, row=0, field="label") == "consistent"
    for raw in (True, False):
        with pytest.raises(InvalidInput, match=f"boolean {raw}") as err:
            map_label(raw, mapping, file=F, row=3, field="label")
        assert err.value.field == "label" and err.value.row == 3
    assert map_label(True, {True: "yes", False: "no"}, file=F, row=0, field="x") == "yes"  # bool keys
    with pytest.raises(InvalidInput, match="unknown label 'yes'"):
        map_label("yes", mapping, file=F, row=0, field="label")


def test_require_text_allow_empty():
    rec = {"r": "", "w": "  ", "n": None, "i": 3, "t": "x"}
    assert require_text(rec, "t", file=F, row=0) == "x"
    for key in ("r", "w", "n", "i"):
        with pytest.raises(InvalidInput) as err:
            require_text(rec, key, file=F, row=0)
        assert err.value.field == key
    assert require_text(rec, "r", file=F, row=0, allow_empty=True) == ""
    assert require_text(rec, "w", file=F, row=0, allow_empty=True) == "  "
    for key in ("n", "i", "missing"):
        with pytest.raises(InvalidInput) as err:
            require_text(rec, key, file=F, row=0, allow_empty=True)
        assert err.value.field == key


def test_checked_score():
    assert checked_score(3, (1.0, 5.0), file=F, row=0, field="s") == 3.0
    for bad in (True, "3", float("nan"), None):
        with pytest.raises(InvalidInput, match="not a number"):
            checked_score(bad, (1.0, 5.0), file=F, row=0, field="s")
    with pytest.raises(InvalidInput, match="outside the scale") as err:
        checked_score(6, (1.0, 5.0), file=F, row=0, field="s")
    assert err.value.field == "s"


def test_shared_helpers_live_only_in_base():
    import registry.adapters.sources.bartscore as bartscore
    import registry.adapters.sources.hanna as hanna
    import registry.adapters.sources.hh_rlhf as hh_rlhf
    import registry.adapters.sources.prometheus as prometheus
    import registry.adapters.sources.unieval as unieval

    for module in (hh_rlhf, prometheus, bartscore):
        assert module.place_pair is base.place_pair
    for module in (bartscore, unieval, hanna):
        assert module.checked_score is base.checked_score
    assert place_pair("x", "good", "") in {("good", "", "A"), ("", "good", "B")}
