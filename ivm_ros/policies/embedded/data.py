"""Behaviour-cloning data for the embedded policy, from the simulator's expert demonstrations
(``ivm-ros sim-data demos`` format: ``index.json`` + ``episode_*.npz``, read with ``allow_pickle=False``).

Each static frame gets the lite IVM model's relevance probabilities for the episode's instruction once, at
preparation time (kept, when asked, in a cache beside each episode file: ``probs_<key>/<file>``, ``key`` naming the
predictor's weights and the size, so another training on the same episodes, or on a folder of links to them, does
not recompute them; :func:`precompute_probabilities` fills it in shards, one process each); the IVM
authors' mask augmentation (random threshold 0.4-0.9, random dilation) is applied per batch at training time
(:func:`masked_static`), so the policy sees the range of masks deployment produces.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from ivm_ros.datasets import read_index

DEMOS_FORMAT = "ivm_ros_sim.demos/1"
PROPRIO_INDEX = (0, 1, 2, 3, 4, 5, 6, 14)  # robot_obs: tcp xyz, tcp euler xyz, gripper width, last gripper action


@dataclasses.dataclass
class DemoSet:
    """Frames of all episodes, concatenated (N frames), plus per-frame episode bookkeeping.

    static (N, S, S, 3) uint8 raw static camera at the policy's size; prob (N, S, S) uint8 lite probabilities
    (0-255) or None; gripper (N, G, G, 3) uint8 (G = 0: no second camera); proprio (N, P) float32 raw (the
    ``proprio_index`` entries of robot_obs); actions (N, 7) float32 as recorded;
    episode (N,) int32; start (N,) int32 index of the episode's first frame; end (N,) int32 one past its last;
    text_index (N,) int32 into ``instructions``; gripper_prob (N, G, G) uint8 the gripper camera's ground-truth
    masks as probabilities (0-255), or None; gripper_varied (N, G, G, 3) uint8 the gripper camera re-rendered at the
    same states under another table texture and light (``ivm-ros sim-data gripper-views``), or None; static_varied
    (N, S, S, 3) uint8 the static camera re-rendered under the same draw (``gripper-views --static``) and
    prob_varied (N, S, S) uint8 its lite probabilities, or None.
    """

    static: np.ndarray
    prob: np.ndarray | None
    gripper: np.ndarray
    proprio: np.ndarray
    actions: np.ndarray
    episode: np.ndarray
    start: np.ndarray
    end: np.ndarray
    text_index: np.ndarray
    instructions: list[str]
    tasks: list[str]
    gripper_prob: np.ndarray | None = None
    gripper_varied: np.ndarray | None = None
    static_varied: np.ndarray | None = None
    prob_varied: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.actions.shape[0])


def demo_entries(root: str | Path | Sequence[str | Path], only_success: bool = True
                 ) -> tuple[list[Path], list[tuple[Path, dict[str, Any]]]]:
    """(folders, [(folder, index entry)]) of one demos folder or several, their (successful) episodes in the order
    given, read as one set (e.g. clean and DART-noise demos, recorded apart because their settings differ)."""
    roots = [Path(root)] if isinstance(root, (str, Path)) else [Path(r) for r in root]
    if not roots:
        raise ValueError("no demos folder given")
    entries = [(r, e) for r in roots for e in read_index(r, DEMOS_FORMAT, "ivm-ros sim-data demos")["episodes"]
               if e["success"] or not only_success]
    return roots, entries


def load_demos(root: str | Path | Sequence[str | Path], static_size: int, gripper_size: int, predictor=None,
               only_success: bool = True, progress: bool = True, proprio_index: tuple[int, ...] = PROPRIO_INDEX,
               prob_cache: bool = False, stored_masks: bool = False, stored_gripper_masks: bool = False,
               stored_gripper_views: bool = False, stored_static_views: bool = False) -> DemoSet:
    """Reads every (successful) episode of ``root`` (one demos folder or several: :func:`demo_entries`);
    ``predictor`` (a MaskPredictor, e.g. lite) adds ``prob`` (read from and written to the cache when
    ``prob_cache``, see :func:`cached_probabilities`); ``stored_masks`` adds ``prob``
    from the episodes' own ground-truth ``mask_static`` instead (:func:`stored_probabilities`);
    ``stored_gripper_masks`` adds ``gripper_prob`` from their ``mask_gripper`` (``ivm-ros sim-data gripper-masks``),
    ``stored_gripper_views`` ``gripper_varied`` from their ``rgb_gripper_varied`` (``ivm-ros sim-data gripper-views``),
    ``stored_static_views`` ``static_varied`` from their ``rgb_static_varied`` (``gripper-views --static``) and its
    ``prob_varied`` from ``predictor`` (cached apart: ``view="varied"``);
    ``proprio`` holds the ``proprio_index`` entries of robot_obs (the policy arch's)."""
    if (stored_gripper_masks or stored_gripper_views) and gripper_size <= 0:
        raise ValueError("load_demos: stored gripper masks or views need the gripper camera (gripper_size > 0)")
    if stored_masks and predictor is not None:
        raise ValueError("load_demos: give a predictor or stored_masks, not both")
    if stored_static_views and stored_masks:
        raise ValueError("load_demos: stored static views are masked by the predictor (the ground-truth masks of the "
                         "recording do not fit a re-render's jittered camera)")
    roots, entries = demo_entries(root, only_success)
    key = predictor_key(predictor, static_size) if predictor is not None and prob_cache else None
    cols: dict[str, list] = {k: [] for k in ("static", "prob", "gripper", "proprio", "actions", "episode", "start",
                                             "end", "text_index", "gripper_prob", "gripper_varied",
                                             "static_varied", "prob_varied")}
    instructions: list[str] = []
    tasks: list[str] = []
    n = 0
    for ep_i, (root, entry) in enumerate(tqdm(entries, desc="load demos", unit="ep", disable=not progress)):
        with np.load(root / entry["file"], allow_pickle=False) as z:
            static, gripper = z["rgb_static"], z["rgb_gripper"]
            robot, actions = z["robot_obs"], z["actions"]
            if stored_masks:
                cols["prob"].append(stored_probabilities(z, root / entry["file"], static_size))
            if stored_gripper_masks:
                cols["gripper_prob"].append(stored_probabilities(z, root / entry["file"], gripper_size, "mask_gripper"))
            if stored_gripper_views:
                cols["gripper_varied"].append(stored_views(z, root / entry["file"], gripper_size))
            varied = (stored_views(z, root / entry["file"], static_size, "rgb_static_varied", full=True)
                      if stored_static_views else None)
        t = len(actions)
        instr = str(entry["instruction"])
        if varied is not None:
            cols["static_varied"].append(np.stack([_resize(f, static_size) for f in varied]))
            if predictor is not None:
                cols["prob_varied"].append(probabilities(root / entry["file"], key, predictor, varied, instr,
                                                         static_size, "varied"))
        if instr not in instructions:
            instructions.append(instr)
            tasks.append(str(entry["task"]))
        cols["static"].append(np.stack([_resize(f, static_size) for f in static]))
        cols["gripper"].append(np.stack([_resize(f, gripper_size) for f in gripper]) if gripper_size > 0
                               else np.zeros((t, 0, 0, 3), np.uint8))  # no second camera
        if predictor is not None:
            cols["prob"].append(probabilities(root / entry["file"], key, predictor, static, instr, static_size))
        cols["proprio"].append(robot[:, list(proprio_index)].astype(np.float32))
        cols["actions"].append(actions.astype(np.float32))
        cols["episode"].append(np.full(t, ep_i, np.int32))
        cols["start"].append(np.full(t, n, np.int32))
        cols["end"].append(np.full(t, n + t, np.int32))
        cols["text_index"].append(np.full(t, instructions.index(instr), np.int32))
        n += t
    if not cols["actions"]:
        raise ValueError(f"{', '.join(map(str, roots))}: no {'successful ' if only_success else ''}episodes")
    cat = {k: np.concatenate(v) if v else None for k, v in cols.items()}
    return DemoSet(instructions=instructions, tasks=tasks, **cat)


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def stored_probabilities(episode: Any, path: Path, size: int, key: str = "mask_static") -> np.ndarray:
    """An episode's ground-truth ``key`` masks (``mask_static`` or ``mask_gripper``) (T, H, W) 0/1 -> (T, size,
    size) uint8 probabilities (0-255: the share of each pixel the mask covers, area-resized as the frames are).
    ValueError naming the file without them."""
    if key not in episode.files:
        fix = ("add them with `ivm-ros sim-data gripper-masks --demos FOLDER`" if key == "mask_gripper" else
               "record the demonstrations again with this version of ivm-ros sim-data, or train the masked policy "
               "on lite's masks")
        raise ValueError(f"{path} has no {key} (ground-truth masks): {fix}")
    masks = episode[key]
    if len(masks) != len(episode["actions"]):
        raise ValueError(f"{path}: {len(masks)} masks for {len(episode['actions'])} actions")
    share = np.stack([cv2.resize((m > 0).astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
                      for m in masks])
    return np.round(share * 255).astype(np.uint8)


def stored_views(episode: Any, path: Path, size: int, key: str = "rgb_gripper_varied", full: bool = False
                 ) -> np.ndarray:
    """An episode's re-rendered views ``key`` (``rgb_gripper_varied`` or ``rgb_static_varied``; T, H, W, 3) uint8
    -> (T, size, size, 3), area-resized as the recorded frames are (``full``: as stored, for a mask predictor).
    ValueError naming the file without them."""
    if key not in episode.files:
        flag = " --static" if key == "rgb_static_varied" else ""
        raise ValueError(f"{path} has no {key}: add it with `ivm-ros sim-data gripper-views{flag} --demos FOLDER`")
    views = episode[key]
    if views.shape[:1] != episode["actions"].shape[:1] or views.shape[-1] != 3 or views.dtype != np.uint8:
        raise ValueError(f"{path}: {key} {views.shape} {views.dtype} does not match "
                         f"{len(episode['actions'])} actions of (H, W, 3) uint8 frames")
    return views if full else np.stack([_resize(f, size) for f in views])


def probabilities(demo_file: Path, key: str | None, predictor: Any, frames: np.ndarray, instruction: str, size: int,
                  view: str = "") -> np.ndarray:
    """:func:`lite_probabilities` of an episode's ``frames``, through its cache when ``key`` is given
    (:func:`cached_probabilities`; ``view`` names which frames: "" the recorded, "varied" the re-rendered)."""
    if key is None:
        return lite_probabilities(predictor, frames, instruction, size)
    return cached_probabilities(demo_file, key, predictor, frames, instruction, size, view)


def lite_probabilities(predictor, frames: np.ndarray, instruction: str, size: int, batch: int = 32) -> np.ndarray:
    """(T, H, W, 3) uint8 frames -> (T, size, size) uint8 probabilities (0-255) from ``predictor``."""
    import torch

    out = []
    for i in range(0, len(frames), batch):
        chunk = torch.from_numpy(np.ascontiguousarray(frames[i : i + batch]))
        probs = predictor.predict(chunk, [instruction] * len(chunk)).float().cpu().numpy()
        out.extend(cv2.resize(p, (size, size), interpolation=cv2.INTER_LINEAR) for p in probs)
    return (np.clip(np.stack(out), 0, 1) * 255).round().astype(np.uint8)


def predictor_key(predictor: Any, size: int) -> str:
    """A short name for (the predictor's weights, output size): the SHA-256 of its checkpoint file's bytes when it
    has one (``predictor.checkpoint``), else of its ``describe()``; 16 hex digits + ``_<size>``."""
    ckpt = getattr(predictor, "checkpoint", "")
    h = hashlib.sha256()
    if ckpt and Path(ckpt).is_file():
        h.update(Path(ckpt).read_bytes())
    else:
        h.update(json.dumps(predictor.describe(), sort_keys=True, default=str).encode())
    return f"{h.hexdigest()[:16]}_{size}"


def frames_digest(frames: np.ndarray) -> str:
    """BLAKE2b (16 bytes, hex) of ``frames``' shape, dtype and bytes: what a probability cache was computed from."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{frames.shape}{frames.dtype}".encode())
    h.update(np.ascontiguousarray(frames).tobytes())
    return h.hexdigest()


def prob_cache_file(demo_file: Path, key: str, view: str = "") -> Path:
    """Where an episode file's cached probabilities live: beside the file the path resolves to (links share it);
    ``view`` "varied": those of its re-rendered static views (``probs_<key>_varied/``)."""
    real = Path(demo_file).resolve()
    return real.parent / f"probs_{key}{'_' + view if view else ''}" / f"{real.stem}.npz"


def cached_probabilities(demo_file: Path, key: str, predictor: Any, frames: np.ndarray, instruction: str,
                         size: int, view: str = "") -> np.ndarray:
    """:func:`lite_probabilities` of an episode through its cache file: read when it was computed from these very
    ``frames`` (their :func:`frames_digest`) for ``instruction``, else computed and written (atomically, no pickles):
    frames re-rendered since (``gripper-views --static`` again) or a cache of an older format are computed anew."""
    path = prob_cache_file(demo_file, key, view)
    digest = frames_digest(frames)
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            prob, cached_instr = z["prob"], str(z["instruction"])
            cached_digest = str(z["frames_digest"]) if "frames_digest" in z.files else ""
        if (cached_instr, cached_digest) == (instruction, digest) and prob.shape == (len(frames), size, size):
            return prob
    prob = lite_probabilities(predictor, frames, instruction, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, prob=prob, instruction=np.array(instruction), frames_digest=np.array(digest))
    tmp.replace(path)
    return prob


def precompute_probabilities(root: str | Path | Sequence[str | Path], predictor: Any, size: int,
                             shard: tuple[int, int] = (0, 1), only_success: bool = True, progress: bool = True,
                             static_views: bool = False) -> int:
    """Fills the probability cache for every ``shard[1]``-th (successful) episode starting at ``shard[0]`` (run
    one process per shard; ``static_views``: of the re-rendered static views too); returns how many episodes were
    computed (the rest were cached already)."""
    key = predictor_key(predictor, size)
    entries = demo_entries(root, only_success)[1][shard[0]::shard[1]]
    views = ("", "varied") if static_views else ("",)
    computed = 0
    for root, entry in tqdm(entries, desc=f"probs {shard[0]}/{shard[1]}", unit="ep", disable=not progress):
        path = root / entry["file"]
        todo = [v for v in views if not prob_cache_file(path, key, v).is_file()]
        if not todo:
            continue
        with np.load(path, allow_pickle=False) as z:
            frames = {v: stored_views(z, path, size, "rgb_static_varied", full=True) if v else z["rgb_static"]
                      for v in todo}
        for v in todo:
            cached_probabilities(path, key, predictor, frames[v], str(entry["instruction"]), size, v)
        computed += 1
    return computed


def masked_static(static: np.ndarray, prob: np.ndarray, rng: np.random.Generator, threshold: tuple[float, float],
                  dilation: tuple[int, int], fill: int = 255, empty: str = "keep") -> np.ndarray:
    """IVM overlay with a random threshold and dilation per frame (the IVM authors' policy augmentation).

    static (B, S, S, 3) uint8, prob (B, S, S) uint8 -> (B, S, S, 3) uint8. Kernel sizes are odd, in pixels at S;
    the dilated mask is feathered with a Gaussian of the same size. An empty mask keeps the whole frame
    (``empty="keep"``: the masking fail-safe of the static camera) or fills it (``"blank"``: nothing named in view,
    as the wrist camera is masked with ``fail_safe="off"``).
    """
    if empty not in ("keep", "blank"):
        raise ValueError(f"empty must be 'keep' or 'blank', got {empty!r}")
    out = np.empty_like(static)
    for i in range(len(static)):
        th = rng.uniform(*threshold) * 255
        keep = (prob[i] > th).astype(np.float32)
        if not keep.any():
            out[i] = static[i] if empty == "keep" else fill
            continue
        k = int(rng.integers(dilation[0] // 2, dilation[1] // 2 + 1)) * 2 + 1
        keep = cv2.dilate(keep, np.ones((k, k), np.uint8))
        keep = cv2.GaussianBlur(keep, (k, k), 0)[..., None]
        out[i] = (static[i] * keep + fill * (1.0 - keep)).round().astype(np.uint8)
    return out


def random_shift(frames: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    """Random-shift augmentation (DrQ): each sample's frames moved by one random offset of up to ``pad`` pixels.

    frames (B, W, S, S, 3) uint8 -> same shape and dtype; the window of a sample shares its offset (a camera
    that moved, not a scene that jumps between consecutive frames); the border is filled by edge replication.
    """
    if pad <= 0:
        return frames
    b, _, s, s2, _ = frames.shape
    padded = np.pad(frames, ((0, 0), (0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    dy, dx = rng.integers(0, 2 * pad + 1, size=(2, b))
    return np.stack([padded[i, :, dy[i]:dy[i] + s, dx[i]:dx[i] + s2] for i in range(b)])


def window_indices(data: DemoSet, idx: np.ndarray, window: int) -> np.ndarray:
    """(B, window) frame indices ending at ``idx``, clamped to each episode's first frame (Octo's reset padding)."""
    offsets = np.arange(-(window - 1), 1)
    return np.maximum(idx[:, None] + offsets[None, :], data.start[idx][:, None])


def action_chunks(data: DemoSet, idx: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, chunk, 7) actions from each index on and a (B, chunk) validity mask (False past the episode's end)."""
    steps = idx[:, None] + np.arange(chunk)[None, :]
    valid = steps < data.end[idx][:, None]
    steps = np.minimum(steps, data.end[idx][:, None] - 1)
    return data.actions[steps], valid


def photometric(frames: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Photometric augmentation: one random brightness, contrast, saturation and per-channel gain per sample.

    frames (B, W, S, S, 3) uint8 -> same shape and dtype; a sample's window shares its draw (one lighting per
    moment, as a relit scene). ``strength`` s in [0, 1]: brightness offset up to +-0.25 s (fraction of 255),
    contrast and saturation factors in [1 - 0.5 s, 1 + 0.5 s], channel gains in [1 - 0.2 s, 1 + 0.2 s]
    (colour of the light). 0 returns the input.
    """
    if strength <= 0:
        return frames
    b = frames.shape[0]
    x = frames.astype(np.float32) / 255.0
    shape = (b, 1, 1, 1, 1)
    grey = x.mean(-1, keepdims=True)
    sat = rng.uniform(1 - 0.5 * strength, 1 + 0.5 * strength, shape).astype(np.float32)
    x = grey + (x - grey) * sat
    mean = x.mean(axis=(1, 2, 3, 4), keepdims=True)
    con = rng.uniform(1 - 0.5 * strength, 1 + 0.5 * strength, shape).astype(np.float32)
    x = mean + (x - mean) * con
    gain = rng.uniform(1 - 0.2 * strength, 1 + 0.2 * strength, (b, 1, 1, 1, 3)).astype(np.float32)
    x = x * gain + rng.uniform(-0.25 * strength, 0.25 * strength, shape).astype(np.float32)
    return (np.clip(x, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def random_texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """(h, w, 3) uint8: a random solid colour, stripes of two colours at a random angle and period, a
    checkerboard, or smoothed noise (the kinds of table surface a retextured scene shows)."""
    c1, c2 = rng.integers(0, 256, (2, 3)).astype(np.float32)
    kind = int(rng.integers(4))
    if kind == 0:
        return np.broadcast_to(c1, (h, w, 3)).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    if kind == 1:
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(3, max(h, w) / 2)
        t = (np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0)[..., None]
    elif kind == 2:
        cell = int(rng.integers(2, max(3, max(h, w) // 4)))
        t = (((yy // cell) + (xx // cell)) % 2 == 0)[..., None]
    else:
        noise = rng.random((h // 4 + 1, w // 4 + 1)).astype(np.float32)
        t = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
    return (c1 * t + c2 * (1 - t)).clip(0, 255).astype(np.uint8)


#: HSV box (OpenCV units: H 0-180, S and V 0-255) of the CALVIN table's wood: table top, drawer and cabinet;
#: not the blocks (red / pink hues are outside it, blue too), the robot (unsaturated), handles or LED.
WOOD_HSV = ((5, 61, 41), (25, 255, 255))


def wood_surface(frames: np.ndarray) -> np.ndarray:
    """(..., S, S, 3) uint8 RGB -> (..., S, S) bool: the pixels of the table's wood (:data:`WOOD_HSV`)."""
    flat = frames.reshape(-1, *frames.shape[-3:])
    lo, hi = np.array(WOOD_HSV[0], np.uint8), np.array(WOOD_HSV[1], np.uint8)
    masks = [cv2.inRange(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2HSV), lo, hi) > 0 for f in flat]
    return np.stack(masks).reshape(frames.shape[:-1])


def retexture_surface(frames: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Table-texture randomisation: for a fraction ``p`` of the samples the wood (:func:`wood_surface`) takes one
    random texture (:func:`random_texture`, shared by the sample's window) with a random shading kept from the
    original (its brightness relative to the mean), so a retextured table stops mattering.

    frames (B, W, S, S, 3) uint8 -> same shape and dtype. Run before masking: the mask then keeps the object and
    the retextured halo around it.
    """
    if p <= 0:
        return frames
    out = frames.copy()
    for i in np.flatnonzero(rng.random(len(frames)) < p):
        wood = wood_surface(frames[i])
        if not wood.any():
            continue
        tex = random_texture(frames.shape[-3], frames.shape[-2], rng).astype(np.float32)
        luma = frames[i].astype(np.float32).mean(-1, keepdims=True)
        shade = np.clip(luma / max(float(luma[wood].mean()), 1.0), 0.5, 1.5)
        out[i][wood] = (np.broadcast_to(tex, frames[i].shape) * shade).clip(0, 255).astype(np.uint8)[wood]
    return out
