import json
import shutil

import pandas as pd
import pytest

from registry.adapters.sources import get_adapter
from registry.errors import InvalidInput

ROOT = "dig-team__hanna-benchmark-asg"
CRITERIA = ("relevance", "coherence", "empathy", "surprise", "engagement", "complexity")


@pytest.fixture(scope="module")
def sets(data_root):
    adapter = get_adapter("hanna")
    return {d.name: (d, adapter.read(data_root / d.path, **d.options)) for d in adapter.catalog()}


def test_one_dataset_per_criterion(sets):
    assert list(sets) == [f"hanna-{c}" for c in CRITERIA]
    for name, (d, df) in sets.items():
        assert d.scale == (1.0, 5.0) and len(df) == 96 and df["example_id"].is_unique
        assert (df["system_id"] == "Human").all() and (df["criterion"] == name.removeprefix("hanna-")).all()
        assert (df["num_annotators"] == 3).all()
        assert df["annotator_scores"].map(lambda s: len(s) == 3 and set(s) <= {1, 2, 3, 4, 5}).all()
        assert df["score"].tolist() == pytest.approx([sum(s) / 3 for s in df["annotator_scores"]])
    # the id depends on the prompt only, so every criterion has the same ids
    assert len({tuple(df["example_id"]) for _, df in sets.values()}) == 1


def test_spot_values_and_llm_ratings(sets, data_root):
    stories = pd.read_csv(data_root / ROOT / "hanna_llm_stories.csv")
    rel = sets["hanna-relevance"][1]
    first = rel.iloc[0]
    assert first["instruction"] == stories.loc[0, "Prompt"] and first["response"] == stories.loc[0, "Human"]
    assert first["response"].startswith("3,000 years have I been fighting.")
    assert first["annotator_scores"] == [4.0, 5.0, 2.0] and first["score"] == pytest.approx(11 / 3)
    meta = json.loads(first["metadata"])
    assert meta["story_index"] == 0
    assert set(meta["llm_ratings"]) == {"Beluga-13B", "ChatGPT", "Llama-13B", "Mistral-7B", "OrcaPlatypus"}
    assert meta["llm_ratings"]["ChatGPT"][0] == 5.0 and len(meta["llm_ratings"]["ChatGPT"]) == 4
    assert sets["hanna-complexity"][1].iloc[0]["annotator_scores"] == [4.0, 1.0, 3.0]
    assert sets["hanna-empathy"][1].iloc[1]["annotator_scores"] == [3.0, 4.0, 5.0]


@pytest.fixture
def copy(tmp_path, data_root):
    for name in ("hanna_metric_scores_llm.csv", "hanna_llm_stories.csv"):
        shutil.copy(data_root / ROOT / name, tmp_path / name)
    return tmp_path


def test_short_rating_list_names_field(copy):
    path = copy / "hanna_metric_scores_llm.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[df["Model"] == "Human", "Human 2 CH"] = "[1, 2]"
    df.to_csv(path, index=False)
    with pytest.raises(InvalidInput) as err:
        get_adapter("hanna").read(copy, criterion="coherence")
    assert err.value.field == "Human 2 CH" and err.value.row == "Human"
    assert len(get_adapter("hanna").read(copy, criterion="relevance")) == 96  # other criteria unaffected


def test_missing_column_and_unknown_criterion(copy):
    path = copy / "hanna_metric_scores_llm.csv"
    pd.read_csv(path, dtype=str).drop(columns=["Human 3 EM"]).to_csv(path, index=False)
    with pytest.raises(InvalidInput, match="Human 3 EM"):
        get_adapter("hanna").read(copy, criterion="Empathy")
    with pytest.raises(InvalidInput, match="criterion"):
        get_adapter("hanna").read(copy, criterion="fun")
