"""``ivm-ros photo-check``: does a mask predictor's mask land on the object an instruction names, in real photos?

The photos are ../shared/images (``robot.jpg``: a real WidowX table scene of the IVM release); the objects are
hand-drawn boxes and the instructions name them (``photo_labels.json`` beside this module). For each instruction
each model's probabilities (at the photo's size) are thresholded (``--threshold``) and scored against the union of
the named objects' boxes: ``on_target`` = share of the mask's pixels inside those boxes, ``coverage`` = share of
the boxes' pixels the mask covers, ``hit`` = on_target >= 0.5 and coverage >= 0.2 (a box holds some table, so a
mask that fills the object covers roughly half to three quarters of its box). An empty mask is a miss.

``--checkpoint NAME=CHECKPOINT`` (repeatable; CHECKPOINT a shipped lite name or a file) names the lite checkpoints
compared side by side (default: every shipped one, :data:`ivm_ros.models.lite.checkpoint.NAMED`). Output: a table
(one row per instruction, one column per model); ``--out DIR``: ``photo_check.json`` and ``photo_check.jpg`` (rows:
instructions; columns: the photo with the named boxes, then each model's mask, the rest washed out); ``--json``:
one JSON line last with per model ``hit_rate``, ``on_target`` and ``coverage`` (means over instructions) and
``rows``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from ivm_ros_sim.eval import runs

from ivm_ros.models.lite.checkpoint import NAMED, LiteCheckpointError
from ivm_ros.paths import shared_dir
from ivm_ros.plugins import PluginLoadError

LABELS = Path(__file__).resolve().parent / "photo_labels.json"
FORMAT = "ivm_ros_sim.photo-labels/1"
ON_TARGET_MIN, COVERAGE_MIN = 0.5, 0.2

#: (image (H, W, 3) uint8 RGB, instruction) -> probabilities (h, w) float32 in [0, 1], any size of the same aspect
Masker = Callable[[np.ndarray, str], np.ndarray]


def load_labels(path: Path = LABELS) -> dict[str, Any]:
    """The labels document; ValueError naming what is wrong (format, an instruction naming an unknown object, a
    box outside the photo)."""
    doc = json.loads(Path(path).read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path}: format {doc.get('format')!r}, expected {FORMAT!r}")
    for name, photo in doc["photos"].items():
        w, h = photo["size"]
        for obj, (x0, y0, x1, y1) in photo["objects"].items():
            if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
                raise ValueError(f"{path}: {name}: box of {obj!r} {[x0, y0, x1, y1]} is not inside {w}x{h}")
        for ins in photo["instructions"]:
            unknown = [o for o in ins["objects"] if o not in photo["objects"]]
            if unknown:
                raise ValueError(f"{path}: {name}: {ins['text']!r} names unknown objects {unknown}")
    return doc


def box_mask(shape: tuple[int, int], boxes: Sequence[Sequence[int]]) -> np.ndarray:
    """(H, W) bool: the union of ``boxes`` (x0, y0, x1, y1), exclusive ends."""
    out = np.zeros(shape, bool)
    for x0, y0, x1, y1 in boxes:
        out[y0:y1, x0:x1] = True
    return out


def score(mask: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """``mask`` and ``target`` (H, W) bool -> on_target, coverage, hit (module docstring)."""
    area, inside = int(mask.sum()), int((mask & target).sum())
    on = inside / area if area else 0.0
    cov = inside / max(int(target.sum()), 1)
    return {"on_target": on, "coverage": cov, "mask_share": area / mask.size,
            "hit": bool(area and on >= ON_TARGET_MIN and cov >= COVERAGE_MIN)}


def check(maskers: dict[str, Masker], labels: dict[str, Any], photos: Path, threshold: float = 0.5
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows: one per (photo, instruction) with each model's score; pictures: the same with the image, the target
    and each model's mask, for :func:`picture`). FileNotFoundError naming a missing photo."""
    rows, shown = [], []
    for name, photo in labels["photos"].items():
        path = photos / name
        bgr = cv2.imread(str(path))
        if bgr is None:
            raise FileNotFoundError(f"photo {path} is missing or not an image")
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        for ins in photo["instructions"]:
            target = box_mask(image.shape[:2], [photo["objects"][o] for o in ins["objects"]])
            row: dict[str, Any] = {"photo": name, "instruction": ins["text"], "objects": ins["objects"], "models": {}}
            masks = {}
            for model, masker in maskers.items():
                prob = np.asarray(masker(image, ins["text"]), np.float32)
                prob = cv2.resize(prob, image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
                masks[model] = prob >= threshold
                row["models"][model] = score(masks[model], target)
            rows.append(row)
            shown.append({"image": image, "boxes": [photo["objects"][o] for o in ins["objects"]], "masks": masks,
                          "instruction": ins["text"]})
    return rows, shown


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per model: hit_rate, on_target, coverage (means over the rows)."""
    def mean(model: str, key: str) -> float:
        return float(np.mean([float(r["models"][model][key]) for r in rows]))

    models = rows[0]["models"] if rows else {}
    return {m: {"hit_rate": mean(m, "hit"), "on_target": mean(m, "on_target"), "coverage": mean(m, "coverage")}
            for m in models}


def table(rows: list[dict[str, Any]]) -> str:
    models = list(rows[0]["models"]) if rows else []
    width = max(len(r["instruction"]) for r in rows) if rows else 10
    lines = [f"{'instruction':<{width}}  " + "  ".join(f"{m + ' (on/cov)':>24}" for m in models)]
    for r in rows:
        cells = [f"{'HIT ' if s['hit'] else 'miss'} {s['on_target']:.2f}/{s['coverage']:.2f}"
                 for s in r["models"].values()]
        lines.append(f"{r['instruction']:<{width}}  " + "  ".join(f"{c:>24}" for c in cells))
    totals = summary(rows)
    lines.append(f"{'hit rate':<{width}}  " + "  ".join(f"{totals[m]['hit_rate']:>24.2f}" for m in models))
    return "\n".join(lines)


def _tile(image: np.ndarray, mask: np.ndarray | None, boxes: list, caption: str, side: int = 240) -> np.ndarray:
    out = image.copy()
    if mask is not None:
        out[~mask] = (0.25 * out[~mask] + 0.75 * 255).astype(np.uint8)
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (0, 200, 0), 2)
    out = cv2.resize(out, (side, round(side * image.shape[0] / image.shape[1])), interpolation=cv2.INTER_AREA)
    band = np.full((18, side, 3), 255, np.uint8)
    cv2.putText(band, caption[:48], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([band, out])


def picture(shown: list[dict[str, Any]], path: Path) -> Path:
    """Rows: instructions; columns: the photo with the named boxes, then each model's mask (JPEG)."""
    rows = []
    for s in shown:
        tiles = [_tile(s["image"], None, s["boxes"], s["instruction"])]
        tiles += [_tile(s["image"], m, s["boxes"], name) for name, m in s["masks"].items()]
        rows.append(np.hstack(tiles))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return path


def lite_masker(checkpoint: str) -> tuple[Masker, dict[str, Any]]:
    """(the lite predictor of ``checkpoint`` (a shipped name or a file) as a :data:`Masker`, its description with
    the tensor digest), through lite-eval's predictor source (probabilities at the photo's size)."""
    from ivm_ros_sim.eval.lite_eval import load_source

    source, desc = load_source("lite", checkpoint)

    def masker(image: np.ndarray, instruction: str) -> np.ndarray:
        return source(image[None], [instruction], np.zeros((1, *image.shape[:2]), bool))[0]  # the shape only

    return masker, desc


def _named(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=CHECKPOINT (a shipped name or a file), got {spec!r}")
    return name, path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ivm-ros photo-check", description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=_named, action="append", default=None, metavar="NAME=CHECKPOINT",
                    help="a lite checkpoint to compare (repeatable; a shipped name or a file); default: every "
                         f"shipped one ({', '.join(NAMED)})")
    ap.add_argument("--photos", type=Path, default=shared_dir() / "images")
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--out", type=Path, default=None, help="write photo_check.json and photo_check.jpg here")
    ap.add_argument("--json", action="store_true", help="print one JSON line last")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    specs = dict(args.checkpoint or [(name, name) for name in NAMED])
    try:
        labels = load_labels(args.labels)
        loaded = {name: lite_masker(path) for name, path in specs.items()}
        rows, shown = check({name: m for name, (m, _) in loaded.items()}, labels, args.photos, args.threshold)
    except (OSError, ValueError, LiteCheckpointError, PluginLoadError) as exc:  # a missing photo or file, bad labels
        print(f"ivm-ros photo-check: {exc}", file=sys.stderr)
        return 2
    print(table(rows))
    report = {"models": summary(rows), "rows": rows,
              "settings": {"checkpoints": {name: desc for name, (_, desc) in loaded.items()},
                           "threshold": args.threshold, "labels": str(args.labels),
                           "hit": {"on_target_min": ON_TARGET_MIN, "coverage_min": COVERAGE_MIN}}}
    runs.write_report(args.out, "photo_check", report, args.json,
                      lambda out: picture(shown, out / "photo_check.jpg"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
