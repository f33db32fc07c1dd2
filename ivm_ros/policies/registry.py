"""Name -> policy class, loaded lazily so heavy optional packages (Octo and its pins) are imported only when
used.

``load_policy("octo", {"checkpoint": "/models/octo-small-1.5"})`` uses a registered name;
``load_policy("my_pkg.policies:MyPolicy")`` loads a user's own :class:`~ivm_ros.policies.base.Policy` subclass
from a ``module:Class`` string. The lookup itself is :class:`ivm_ros.plugins.Registry`, shared with the
predictors' registry.
"""

from __future__ import annotations

from ivm_ros.plugins import PluginLoadError, Registry
from ivm_ros.policies.base import Policy

#: Registered policies: name -> "module:Class".
REGISTRY: dict[str, str] = {
    "embedded": "ivm_ros.policies.embedded.policy:EmbeddedPolicy",
    "octo": "ivm_ros.policies.octo:OctoPolicy",
}


class PolicyLoadError(PluginLoadError):
    """A policy name, class path or setting that cannot be used; the message says which."""


POLICIES: Registry[Policy] = Registry("policy", Policy, REGISTRY, PolicyLoadError)

register = POLICIES.register  #: adds or replaces an entry ``name -> "module:Class"``
available = POLICIES.available  #: registered names, sorted
resolve_class = POLICIES.resolve_class  #: the class for a registered name or a ``module:Class`` string
config_fields = POLICIES.config_fields  #: the policy's settings and their defaults (for ROS parameters)
make_config = POLICIES.make_config  #: its config from defaults overridden by values; unknown keys are an error
load_policy = POLICIES.load  #: instantiates a policy by name or ``module:Class`` with the given settings
