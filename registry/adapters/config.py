"""Typed plugin configs: what an evaluator plugin or a generation backend accepts.

Each plugin declares a :class:`PluginConfig` subclass (a frozen pydantic model that forbids unknown
keys) listing its keys with their types, defaults, ranges and allowed values (``Literal`` for
closed vocabularies). :meth:`PluginConfig.parse` turns a user's mapping into one, or raises
:class:`~registry.errors.InvalidInput` naming the key and the allowed keys or values;
:meth:`PluginConfig.canonical` is the form that identifies it (the evaluator hash is computed from
it, :func:`registry.adapters.evaluators.canonical_config`):

* validated values (``"8"`` → ``8``, a list → the declared tuple),
* keys at their default left out, so writing a default out or leaving it out is one config — and
  a config written without defaults keeps the exact form (and hash) it had before configs were typed,
* numbers as RFC 8785 (JSON canonicalization) writes them: an integral float is an integer, so ``1``
  and ``1.0`` for a float key are one config,
* keys sorted.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from registry.errors import InvalidInput


def _no_bool(value: Any) -> Any:
    """``True`` is not the number 1 in a config (pydantic would take it as one)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    return value


PositiveInt = Annotated[int, BeforeValidator(_no_bool), Field(gt=0)]
NonNegativeInt = Annotated[int, BeforeValidator(_no_bool), Field(ge=0)]
PositiveFloat = Annotated[float, BeforeValidator(_no_bool), Field(gt=0)]
NonNegativeFloat = Annotated[float, BeforeValidator(_no_bool), Field(ge=0)]
Seed = Annotated[int, BeforeValidator(_no_bool)]
Port = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=65535)]

_DEVICE = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")


def _device(value: str) -> str:
    if not _DEVICE.match(value):
        raise ValueError(f"unknown device {value!r}; expected 'cpu', 'cuda', 'cuda:N' or 'auto'")
    return value


DeviceName = Annotated[str, AfterValidator(_device)]
"""``cpu`` | ``cuda`` | ``cuda:N`` | ``auto`` (CUDA when available); see
:func:`registry.adapters.models.local.resolve_device`."""


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError("'env' must be a mapping of environment variables")
    return {str(k): str(v) for k, v in value.items()}


EnvVars = Annotated[dict[str, str], BeforeValidator(_env)]
"""Extra environment variables of a child process (values written as strings)."""


def canonical_json(value: Any) -> Any:
    """``value`` (JSON data) with every integral float written as an integer (RFC 8785 §3.2.2.3
    writes the number 1.0 as ``1``) and mappings' keys sorted."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): canonical_json(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [canonical_json(v) for v in value]
    return value


class PluginConfig(BaseModel):
    """Base of every plugin's config: frozen, unknown keys refused, numbers not taken from booleans.

    Subclasses add their keys as annotated fields with defaults (a field without a default is a
    required key) and a docstring per field."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    what: ClassVar[str] = "plugin"
    """How messages name the plugin (``"backend 'openai'"``, ``"evaluator kind 'random'"``)."""

    @classmethod
    def keys(cls) -> list[str]:
        """The keys this config accepts, sorted."""
        return sorted(cls.model_fields)

    @classmethod
    def parse(cls, data: Mapping[str, Any] | PluginConfig | None = None, *, what: str | None = None) -> Self:
        """``data`` validated into this config (an instance of it is returned as it is); ``what``
        names the plugin in messages (default :attr:`what`).

        Raises :class:`InvalidInput` naming the first offending key: an unknown key (with the
        allowed keys and a "did you mean"), a missing required key, a value of the wrong type, out of
        range or not among the allowed values (with the allowed values)."""
        if isinstance(data, cls):
            return data
        if isinstance(data, PluginConfig):
            data = data.model_dump()
        if data is not None and not isinstance(data, Mapping):
            raise InvalidInput(f"the config of {what or cls.what} must be a mapping of keys to values, got {data!r}")
        try:
            return cls.model_validate(dict(data or {}))
        except ValidationError as exc:
            raise config_error(cls, exc, what=what) from None

    def canonical(self) -> dict[str, Any]:
        """The canonical JSON form (module docstring): validated, defaults left out, sorted."""
        return canonical_json(self.model_dump(mode="json", exclude_defaults=True))

    def to_dict(self) -> dict[str, Any]:
        """Every key with its value, defaults included (Python objects, not JSON)."""
        return self.model_dump()


def config_error(cls: type[PluginConfig], exc: ValidationError, *, what: str | None = None,
                 allowed: list[str] | None = None) -> InvalidInput:
    """The :class:`InvalidInput` of the first error of ``exc`` (see :meth:`PluginConfig.parse`);
    ``allowed``: the keys to list for an unknown one (default: ``cls``'s)."""
    what = what or cls.what
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = [str(p) for p in err.get("loc", ())]
    key = ".".join(loc) if loc else None
    kind = err.get("type", "")
    allowed = sorted(allowed) if allowed is not None else cls.keys()
    if kind == "extra_forbidden":
        message = f"unknown key {loc[-1]!r} for {what}; allowed keys: {', '.join(allowed)}"
        close = difflib.get_close_matches(loc[-1], allowed, n=2, cutoff=0.6)
        if close:
            message += f"; did you mean {', '.join(repr(c) for c in close)}?"
    elif kind == "missing":
        message = f"{what} needs {key!r}"
    elif kind in ("literal_error", "enum"):
        message = f"{err.get('input')!r} is not allowed; allowed values: {err.get('ctx', {}).get('expected')}"
    elif kind == "value_error":
        # our own validators write whole sentences (and never echo a value that may be a secret)
        message = str(err.get("ctx", {}).get("error") or err.get("msg"))
    else:
        message = f"{err.get('msg', 'invalid value')}, got {err.get('input')!r}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return InvalidInput(message, field=key)


class LocalModelConfig(PluginConfig):
    """Keys of a backend that runs a local model folder (a registered checkpoint)."""

    model: str | None = None
    """The local model folder (safetensors weights, a tokenizer with a chat template); an llm-judge
    of a registered checkpoint sets it to the checkpoint's folder when a run starts."""


__all__ = ["DeviceName", "EnvVars", "LocalModelConfig", "NonNegativeFloat", "NonNegativeInt", "PluginConfig", "Port",
           "PositiveFloat", "PositiveInt", "Seed", "canonical_json", "config_error"]
