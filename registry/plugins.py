"""One typed registry for pluggable parts (source adapters, backends, evaluators, metrics).

Entries are registered as lazy ``"module:attr"`` strings so that listing plugins never imports
torch, transformers or vLLM; third parties add entries through the entry-point group
``autorater.<kind>`` (e.g. ``autorater.sources``) in their package metadata.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from registry.errors import NotFound, RegistryError

T = TypeVar("T")


class PluginRegistry(Generic[T]):
    """Name → plugin, where a plugin is an object or a lazy ``"module:attr"`` reference."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._entry_points_loaded = False

    def register(self, name: str, target: T | str | None = None) -> Callable[[T], T] | None:
        """Register ``target`` under ``name``; without a target, act as a decorator."""
        if target is None:
            def decorator(obj: T) -> T:
                self._entries[name] = obj
                return obj
            return decorator  # type: ignore[return-value]
        self._entries[name] = target
        return None

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=f"autorater.{self.kind}"):
            self._entries.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        """Registered names, sorted (nothing is imported)."""
        self._load_entry_points()
        return sorted(self._entries)

    def in_order(self) -> list[str]:
        """Registered names in registration order, entry points after the built-in ones (nothing is
        imported): for registries whose order means something, like the order metrics are stored in."""
        self._load_entry_points()
        return list(self._entries)

    def get(self, name: str) -> T:
        """The plugin called ``name``, importing it on first use."""
        self._load_entry_points()
        if name not in self._entries:
            raise NotFound.named(self.kind.rstrip("s"), name, self._entries)
        target = self._entries[name]
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            try:
                obj = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise RegistryError(f"{self.kind} plugin {name!r} ({target}) cannot be loaded: {exc}") from exc
            self._entries[name] = obj
            return obj
        return target

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._entries
