"""IVM-V1.0's release-exact settings and memory options on tiny CPU configurations (GPU checks skip without CUDA):
precision, padding side, PIL-exact resizing, LLaVA placement, bitsandbytes, tolerant loading of extra keys."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("transformers")
pytest.importorskip("peft")

from ivm_ros.models.ivm import checkpoint as ck
from ivm_ros.models.ivm.memory import bitsandbytes_config
from ivm_ros.models.ivm.model import _resize_like_pil
from ivm_ros.models.ivm.predictor import IVMConfig, IVMPredictor
from ivm_ros.models.ivm.tiny import build_tiny_sources, tiny_model

torch.set_num_threads(1)
TEXTS = ["pick up the red cup", "open the drawer and put the blue block in it"]
PHOTO = Path(__file__).resolve().parents[3] / "shared" / "images" / "robot.jpg"
HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return build_tiny_sources(tmp_path_factory.mktemp("ivm_tiny_release"))


@pytest.fixture(scope="module")
def frames():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (2, 48, 64, 3), dtype=torch.uint8, generator=g)


@pytest.fixture(scope="module")
def fp32_probs(frames):
    return IVMPredictor(IVMConfig(device="cpu", precision="fp32", merge_lora=False), model=tiny_model()).predict(
        frames, TEXTS
    )


def _predictor(**settings) -> IVMPredictor:
    return IVMPredictor(IVMConfig(device="cpu", **settings), model=tiny_model())


# ---------------------------------------------------------------- resizing as PIL does


def test_resize_is_within_one_grey_level_of_pil_on_a_photo():
    from PIL import Image

    photo = cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)  # 480x640
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for image in (photo, noise):
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        square = _resize_like_pil(x, (1024, 1024))
        pil = np.asarray(Image.fromarray(image).resize((1024, 1024), Image.BICUBIC), np.float32)
        assert np.abs(square[0].permute(1, 2, 0).numpy() - pil).max() <= 1.0
        clip = _resize_like_pil(torch.from_numpy(pil).permute(2, 0, 1)[None], (336, 336))
        pil_clip = np.asarray(Image.fromarray(pil.astype(np.uint8)).resize((336, 336), Image.BICUBIC), np.float32)
        assert np.abs(clip[0].permute(1, 2, 0).numpy() - pil_clip).max() <= 1.0
        # One pass without PIL's rounding between its passes is several levels off here: the check has teeth.
        one_pass = F.interpolate(x, (1024, 1024), mode="bicubic", antialias=True).clamp(0, 255).round()
        assert np.abs(one_pass[0].permute(1, 2, 0).numpy() - pil).max() >= 3


# ---------------------------------------------------------------- precision


def _dtypes(pred: IVMPredictor) -> dict[str, set[torch.dtype]]:
    m = pred.model
    groups: dict[str, set[torch.dtype]] = {"sam": set(), "decoder": set(), "proj": set(), "llava": set(), "lora": set()}
    for n, p in m.named_parameters():
        key = (
            "lora" if ".lora_" in n else "sam" if n.startswith("image_encoder.") else
            "decoder" if n.startswith("mask_decoder.") else "proj" if ".text_proj." in n else "llava"
        )
        groups[key].add(p.dtype)
    return groups


@pytest.mark.parametrize(
    "precision, sam, llava, merged, tolerance",
    [
        ("fp32", torch.float32, torch.float32, True, 1e-5),
        ("bf16", torch.bfloat16, torch.bfloat16, True, 0.01),
        ("fp16", torch.float16, torch.float16, True, 2e-3),
        ("release", torch.float32, torch.float16, False, 1e-4),
    ],
)
def test_precisions_cast_each_part_and_agree_with_fp32(frames, fp32_probs, precision, sam, llava, merged, tolerance):
    pred = _predictor(precision=precision)
    groups = _dtypes(pred)
    assert groups["sam"] == groups["decoder"] == groups["proj"] == {sam} and groups["llava"] == {llava}
    assert pred.model.prompt_encoder.lora_merged is merged
    assert groups["lora"] == (set() if merged else {torch.float32})  # separate LoRA stays float32, as peft keeps it
    probs = pred.predict(frames, TEXTS)
    assert probs.dtype == torch.float32 and torch.isfinite(probs).all()
    diff = float((probs - fp32_probs).abs().max())
    assert diff <= tolerance
    if precision != "fp32":
        assert diff > 0  # the lower precision is really used
    info = pred.describe()
    assert (info["precision"], info["lora_merged"]) == (precision, merged)


def test_merge_lora_false_keeps_bf16_lora_separate(frames, fp32_probs):
    merged, separate = _predictor(precision="bf16"), _predictor(precision="bf16", merge_lora=False)
    assert _dtypes(separate)["lora"] == {torch.float32} and not separate.model.prompt_encoder.lora_merged
    a, b = merged.predict(frames, TEXTS), separate.predict(frames, TEXTS)
    assert not torch.equal(a, b) and float((b - fp32_probs).abs().max()) < 0.05


def test_auto_and_the_earlier_dtype_name():
    assert _predictor().precision.name == "fp32"  # auto on the CPU
    assert IVMConfig(dtype="float16").precision == "fp16" and IVMConfig(dtype="bfloat16").precision == "bf16"


@pytest.mark.parametrize(
    "settings, needle",
    [
        ({"precision": "int8"}, "precision must be one of"),
        ({"dtype": "half"}, "dtype must be one of"),
        ({"dtype": "float16", "precision": "bf16"}, "contradicts precision"),
        ({"release_compat": True, "precision": "fp32"}, "release_compat sets precision"),
        ({"release_compat": True, "padding_side": "left"}, "release_compat sets precision"),
        ({"padding_side": "middle"}, "padding_side must be one of"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_settings_are_clear_value_errors(settings, needle):
    with pytest.raises(ValueError, match=needle):
        IVMConfig(**settings)


@pytest.mark.parametrize(
    "settings, needle",
    [
        ({"llava_placement": "disk"}, "llava_placement must be one of"),
        ({"llava_quantization": "2bit"}, "llava_quantization must be one of"),
        ({"llava_quantization": "8bit"}, "needs a CUDA device"),
    ],
)
def test_bad_memory_settings_are_clear_value_errors(settings, needle):
    with pytest.raises(ValueError, match=needle):
        _predictor(**settings)


def test_release_compat_sets_precision_and_padding(sources, frames):
    from ivm_ros.models.registry import load_predictor

    values = {"sam_checkpoint": str(sources["sam"]), "llava_path": str(sources["llava"]),
              "ivm_checkpoint": str(sources["ivm"]), "arch": "tiny", "device": "cpu", "release_compat": True}
    pred = load_predictor("ivm", values)
    info = pred.describe()
    assert (info["precision"], info["llava_dtype"], info["lora_merged"]) == ("release", "float16", False)
    assert info["padding_side"] == pred.model.prompt_encoder.tokenizer.padding_side == "right"  # the folder's own
    assert torch.isfinite(pred.predict(frames, TEXTS)).all()


# ---------------------------------------------------------------- padding side


def test_padding_side_per_batch():
    model = tiny_model()
    encoder = model.prompt_encoder
    frames = torch.randint(0, 256, (2, 48, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    short_alone = model.predict_proba(frames[:1], TEXTS[:1])
    assert encoder.tokenizer.padding_side == "right"  # the tokenizer is not modified
    for side, same in (("left", True), ("right", False), ("tokenizer", False)):
        encoder.padding_side = side
        ids, mask = encoder.tokenize(TEXTS, model.device)
        assert bool(mask[0, 0] == 0) is (side == "left")
        both = model.predict_proba(frames, TEXTS)
        # Right padding: the shorter row's position -2 is padding, as in the release with a right-padding tokenizer.
        assert torch.allclose(both[:1], short_alone, atol=1e-5) is same
    encoder.padding_side = "up"
    with pytest.raises(ValueError, match="padding_side must be one of"):
        encoder.tokenize(TEXTS, model.device)


# ---------------------------------------------------------------- memory options


@pytest.mark.parametrize("placement", ["cpu", "offload"])
def test_llava_placement_gives_the_same_probabilities(frames, fp32_probs, placement):
    pred = _predictor(precision="fp32", merge_lora=False, llava_placement=placement)
    llava = pred.model.prompt_encoder.llava
    assert pred.model.prompt_encoder.input_device == torch.device("cpu")
    if placement == "offload":  # weights live in accelerate's CPU map; the module holds meta tensors
        assert {p.device.type for p in llava.parameters()} == {"meta"}
    torch.testing.assert_close(pred.predict(frames, TEXTS), fp32_probs, rtol=0, atol=1e-6)
    assert pred.describe()["llava_placement"] == placement


@pytest.mark.skipif(HAS_BNB, reason="bitsandbytes is installed; this checks the message when it is missing")
def test_quantization_without_bitsandbytes_names_the_package(sources):
    from ivm_ros.install_hints import missing_module

    with pytest.raises(ModuleNotFoundError, match="needs the bitsandbytes package.*pip install bitsandbytes") as err:
        bitsandbytes_config("4bit", torch.float16)
    assert missing_module(err.value) == "bitsandbytes"
    with pytest.raises(ModuleNotFoundError, match="llava_quantization '8bit' needs the bitsandbytes package"):
        ck.load_llava(sources["llava"], torch.float16, torch.device("cpu"), ck.LoadReport(), "8bit")


# ---------------------------------------------------------------- extra keys in IVM-V1.0.bin


def _with_extra(sources, tmp_path, extra: dict[str, torch.Tensor]) -> Path:
    sd = torch.load(sources["ivm"], weights_only=True)
    sd.update(extra)
    path = tmp_path / "IVM-extra.bin"
    torch.save(sd, path)
    return path


def test_extra_keys_outside_the_model_are_listed_as_ignored(sources, tmp_path, frames):
    extra = {"discriminator_head.fc1.weight": torch.zeros(2, 2), "step": torch.tensor(7)}
    path = _with_extra(sources, tmp_path, extra)
    model, report = ck.load_release(sources["sam"], sources["llava"], path, arch="tiny")
    assert not report.fatal and report.ignored["ivm"] == 2
    assert sorted(report.ignored_keys) == ["ivm: discriminator_head.fc1.weight", "ivm: step"]
    assert "ignored keys: ivm: discriminator_head.fc1.weight" in report.summary()
    assert torch.equal(model.predict_proba(frames, TEXTS), tiny_model().predict_proba(frames, TEXTS))


@pytest.mark.parametrize(
    "key", ["mask_decoder.iou_token.weight", "prompt_encoder.text_proj.fc3.weight", "image_encoder.neck.0.weight"]
)
def test_unknown_keys_under_the_models_prefixes_are_refused(sources, tmp_path, key):
    with pytest.raises(ck.CheckpointError, match=f"unexpected: ivm: {key}".replace(".", r"\.")):
        ck.load_release(sources["sam"], sources["llava"], _with_extra(sources, tmp_path, {key: torch.zeros(1)}),
                        arch="tiny")


# ---------------------------------------------------------------- GPU (skipped without CUDA)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision, placement", [("release", "device"), ("bf16", "cpu"), ("bf16", "offload")])
def test_gpu_precision_and_placement(frames, fp32_probs, precision, placement):
    pred = IVMPredictor(IVMConfig(device="cuda", precision=precision, llava_placement=placement), model=tiny_model())
    probs = pred.predict(frames.cuda(), TEXTS)
    assert probs.device.type == "cuda" and pred.model.image_encoder.pos_embed.device.type == "cuda"
    assert float((probs.cpu() - fp32_probs).abs().max()) < 0.05


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and HAS_BNB), reason="needs CUDA and bitsandbytes")
@pytest.mark.parametrize("bits", ["8bit", "4bit"])
def test_gpu_bitsandbytes_llava(sources, frames, bits):
    cfg = IVMConfig(sam_checkpoint=str(sources["sam"]), llava_path=str(sources["llava"]),
                    ivm_checkpoint=str(sources["ivm"]), arch="tiny", device="cuda", llava_quantization=bits)
    pred = IVMPredictor(cfg)
    assert not pred.model.prompt_encoder.lora_merged
    probs = pred.predict(frames.cuda(), TEXTS)
    assert probs.shape == (2, 48, 64) and torch.isfinite(probs).all()
