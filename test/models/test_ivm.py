"""IVM-V1.0 on the CPU with tiny offline configurations: shapes, exact key mapping, loading, safety, engine."""

from __future__ import annotations

import json
import math
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("transformers")
pytest.importorskip("peft")

from ivm_ros.models.ivm import checkpoint as ck
from ivm_ros.models.ivm.decoder import ConditionedMaskDecoder
from ivm_ros.models.ivm.image_encoder import (
    Attention,
    ImageEncoderViT,
    get_rel_pos,
    window_partition,
    window_unpartition,
)
from ivm_ros.models.ivm.model import ARCHS
from ivm_ros.models.ivm.prompt_encoder import Mlp
from ivm_ros.models.ivm.tiny import build_tiny_sources, release_state_dicts, tiny_model
from ivm_ros.models.ivm.transformer import TwoWayTransformer

torch.set_num_threads(2)
TEXTS = ["pick up the red cup", "open the drawer and put the blue block in it"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return build_tiny_sources(tmp_path_factory.mktemp("ivm_tiny"))


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def frames():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (2, 48, 64, 3), dtype=torch.uint8, generator=g)


# ---------------------------------------------------------------- architecture and names (release layout)


def sam_image_encoder_keys(depth: int) -> set[str]:
    """image_encoder.* names as in sam_vit_h_4b8939.pth, written out by hand from Meta's module tree."""
    keys = {
        "patch_embed.proj.weight",
        "patch_embed.proj.bias",
        "pos_embed",
        "neck.0.weight",
        "neck.1.weight",
        "neck.1.bias",
        "neck.2.weight",
        "neck.3.weight",
        "neck.3.bias",
    }
    for i in range(depth):
        for leaf in (
            "norm1.weight",
            "norm1.bias",
            "attn.qkv.weight",
            "attn.qkv.bias",
            "attn.proj.weight",
            "attn.proj.bias",
            "attn.rel_pos_h",
            "attn.rel_pos_w",
            "norm2.weight",
            "norm2.bias",
            "mlp.lin1.weight",
            "mlp.lin1.bias",
            "mlp.lin2.weight",
            "mlp.lin2.bias",
        ):
            keys.add(f"blocks.{i}.{leaf}")
    return {"image_encoder." + k for k in keys}


def release_decoder_keys() -> set[str]:
    """mask_decoder.* names of IVM-V1.0.bin, written out by hand from the release's ConditionedMaskDecoder."""
    keys = {
        "pe_layer.positional_encoding_gaussian_matrix",
        "mask_tokens.weight",
        "transformer.norm_final_attn.weight",
        "transformer.norm_final_attn.bias",
    }
    attn = [f"{p}.{t}" for p in ("q_proj", "k_proj", "v_proj", "out_proj") for t in ("weight", "bias")]
    keys |= {f"transformer.final_attn_token_to_image.{a}" for a in attn}
    for i in range(2):
        for m in ("self_attn", "cross_attn_token_to_image", "cross_attn_image_to_token"):
            keys |= {f"transformer.layers.{i}.{m}.{a}" for a in attn}
        for n in ("norm1", "norm2", "norm3", "norm4"):
            keys |= {f"transformer.layers.{i}.{n}.weight", f"transformer.layers.{i}.{n}.bias"}
        keys |= {f"transformer.layers.{i}.mlp.{lin}.{t}" for lin in ("lin1", "lin2") for t in ("weight", "bias")}
    keys |= {f"output_upscaling.{j}.{t}" for j in (0, 1, 3) for t in ("weight", "bias")}
    keys |= {f"output_hypernetworks_mlps.layers.{j}.{t}" for j in range(3) for t in ("weight", "bias")}
    return {"mask_decoder." + k for k in keys}


def test_full_size_vit_h_names_and_shapes():
    with torch.device("meta"):
        enc = ImageEncoderViT()  # IVM-V1.0 defaults: ViT-H
    sd = enc.state_dict()
    assert {"image_encoder." + k for k in sd} == sam_image_encoder_keys(32)
    assert len(sd) == 457
    assert tuple(sd["pos_embed"].shape) == (1, 64, 64, 1280)
    assert tuple(sd["blocks.0.attn.rel_pos_h"].shape) == (27, 80)  # window 14
    assert tuple(sd["blocks.7.attn.rel_pos_h"].shape) == (127, 80)  # global at 7/15/23/31
    assert tuple(sd["blocks.31.attn.rel_pos_w"].shape) == (127, 80)
    assert [b.window_size for b in enc.blocks].count(0) == 4
    assert tuple(sd["neck.2.weight"].shape) == (256, 256, 3, 3)
    assert 630e6 < sum(p.numel() for p in enc.parameters()) < 640e6  # SAM ViT-H image encoder: ~637 M


def test_full_size_trained_parts_count_16_6m():
    """Decoder + text_proj + LoRA(r 8 on 32 x q/v of 4096) = the release's ~16.6 M trained parameters."""
    with torch.device("meta"):
        dec = ConditionedMaskDecoder(transformer_dim=256, transformer=TwoWayTransformer(2, 256, 8, 2048))
        proj = Mlp(4096, 2048, 256)
    assert {"mask_decoder." + k for k in dec.state_dict()} == release_decoder_keys()
    lora = 32 * 2 * (8 * 4096 + 4096 * 8)
    total = sum(p.numel() for p in dec.parameters()) + sum(p.numel() for p in proj.parameters()) + lora
    assert total == 16_614_784


def test_tiny_names_match_release_layout(model):
    sd = model.state_dict()
    enc = {k for k in sd if k.startswith("image_encoder.")}
    assert enc == sam_image_encoder_keys(ARCHS["tiny"].vit_depth)
    assert {k for k in sd if k.startswith("mask_decoder.")} == release_decoder_keys()
    _, ivm = release_state_dicts(model)
    lora = sorted(k for k in ivm if ".lora_" in k)
    assert (
        lora[0]
        == "prompt_encoder.model.base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_A.default.weight"
    )
    assert len(lora) == 2 * 2 * 2  # layers x (q, v) x (A, B); no vision-tower or projector LoRA
    assert {"prompt_encoder.text_proj.fc1.weight", "prompt_encoder.text_proj.fc2.bias"} <= set(ivm)
    mapped, unknown = ck.map_release_keys(ivm)
    assert not unknown and set(mapped) == set(ck.trained_keys(model))


# ---------------------------------------------------------------- numerics against SAM's explicit formulas


def test_window_partition_roundtrip_with_padding():
    x = torch.randn(2, 5, 7, 3)
    win, pad = window_partition(x, 3)
    assert win.shape == (2 * 2 * 3, 3, 3, 3) and pad == (6, 9)
    assert torch.equal(window_unpartition(win, 3, pad, (5, 7)), x)


def test_sdpa_attention_equals_sams_explicit_softmax():
    torch.manual_seed(0)
    attn = Attention(16, num_heads=2, use_rel_pos=True, input_size=(4, 5))
    torch.nn.init.normal_(attn.rel_pos_h)
    torch.nn.init.normal_(attn.rel_pos_w)
    x = torch.randn(2, 4, 5, 16)
    b, h, w, _ = x.shape
    qkv = attn.qkv(x).reshape(b, h * w, 3, 2, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.reshape(3, b * 2, h * w, -1).unbind(0)
    logits = (q * attn.scale) @ k.transpose(-2, -1)
    rh, rw = get_rel_pos(h, h, attn.rel_pos_h), get_rel_pos(w, w, attn.rel_pos_w)
    r_q = q.reshape(b * 2, h, w, -1)
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, rh)
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, rw)
    logits = (logits.view(b * 2, h, w, h, w) + rel_h[..., None] + rel_w[..., None, :]).view(b * 2, h * w, h * w)
    ref = (logits.softmax(-1) @ v).view(b, 2, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
    torch.testing.assert_close(attn(x), attn.proj(ref), rtol=1e-5, atol=1e-5)


def test_prompt_position_is_hidden_states_minus_one_at_minus_two(model, frames):
    pe = model.prompt_encoder
    assert pe.prompts(["x"])[0] == "USER: " + "<image>" * pe.num_image_tokens + "\nx \n ASSISTANT:"
    _sam_in, clip_in = model.preprocess(frames)
    ids, mask = pe.tokenize(TEXTS, model.device)
    assert (mask[:, -1] == 1).all() and (mask[0, 0] == 0)  # left padded: position -2 is real text in every row
    with torch.no_grad():
        out = pe.llava(input_ids=ids, pixel_values=clip_in, attention_mask=mask, output_hidden_states=True)
        ref = pe.text_proj(out.hidden_states[-1][:, -2:-1])
        torch.testing.assert_close(pe(clip_in, ids, mask), ref)


# ---------------------------------------------------------------- whole model


def test_shapes_range_and_determinism(model, frames):
    p1 = model.predict_proba(frames, TEXTS)
    p2 = model.predict_proba(frames, TEXTS)
    assert p1.shape == (2, 48, 64) and p1.dtype == torch.float32
    assert 0.0 <= float(p1.min()) and float(p1.max()) <= 1.0
    assert torch.equal(p1, p2)
    with torch.no_grad():
        sam_in, clip_in = model.preprocess(frames)
        assert sam_in.shape == (2, 3, 64, 64) and clip_in.shape == (2, 3, 28, 28)
        ids, mask = model.prompt_encoder.tokenize(TEXTS, model.device)
        assert model(sam_in, clip_in, ids, mask).shape == (2, 1, 16, 16)  # 4x the 4x4 embedding grid


def test_instruction_changes_mask_and_batch_independence(model, frames):
    both = model.predict_proba(frames, TEXTS)
    alone = model.predict_proba(frames[:1], TEXTS[:1])
    torch.testing.assert_close(both[:1], alone, rtol=0, atol=1e-5)
    other = model.predict_proba(frames[:1], ["push the button"])
    assert not torch.allclose(alone, other)


def test_device_resize_matches_pil_bicubic(model, frames):
    from PIL import Image

    sam_in, _ = model.preprocess(frames[:1])
    pil = np.asarray(Image.fromarray(frames[0].numpy()).resize((64, 64), Image.BICUBIC), np.float32)
    ours = (sam_in[0] * model.pixel_std[0] + model.pixel_mean[0]).permute(1, 2, 0).numpy() * 255.0
    assert np.abs(ours - pil).max() <= 1.01  # within one grey level of PIL


def test_merge_lora_and_bf16_dtype_handling(frames):
    m = tiny_model()
    ref = m.predict_proba(frames, TEXTS)
    m.prompt_encoder.merge_lora()
    torch.testing.assert_close(m.predict_proba(frames, TEXTS), ref, rtol=0, atol=1e-5)
    m.to(torch.bfloat16)
    low = m.predict_proba(frames, TEXTS)
    assert low.dtype == torch.float32 and low.shape == ref.shape
    assert float((low - ref).abs().max()) < 0.05


# ---------------------------------------------------------------- loading the release files


def test_load_release_exact(sources, model, frames):
    loaded, report = ck.load_release(sources["sam"], sources["llava"], sources["ivm"], arch="tiny")
    assert not report.fatal and not report.notes
    assert report.ignored["sam"] == 3  # SAM's own prompt encoder / mask decoder / pixel_mean
    assert report.loaded["sam"] == len(sam_image_encoder_keys(ARCHS["tiny"].vit_depth))
    assert report.loaded["ivm"] == len(ck.trained_keys(model))
    assert torch.equal(loaded.predict_proba(frames, TEXTS), model.predict_proba(frames, TEXTS))


def _bad_ivm(sources, tmp_path, edit):
    sd = torch.load(sources["ivm"], weights_only=True)
    edit(sd)
    path = tmp_path / "IVM-edited.bin"
    torch.save(sd, path)
    return path


def test_missing_unexpected_and_shape_errors_name_the_key(sources, tmp_path):
    lora = "prompt_encoder.model.base_model.model.language_model.model.layers.1.self_attn.v_proj.lora_B.default.weight"
    cases = {
        "missing: ivm: prompt_encoder.model": lambda sd: sd.pop(lora),
        "unexpected: ivm: prompt_encoder.bogus": lambda sd: sd.__setitem__("prompt_encoder.bogus", torch.zeros(1)),
        "shape: ivm: mask_decoder.mask_tokens.weight": lambda sd: sd.__setitem__(
            "mask_decoder.mask_tokens.weight", torch.zeros(2, 32)
        ),
    }
    for needle, edit in cases.items():
        with pytest.raises(ck.CheckpointError, match=needle.replace(".", r"\.")):
            ck.load_release(sources["sam"], sources["llava"], _bad_ivm(sources, tmp_path, edit), arch="tiny")


def test_new_transformers_lora_layout_and_missing_pe_buffer(sources, tmp_path, frames):
    def edit(sd):
        for k in [k for k in sd if ".lora_" in k]:
            sd[k.replace("base_model.model.language_model.model.", "base_model.model.model.language_model.")] = sd.pop(
                k
            )
        sd.pop(ck.PE_KEY)

    _m, report = ck.load_release(sources["sam"], sources["llava"], _bad_ivm(sources, tmp_path, edit), arch="tiny")
    assert not report.fatal and len(report.notes) == 1 and ck.PE_KEY in report.notes[0]


def test_pickle_carrying_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = tmp_path / "IVM-evil.bin"
    with open(path, "wb") as f:
        pickle.dump({"mask_decoder.mask_tokens.weight": Evil()}, f)
    with pytest.raises(ck.UnsafeCheckpointError, match="refused"):
        ck.safe_load_state_dict(path)
    assert not marker.exists()
    torch.save({"x": Evil()}, tmp_path / "evil_zip.pth")
    with pytest.raises(ck.UnsafeCheckpointError):
        ck.safe_load_state_dict(tmp_path / "evil_zip.pth")
    assert not marker.exists()


def test_convert_command_roundtrip(sources, model, frames, tmp_path):
    from ivm_ros.commands.cli import main as cli

    out = tmp_path / "ivm_tiny.safetensors"
    rc = cli(
        [
            "ivm-convert",
            "--sam",
            str(sources["sam"]),
            "--llava",
            str(sources["llava"]),
            "--ivm",
            str(sources["ivm"]),
            "--out",
            str(out),
            "--arch",
            "tiny",
        ]
    )
    assert rc == 0 and out.is_file()
    loaded, report = ck.load_converted(out)
    assert not report.fatal
    # The converted file keeps LLaVA in fp16 (as the release ran it), hence the small tolerance.
    assert loaded.prompt_encoder.llava.dtype == torch.float32  # loaded as asked
    torch.testing.assert_close(
        loaded.predict_proba(frames, TEXTS), model.predict_proba(frames, TEXTS), rtol=0, atol=1e-4
    )


# ---------------------------------------------------------------- the registered predictor


def test_registered_predictor(sources, model, frames):
    from ivm_ros.models.registry import config_fields, load_predictor

    fields = config_fields("ivm")
    assert {"sam_checkpoint", "llava_path", "ivm_checkpoint", "device", "dtype", "batch_size"} <= set(fields)
    values = {
        "sam_checkpoint": str(sources["sam"]),
        "llava_path": str(sources["llava"]),
        "ivm_checkpoint": str(sources["ivm"]),
        "arch": "tiny",
        "device": "cpu",
        "batch_size": 1,
    }
    pred = load_predictor("ivm", values)
    out = pred.predict(frames, TEXTS)  # split into two batches of one
    assert out.shape == (2, 48, 64) and out.dtype == torch.float32
    torch.testing.assert_close(out, model.predict_proba(frames, TEXTS), rtol=0, atol=1e-5)
    assert pred.describe()["fail_safe_frames"] == 0
    pred.close()


def test_wrong_path_error_names_the_file(sources, tmp_path):
    from ivm_ros.models.registry import load_predictor

    missing = tmp_path / "nope" / "IVM-V1.0.bin"
    with pytest.raises(FileNotFoundError, match="ivm_checkpoint.*nope/IVM-V1.0.bin"):
        load_predictor(
            "ivm",
            {
                "sam_checkpoint": str(sources["sam"]),
                "llava_path": str(sources["llava"]),
                "ivm_checkpoint": str(missing),
                "arch": "tiny",
                "device": "cpu",
            },
        )
    with pytest.raises(FileNotFoundError, match="llava_path"):
        load_predictor(
            "ivm",
            {
                "sam_checkpoint": str(sources["sam"]),
                "llava_path": str(tmp_path),
                "ivm_checkpoint": str(sources["ivm"]),
                "arch": "tiny",
                "device": "cpu",
            },
        )


def test_fail_safe_keeps_whole_frame_on_non_finite_output(frames):
    from ivm_ros.models.ivm.predictor import IVMConfig, IVMPredictor

    m = tiny_model()
    pred = IVMPredictor(IVMConfig(device="cpu"), model=m)
    real = m.mask_decoder.forward

    def poisoned(img, cond):
        out = real(img, cond).clone()
        out[0] = float("nan")
        return out

    m.mask_decoder.forward = poisoned
    out = pred.predict(frames, TEXTS)
    assert torch.equal(out[0], torch.ones_like(out[0])) and torch.isfinite(out[1]).all()
    assert not torch.equal(out[1], torch.ones_like(out[1]))
    assert pred.describe()["fail_safe_frames"] == 1


def test_release_postprocess_reference():
    from ivm_ros.models.ivm.reference import release_postprocess

    img = np.full((40, 60, 3), 100, np.uint8)
    # Nothing above threshold -> keep all. (The release adds the threshold and then tests `>`, so it relies on
    # sigmoid outputs being > 0; an exact 0 would still be dropped. We reproduce that as is.)
    kept = release_postprocess(np.full((40, 60), 0.01, np.float32), img, threshold=0.5)
    np.testing.assert_allclose(kept, img.astype(np.float32), atol=1e-4)
    prob = np.zeros((40, 60), np.float32)
    prob[18:22, 28:32] = 0.9
    out = release_postprocess(prob, img, threshold=0.5)
    assert out[20, 30, 0] == pytest.approx(100.0) and out[0, 0, 0] == pytest.approx(255.0)


def test_bench_tiny_json(capsys):
    from ivm_ros.commands.bench.ivm import main

    assert main(["--tiny", "--iters", "2", "--warmup", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["size"] == "tiny" and [c["batch"] for c in result["cases"]] == [1, 4]
    assert all(math.isfinite(c["engine"]["fps"]) and c["speedup"] > 0 for c in result["cases"])


# ---------------------------------------------------------------- GPU (skipped without CUDA)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_bf16_matches_fp32(frames):
    m = tiny_model().cuda()
    ref = m.predict_proba(frames, TEXTS)
    m.prompt_encoder.merge_lora()
    m.to(torch.bfloat16)
    low = m.predict_proba(frames.cuda(), TEXTS)
    assert low.device.type == "cuda" and low.dtype == torch.float32
    assert float((low - ref).abs().max()) < 0.05
    assert F.mse_loss(low, ref).item() < 1e-4


def test_llava_folder_in_llava_1_5_7b_hf_layout(sources, model, frames, tmp_path):
    """llava-1.5-7b-hf stores language_model.model.*, language_model.lm_head, vision_tower.vision_model.*."""
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "llava-old"
    shutil.copytree(sources["llava"], folder)
    sd = load_file(str(folder / "model.safetensors"))
    old = {
        ("vision_tower.vision_model." + k[len("vision_tower.") :] if k.startswith("vision_tower.") else k): v
        for k, v in sd.items()
    }
    assert any(k.startswith("language_model.model.layers.") for k in old)
    save_file(old, str(folder / "model.safetensors"), metadata={"format": "pt"})
    loaded, report = ck.load_release(sources["sam"], folder, sources["ivm"], arch="tiny")
    assert not report.fatal
    assert torch.equal(loaded.predict_proba(frames, TEXTS), model.predict_proba(frames, TEXTS))
