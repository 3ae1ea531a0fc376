"""Arrow column helpers every layer shares (no import of pyarrow here: callers that load lazily stay lazy)."""

from __future__ import annotations

from typing import Any


def one_array(values: Any) -> Any:
    """An Arrow column as one array: the chunk of a one-chunk ``ChunkedArray`` as it is
    (``combine_chunks`` would copy it — a text column is most of a table's bytes), several chunks
    combined; an ``Array`` (anything without chunks) unchanged."""
    chunks = getattr(values, "num_chunks", None)
    if chunks is None:
        return values
    return values.chunk(0) if chunks == 1 else values.combine_chunks()


__all__ = ["one_array"]
