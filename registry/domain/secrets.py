"""Secrets never go into a stored config: API keys, tokens and passwords stay in the environment.

:func:`refuse_secrets` is the one check (``evaluator create``, ``eval matrix --config``): a key named
like a secret (``api_key``, ``token``, ``secret``, ``password``, ``authorization``, ... in any case,
at any depth; a key ending in ``_env`` names an environment variable and is fine) or a value that
looks like a credential (``sk-…``, ``Bearer …``, ``hf_…``, ``ghp_…``, ``AKIA…``) is refused, and
the message never repeats the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from registry.errors import InvalidInput

_SECRET_WORDS = frozenset({"token", "secret", "password", "passwd", "passphrase", "authorization", "apikey",
                           "credential", "credentials", "cookie"})
_SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"),
                           ("auth", "token"), ("session", "key")})
_SECRET_VALUE = re.compile(
    r"\b(?:sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{16,}|gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{30,})"
    r"|\bBearer\s+[A-Za-z0-9._~+/=-]{16,}")

ENV_HINT = ("export the secret in an environment variable and name that variable in the config: the openai "
            "backend reads its key from the variable named by api_key_env, e.g. --config api_key_env=OPENAI_API_KEY")


def _words(key: str) -> list[str]:
    """``apiKey`` / ``API-Key`` / ``api_key`` → ``["api", "key"]``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def secret_key(key: str) -> bool:
    """Whether a config key is named like a secret: it ends in a secret word (``token``, ``password``,
    ``hf_token``) or pair (``api_key``). A key naming an environment variable (``…_env``) is not, nor
    one where the word only qualifies another (``logprob_token_ids``, ``token_budget``)."""
    words = _words(key)
    if not words or words[-1] == "env":
        return False
    return words[-1] in _SECRET_WORDS or tuple(words[-2:]) in _SECRET_PAIRS


def secret_value(value: str) -> bool:
    """Whether a text looks like a credential (an API key, a bearer token)."""
    return _SECRET_VALUE.search(value) is not None


def _walk(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """(dotted path, why) of every secret in a config value."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            path = f"{where}.{k}" if where else str(k)
            if secret_key(str(k)) and v not in (None, ""):
                yield path, "is named like a secret (an API key, token or password)"
            else:
                yield from _walk(v, path)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _walk(v, f"{where}.{i}" if where else str(i))
    elif isinstance(value, str) and secret_value(value):
        yield where, "holds a value that looks like an API key or token"


def refuse_secrets(config: Mapping[str, Any], *, what: str = "an evaluator's config") -> None:
    """Raise :class:`InvalidInput` (naming the key, never the value) when ``config`` holds a secret."""
    for path, why in _walk(config, ""):
        raise InvalidInput(f"config key {path!r} {why}: secrets are never stored in {what}; pass them "
                           "through the environment", field=path, hint=ENV_HINT)


__all__ = ["ENV_HINT", "refuse_secrets", "secret_key", "secret_value"]
