"""Name -> predictor class, loaded lazily so heavy optional packages are imported only when used.

``load_predictor("lite")`` uses a registered name; ``load_predictor("my_pkg.masks:MyPredictor")`` loads a
user's own :class:`~ivm_ros.models.base.MaskPredictor` subclass from a ``module:Class`` string.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from ivm_ros.models.base import MaskPredictor, PredictorConfig

#: Registered predictors: name -> "module:Class". Other issues add theirs here.
REGISTRY: dict[str, str] = {
    "keep_all": "ivm_ros.models.simple:KeepAllPredictor",
    "color_keyword": "ivm_ros.models.simple:ColorKeywordPredictor",
    "ivm": "ivm_ros.models.ivm.predictor:IVMPredictor",
    "lite": "ivm_ros.models.lite.predictor:LitePredictor",
}


class PredictorLoadError(RuntimeError):
    """A predictor name, class path or setting that cannot be used; the message says which."""


def register(name: str, target: str) -> None:
    """Adds or replaces a registry entry ``name -> "module:Class"``."""
    if ":" not in target:
        raise ValueError(f"predictor target must look like 'module:Class', got {target!r}")
    REGISTRY[name] = target


def available() -> list[str]:
    """Registered predictor names, sorted."""
    return sorted(REGISTRY)


def resolve_class(spec: str) -> type[MaskPredictor]:
    """Returns the predictor class for a registered name or a ``module:Class`` string."""
    target = REGISTRY.get(spec, spec)
    if ":" not in target:
        raise PredictorLoadError(f"unknown predictor {spec!r}: use one of {available()} or a 'module:Class' path")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PredictorLoadError(f"predictor {spec!r}: cannot import module {module_name!r}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise PredictorLoadError(f"predictor {spec!r}: module {module_name!r} has no attribute {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, MaskPredictor)):
        raise PredictorLoadError(f"predictor {spec!r}: {target} is not a MaskPredictor subclass")
    return cls


def config_fields(spec: str) -> dict[str, Any]:
    """The predictor's settings and their defaults, e.g. for declaring ROS parameters."""
    cls = resolve_class(spec)
    return {f.name: _default_of(f) for f in dataclasses.fields(cls.Config)}


def make_config(spec: str, values: dict[str, Any] | None = None) -> PredictorConfig:
    """Builds the predictor's config from defaults overridden by ``values``; unknown keys are an error."""
    cls = resolve_class(spec)
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise PredictorLoadError(f"predictor {spec!r} has no settings {unknown}; known: {sorted(known)}")
    return cls.Config(**values)


def load_predictor(spec: str, values: dict[str, Any] | None = None) -> MaskPredictor:
    """Instantiates a predictor by name or ``module:Class`` with the given settings."""
    cls = resolve_class(spec)
    return cls(make_config(spec, values))


def _default_of(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    raise PredictorLoadError(f"setting {field.name!r} has no default")
