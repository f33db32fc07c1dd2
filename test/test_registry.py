"""Predictor registry: names, module:Class strings, settings, and clear errors."""

from __future__ import annotations

import pytest
import torch

from ivm_ros.models import PredictorLoadError, available, config_fields, load_predictor, register
from ivm_ros.models.simple import ColorKeywordPredictor


def test_registered_names_load():
    assert {"keep_all", "color_keyword"} <= set(available())
    p = load_predictor("keep_all")
    out = p.predict(torch.zeros((2, 5, 6, 3), dtype=torch.uint8), ["a", "b"])
    assert out.shape == (2, 5, 6) and out.dtype == torch.float32 and bool((out == 1).all())


def test_module_class_string_and_settings():
    p = load_predictor("support.predictors:SlowCenterPredictorForTest", {"delay_s": 0.0})
    assert p.config.delay_s == 0.0
    assert config_fields("support.predictors:SlowCenterPredictorForTest") == {"device": "cpu", "delay_s": 0.05}


@pytest.mark.parametrize(
    "spec,values,match",
    [
        ("nope", None, "unknown predictor"),
        ("no_such_module_xyz:Cls", None, "cannot import"),
        ("support.predictors:Missing", None, "no attribute"),
        ("support.predictors:SlowConfig", None, "not a MaskPredictor"),
        ("keep_all", {"bogus": 1}, "no settings"),
        ("keep_all", {"device": "cuda:7"} if not torch.cuda.is_available() else {"device": "bad"}, "CUDA|device"),
    ],
)
def test_errors_are_specific(spec, values, match):
    with pytest.raises((PredictorLoadError, ValueError, RuntimeError), match=match):
        load_predictor(spec, values)


def test_register_validates_target():
    with pytest.raises(ValueError):
        register("x", "no_colon")


def test_color_keyword_finds_named_colours():
    img = torch.zeros((1, 4, 6, 3), dtype=torch.uint8)
    img[0, :, :3] = torch.tensor([220, 30, 30], dtype=torch.uint8)  # red left half
    img[0, :, 3:] = torch.tensor([30, 200, 40], dtype=torch.uint8)  # green right half
    p = ColorKeywordPredictor()
    red = p.predict(img, ["pick up the red cup"])[0]
    green = p.predict(img, ["place it on the GREEN pan"])[0]
    none = p.predict(img, ["pick up the cup"])[0]
    assert bool((red[:, :3] > 0.9).all()) and bool((red[:, 3:] == 0).all())
    assert bool((green[:, 3:] > 0.9).all()) and bool((green[:, :3] == 0).all())
    assert float(none.max()) == 0.0
