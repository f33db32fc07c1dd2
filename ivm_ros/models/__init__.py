"""Mask predictors behind one interface (:class:`MaskPredictor`) and a name registry."""

from ivm_ros.models.base import MaskPredictor, PredictorConfig, resolve_device
from ivm_ros.models.registry import (
    REGISTRY,
    PredictorLoadError,
    available,
    config_fields,
    load_predictor,
    register,
    resolve_class,
)

__all__ = [
    "REGISTRY",
    "MaskPredictor",
    "PredictorConfig",
    "PredictorLoadError",
    "available",
    "config_fields",
    "load_predictor",
    "register",
    "resolve_class",
    "resolve_device",
]
