from registry.adapters.sources import get_adapter


def test_llmbar_catalog_reads_every_subset(data_root):
    adapter = get_adapter("llmbar")
    sizes = {}
    for d in adapter.catalog():
        df = adapter.read(data_root / d.path, **d.options)
        assert df["example_id"].is_unique
        assert set(df["label"]) <= {"A", "B"}
        assert (df["response_a"].str.len() > 0).all()
        sizes[d.name] = len(df)
    assert sizes == {
        "llmbar-natural": 100, "llmbar-adversarial-neighbor": 134, "llmbar-adversarial-gptinst": 92,
        "llmbar-adversarial-gptout": 47, "llmbar-adversarial-manual": 46,
        "mtbench-human": 200, "faireval": 66, "llmeval2": 200,
    }


def test_llmbar_label_mapping_matches_file(data_root):
    import json
    path = data_root / "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"
    raw = json.loads(path.read_text())
    df = get_adapter("llmbar").read(path)
    assert list(df["label"]) == [{1: "A", 2: "B"}[r["label"]] for r in raw]
    assert list(df["response_b"]) == [r["output_2"] for r in raw]
