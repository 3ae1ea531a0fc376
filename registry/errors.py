"""One error root with machine-readable codes.

Every error the product raises on purpose is a :class:`RegistryError`. Messages name the
offending thing (file, row, field, ``dataset@version``) and say what to do; the CLI maps the
``exit_code`` of each class to its process exit status and prints no traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class RegistryError(Exception):
    """Base of every error raised on purpose by the registry."""

    code: str = "registry_error"
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(RegistryError):
    """A named thing (dataset, version, source, checkpoint...) does not exist."""

    code = "not_found"
    exit_code = 3

    @classmethod
    def named(cls, kind: str, name: str, known: Iterable[str] = ()) -> NotFound:
        """Build a "no such X" error with a "did you mean ...?" hint from ``known`` names."""
        message = f"no {kind} named {name!r}"
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
        if close:
            message += f"; did you mean {', '.join(repr(c) for c in close)}?"
        return cls(message)


class AlreadyExists(RegistryError):
    """A unique name or content is already registered."""

    code = "already_exists"
    exit_code = 4


class InvalidInput(RegistryError):
    """Input data or arguments are malformed; names the file, row and field when known."""

    code = "invalid_input"
    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.row = row
        self.field = field
        self.hint = hint
        self.detail = message
        """The message without the file/row/field prefix and the hint."""
        where = []
        if self.file is not None:
            where.append(f"file {self.file}")
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        text = f"{', '.join(where)}: {message}" if where else message
        if hint:
            text += f" ({hint})"
        super().__init__(text)

    def in_file(self, file: str | Path) -> InvalidInput:
        """The same error, naming ``file`` (for errors raised by code that reads parsed records)."""
        return InvalidInput(self.detail, file=file, row=self.row, field=self.field, hint=self.hint)


class ValidationFailed(InvalidInput):
    """A dataset version failed its spec's expectations; carries the validation report."""

    code = "validation_failed"

    def __init__(self, message: str, *, report: dict | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.report = report or {}


class SchemaOutOfDate(RegistryError):
    """The database schema is older (or newer) than this code expects."""

    code = "schema_out_of_date"
    exit_code = 5


class StorageError(RegistryError):
    """The artifact store (Parquet files, DVC) failed."""

    code = "storage_error"
    exit_code = 6


class IntegrityError(StorageError):
    """A stored file no longer matches the content hash the database records for it (changed or
    truncated on disk); the message names the version or run and the file."""

    code = "integrity_error"
    exit_code = 8


class DatabaseError(RegistryError):
    """The database driver failed; the cause is chained."""

    code = "database_error"
    exit_code = 7


class BackendError(RegistryError):
    """A generation backend (a local model, a worker or server process, an HTTP API) failed;
    ``status`` is the last HTTP status (None for network and process errors)."""

    code = "backend_error"

    def __init__(self, message: str, *, status: int | None = None, retries: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.retries = retries


class BackendRequestRejected(BackendError):
    """The server refused a request (4xx other than 429): retrying would not help."""

    code = "backend_request_rejected"


class BackendUnavailable(BackendError):
    """The backend kept failing (429, 5xx, timeouts, connection errors until retries ran out, or a
    worker/server process that died or never became healthy)."""

    code = "backend_unavailable"
