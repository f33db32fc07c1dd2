"""A name -> class registry for plug-ins (mask predictors and policies), loaded lazily.

A registered name maps to a ``"module:Class"`` string that is imported only when used, so heavy optional
packages load only for the plug-in that needs them; a ``"module:Class"`` string that is not registered loads a
user's own class. Each class carries a dataclass ``Config`` whose fields are its settings. Standard library
only.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class PluginLoadError(RuntimeError):
    """A name, class path or setting that cannot be used; the message says which."""


class Registry(Generic[T]):
    """Names of ``base`` subclasses (``kind`` names them in messages, e.g. "policy")."""

    def __init__(self, kind: str, base: type[T], entries: dict[str, str], error: type[PluginLoadError]) -> None:
        self.kind, self.base, self.entries, self.error = kind, base, entries, error

    def register(self, name: str, target: str) -> None:
        """Adds or replaces an entry ``name -> "module:Class"``."""
        if ":" not in target:
            raise ValueError(f"{self.kind} target must look like 'module:Class', got {target!r}")
        self.entries[name] = target

    def available(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self.entries)

    def resolve_class(self, spec: str) -> type[T]:
        """The class for a registered name or a ``module:Class`` string."""
        target = self.entries.get(spec, spec)
        if ":" not in target:
            raise self.error(f"unknown {self.kind} {spec!r}: use one of {self.available()} or a 'module:Class' path")
        module_name, _, class_name = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise self.error(f"{self.kind} {spec!r}: cannot import module {module_name!r}: {exc}") from exc
        cls = getattr(module, class_name, None)
        if cls is None:
            raise self.error(f"{self.kind} {spec!r}: module {module_name!r} has no attribute {class_name!r}")
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise self.error(f"{self.kind} {spec!r}: {target} is not a {self.base.__name__} subclass")
        return cls

    def config_fields(self, spec: str) -> dict[str, Any]:
        """Settings and their defaults, e.g. for declaring ROS parameters."""
        cls = self.resolve_class(spec)
        return {f.name: self._default_of(f) for f in dataclasses.fields(cls.Config)}

    def make_config(self, spec: str, values: dict[str, Any] | None = None) -> Any:
        """The class's config from defaults overridden by ``values``; unknown keys are an error."""
        cls = self.resolve_class(spec)
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls.Config)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise self.error(f"{self.kind} {spec!r} has no settings {unknown}; known: {sorted(known)}")
        return cls.Config(**values)

    def load(self, spec: str, values: dict[str, Any] | None = None) -> T:
        """Instantiates a class by name or ``module:Class`` with the given settings."""
        return self.resolve_class(spec)(self.make_config(spec, values))

    def _default_of(self, field: dataclasses.Field) -> Any:
        if field.default is not dataclasses.MISSING:
            return field.default
        if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            return field.default_factory()  # type: ignore[misc]
        raise self.error(f"setting {field.name!r} has no default")
