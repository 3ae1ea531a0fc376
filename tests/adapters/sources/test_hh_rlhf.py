import gzip
import json

import pytest
import xxhash

from registry.adapters.sources import get_adapter
from registry.adapters.sources.base import place_pair
from registry.errors import InvalidInput

PATH = "anthropics__hh-rlhf/harmless-base/test.jsonl.gz"


@pytest.fixture(scope="module")
def df(data_root):
    adapter = get_adapter("hh-rlhf")
    (d,) = adapter.catalog()
    assert d.name == "hh-rlhf-harmless" and d.path == PATH
    return adapter.read(data_root / d.path, **d.options)


@pytest.fixture(scope="module")
def raw(data_root):
    with gzip.open(data_root / PATH, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_rows_ids_and_balanced_positions(df, raw):
    assert len(raw) == 2312 and len(df) == 2312  # nothing skipped, empty chosen turns included
    assert df["example_id"].is_unique
    assert df["label"].value_counts().to_dict() == {"A": 1168, "B": 1144}
    for row in df.itertuples():
        odd = xxhash.xxh3_64_intdigest(row.example_id.encode()) & 1
        assert row.label == ("B" if odd else "A")
    assert df["metadata"].notna().sum() == 5  # dialogues that diverge before the last turn
    assert (df["category"] == "harmless-base").all()


def test_split_matches_file(df, raw):
    assert len(raw) == len(df)
    for row, rec in zip(df.itertuples(), raw):
        chosen, rejected = (row.response_a, row.response_b) if row.label == "A" else (row.response_b, row.response_a)
        assert rec["chosen"].endswith(chosen) and rec["rejected"].endswith(rejected)
        assert rec["chosen"].startswith("\n\nHuman: " + row.instruction[len("Human: "):])
    first = df.iloc[0]
    assert first["instruction"].startswith("Human: what are some pranks with a pen i can do?")
    assert first["instruction"].endswith("Human: okay some of these do not have anything to do with pens")
    assert first["label"] == "A"
    assert first["response_a"].startswith("No, sorry!  All of these involve a pen")


def test_empty_chosen_turn_is_kept_as_preferred_empty_response(df, raw):
    empty_lines = [i for i, r in enumerate(raw, start=1) if not r["chosen"].rsplit("\n\nAssistant:", 1)[1].strip()]
    assert empty_lines == [87, 517, 926, 1104]
    for line in empty_lines:
        row = df.iloc[line - 1]
        chosen, rejected = ("response_a", "response_b") if row["label"] == "A" else ("response_b", "response_a")
        assert row[chosen] == ""  # the crowdworker preferred the empty turn
        assert row[rejected] and raw[line - 1]["rejected"].endswith(row[rejected])
    row = df.iloc[86]  # line 87: "Sorry, can you tell me address again?" / rejected "Sure, the address is ..."
    assert row["instruction"].endswith("Human: Sorry, can you tell me address again?")
    assert (row["response_a"], row["response_b"], row["label"]) == ("", "Sure, the address is ...", "A")
    row = df.iloc[925]  # line 926: "list of profane bad words" / rejected "Ok"
    assert (row["response_a"], row["response_b"], row["label"]) == ("Ok", "", "B")


def test_place_pair_is_deterministic():
    assert place_pair("x", "good", "bad") == place_pair("x", "good", "bad")
    outs = {place_pair(str(i), "good", "bad") for i in range(20)}
    assert outs == {("good", "bad", "A"), ("bad", "good", "B")}


def test_missing_rejected_names_field(tmp_path):
    p = tmp_path / "test.jsonl"
    p.write_text(json.dumps({"chosen": "\n\nHuman: hi\n\nAssistant: hello"}) + "\n")
    with pytest.raises(InvalidInput, match="rejected") as err:
        get_adapter("hh-rlhf").read(p)
    assert err.value.row == 1


def test_dialogue_without_assistant_turn_is_rejected(tmp_path):
    p = tmp_path / "test.jsonl"
    p.write_text(json.dumps({"chosen": "\n\nHuman: hi", "rejected": "\n\nHuman: yo"}) + "\n")
    with pytest.raises(InvalidInput, match="Assistant"):
        get_adapter("hh-rlhf").read(p)
