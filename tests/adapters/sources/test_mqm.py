import json

import pytest

from registry.adapters.sources import COLUMNS, get_adapter
from registry.errors import InvalidInput


def _read(data_root, name):
    adapter = get_adapter("wmt-mqm")
    d = adapter.dataset_def(name)
    return adapter.read(data_root / d.path, **d.options)


def test_mqm_catalog_reads_both_pairs(data_root):
    adapter = get_adapter("wmt-mqm")
    sizes = {}
    for d in adapter.catalog():
        df = adapter.read(data_root / d.path, **d.options)
        assert d.scale == (-25.0, 0.0)
        assert list(df.columns) == list(COLUMNS["pointwise"])
        assert df["example_id"].is_unique
        assert df["score"].between(-25, 0).all() and (df["criterion"] == "mqm").all()
        assert not df["response"].str.contains("<v>|</v>").any()
        assert not df["instruction"].str.contains("<v>|</v>").any()
        assert (df["num_annotators"] == 1).all()
        sizes[d.name] = (len(df), df["system_id"].nunique(), int((df["score"] == 0).sum()))
    # 529 segments x 14 / 15 systems; score 0 = the file's No-error rows
    assert sizes == {"wmt-mqm-ted-en-de": (7406, 14, 4404), "wmt-mqm-ted-zh-en": (7935, 15, 4297)}


def test_mqm_system_scores_match_published(data_root):
    # system-level MQM in the source README's TED tables (2 decimals; SMU has 3 there)
    published = {
        "wmt-mqm-ted-en-de": {"ref": 0.91, "Facebook-AI": 1.06, "Online-W": 1.12, "metricsystem3": 1.44,
                              "eTranslation": 1.96, "Nemo": 2.14},
        "wmt-mqm-ted-zh-en": {"refB": 0.42, "DIDI-NLP": 1.65, "SMU": 2.202, "Online-W": 2.93, "ref": 5.52},
    }
    for name, table in published.items():
        mqm = -_read(data_root, name).groupby("system_id")["score"].mean()
        for system, value in table.items():
            assert mqm[system] == pytest.approx(value, abs=0.01), (name, system)


def test_mqm_segment_scores_and_weights(data_root):
    df = _read(data_root, "wmt-mqm-ted-en-de").set_index("example_id")
    # the source's published avg_seg_scores: Minor punctuation weighs 0.1
    assert df.loc["116:Facebook-AI", "score"] == -0.2  # 2 x Minor Fluency/Punctuation
    assert df.loc["545:Facebook-AI", "score"] == -3.1  # 3 x Minor + 1 x Minor punctuation
    assert df.loc["17:Facebook-AI", "score"] == -10.0  # 2 x Major
    row = df.loc["1:Facebook-AI"]
    assert list(row["annotator_scores"]) == [-1.0] and row["system_id"] == "Facebook-AI"
    assert row["category"] == "talk.1"
    meta = json.loads(row["metadata"])
    assert meta["raters"] == ["rater1"]
    assert meta["errors"] == [{"rater": "rater1", "category": "Terminology/Inappropriate for context",
                               "severity": "Minor", "span": "in Betracht zu ziehen", "side": "target"}]
    assert row["response"].startswith("Ich möchte Sie alle bitten, für eine Sekunde die sehr einfache "
                                      "Tatsache in Betracht zu ziehen")


def test_mqm_fields_starting_with_a_quote_are_not_csv_quoted(data_root):
    df = _read(data_root, "wmt-mqm-ted-zh-en").set_index("example_id")
    assert df.loc["477:refB", "response"] == '"Why does it do this," I hear you ask.'
    assert df.loc["477:refB", "score"] == 0.0
    assert df.loc["487:Facebook-AI", "score"] == -5.0
    assert df.loc["84:Borderline", "score"] == -20.0


HEADER = "system\tdoc\tdoc_id\tseg_id\trater\tsource\ttarget\tcategory\tseverity\n"


def test_mqm_bad_input(tmp_path):
    adapter = get_adapter("wmt-mqm")
    path = tmp_path / "mqm.tsv"
    path.write_text(HEADER + "sys\tt1\t1\t1\tr1\tsrc\ttgt\tAccuracy/Mistranslation\tCritical\n")
    with pytest.raises(InvalidInput, match="field 'severity'"):
        adapter.read(path)
    path.write_text(HEADER.replace("\tseverity", "") + "sys\tt1\t1\t1\tr1\tsrc\ttgt\tOther\n")
    with pytest.raises(InvalidInput, match="field 'severity'.*missing column"):
        adapter.read(path)
    path.write_text(HEADER + "sys\tt1\t1\t1\tr1\tsrc\ttgt\tOther\n")
    with pytest.raises(InvalidInput, match="row 2"):
        adapter.read(path)
    path.write_text(HEADER + "sys\tt1\t1\t1\tr1\tsrc\ttgt\tNon-translation!\tMajor\n"
                    + "sys\tt1\t1\t1\tr1\tsrc\ttgt\tOther\tMinor\n")
    with pytest.raises(InvalidInput, match="exceeds 25"):
        adapter.read(path)
    path.write_bytes(HEADER.encode() + "sys\tt1\t1\t1\tr1\tsr\xe9\ttgt\tOther\tMinor\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match="not valid UTF-8"):
        adapter.read(path)
