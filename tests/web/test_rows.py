"""Rows of a dataset version (``Registry.rows``, ``/api/v1/datasets/{ref}/rows``, the rows page) read page by
page: the same answers as filtering and slicing the whole version (how they were computed before), on real
LLMBar data, without reading the whole file once it has been checked."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from registry.domain.serialization import to_jsonable

API = "/api/v1"


def whole(reg, ref: str, offset: int, limit: int, conditions: dict[str, str]) -> tuple[int, list[dict]]:
    """The page as the whole table filtered and sliced (the former implementation)."""
    table = reg.load_table(ref)
    mask = None
    for column, value in conditions.items():
        col = table.column(column)
        if not pa.types.is_string(col.type):
            col = pc.cast(col, pa.string())
        hit = pc.fill_null(pc.equal(col, value), False)
        mask = hit if mask is None else pc.and_(mask, hit)
    if mask is not None:
        table = table.filter(mask)
    return table.num_rows, table.slice(offset, limit).to_pylist() if offset < table.num_rows else []


@pytest.mark.parametrize("conditions", [{}, {"label": "A"}, {"label": "B"}, {"label": "C"}],
                         ids=["all", "label-A", "label-B", "no-match"])
def test_pages_equal_the_whole_version_filtered(web_registry, conditions):
    reg = web_registry.reg
    for ref in (web_registry.natural_v1, web_registry.natural_v2, web_registry.gptout):
        n = reg.dataset(ref).version.row_count
        for offset, limit in ((0, 50), (7, 13), (n - 5, 50), (n, 10), (n + 20, 5), (0, n + 1), (33, 1)):
            label = conditions.get("label")
            got = reg.rows(ref, offset=offset, limit=limit, label=label)
            total, rows = whole(reg, ref, offset, limit, conditions)
            assert (got.total, list(got.rows)) == (total, rows), (ref, offset, limit, conditions)
            assert got.of == ref and got.offset == offset and got.limit == limit


def test_a_slice_on_a_number_column_and_a_label(web_registry):
    reg = web_registry.reg
    ref = web_registry.natural_v2
    columns = reg.load_table(ref).column_names
    assert "example_id" in columns
    some = reg.load_table(ref).column("example_id")[17].as_py()
    got = reg.rows(ref, where={"example_id": str(some)})
    assert got.total == 1 and got.rows[0]["example_id"] == some
    both = reg.rows(ref, offset=3, limit=9, label="A", where={"label": "A"})
    assert (both.total, list(both.rows)) == whole(reg, ref, 3, 9, {"label": "A"})
    with pytest.raises(Exception, match="no column 'bananas'") as err:
        reg.rows(ref, where={"bananas": "1"})
    assert getattr(err.value, "field", None) == "slice"


def test_the_api_and_the_page_answer_from_the_paged_read(client, web_registry):
    reg, ref = web_registry.reg, web_registry.natural_v2
    body = client.get(f"{API}/datasets/{ref}/rows", params={"limit": 11, "label": "B"}).json()
    total, rows = whole(reg, ref, 0, 11, {"label": "B"})
    assert body["total"] == total and body["rows"] == to_jsonable(rows)
    assert body == {**to_jsonable(reg.rows(ref, limit=11, label="B")), "next_cursor": body["next_cursor"]}
    page = client.get(f"/rows/{ref}", params={"label": "B"})
    assert page.status_code == 200 and str(rows[0]["example_id"]) in page.text


def test_a_checked_file_is_not_read_whole_again(web_registry, monkeypatch):
    """After the first (checking) read in this process, a page reads no whole table."""
    from registry.services import datasets

    reg, ref = web_registry.reg, web_registry.gptout
    reg.rows(ref, limit=5)                                   # checked now (if it was not before)
    whole_reads: list[str] = []
    monkeypatch.setattr(datasets, "_rows_of", lambda *a, **k: whole_reads.append("read") or pytest.fail("whole"))
    read = pq.ParquetFile.read
    columns_read: list = []

    def spy(self, columns=None, **kwargs):
        columns_read.append(columns)
        return read(self, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read", spy)
    assert len(reg.rows(ref, offset=10, limit=5).rows) == 5
    assert reg.rows(ref, limit=5, label="A").total > 0
    assert whole_reads == [] and columns_read == [["label"]]   # only the filter column, read whole


def test_rows_at_reads_across_row_groups(web_registry, tmp_path, monkeypatch):
    """The page reader on a file of many small row groups (stored versions have 128K-row groups) and small
    batches: every choice of positions gives the rows of ``take``."""
    import numpy as np

    from registry.services import datasets

    table = web_registry.reg.load_table(web_registry.natural_v2)
    path = tmp_path / "groups.parquet"
    pq.write_table(table, path, row_group_size=23)
    monkeypatch.setattr(datasets, "ROWS_BATCH", 5)
    rng = np.random.default_rng(0)
    with pq.ParquetFile(path) as f:
        assert f.metadata.num_row_groups > 3
        for wanted in (np.arange(0, 10), np.arange(20, 50), np.array([0, 22, 23, 24, 45, 46, table.num_rows - 1]),
                       np.sort(rng.choice(table.num_rows, 40, replace=False)), np.array([], dtype=np.int64)):
            assert datasets._rows_at(f, wanted) == table.take(wanted).to_pylist()
