"""Name -> predictor class, loaded lazily so heavy optional packages are imported only when used.

``load_predictor("lite")`` uses a registered name; ``load_predictor("my_pkg.masks:MyPredictor")`` loads a
user's own :class:`~ivm_ros.models.base.MaskPredictor` subclass from a ``module:Class`` string. The lookup
itself is :class:`ivm_ros.plugins.Registry`, shared with the policies' registry.
"""

from __future__ import annotations

from ivm_ros.models.base import MaskPredictor
from ivm_ros.plugins import PluginLoadError, Registry

#: Registered predictors: name -> "module:Class". Other issues add theirs here.
REGISTRY: dict[str, str] = {
    "keep_all": "ivm_ros.models.simple:KeepAllPredictor",
    "color_keyword": "ivm_ros.models.simple:ColorKeywordPredictor",
    "ivm": "ivm_ros.models.ivm.predictor:IVMPredictor",
    "lite": "ivm_ros.models.lite.predictor:LitePredictor",
}


class PredictorLoadError(PluginLoadError):
    """A predictor name, class path or setting that cannot be used; the message says which."""


PREDICTORS: Registry[MaskPredictor] = Registry("predictor", MaskPredictor, REGISTRY, PredictorLoadError)

register = PREDICTORS.register  #: adds or replaces an entry ``name -> "module:Class"``
available = PREDICTORS.available  #: registered names, sorted
resolve_class = PREDICTORS.resolve_class  #: the class for a registered name or a ``module:Class`` string
config_fields = PREDICTORS.config_fields  #: the predictor's settings and their defaults (for ROS parameters)
make_config = PREDICTORS.make_config  #: its config from defaults overridden by values; unknown keys are an error
load_predictor = PREDICTORS.load  #: instantiates a predictor by name or ``module:Class`` with the given settings
