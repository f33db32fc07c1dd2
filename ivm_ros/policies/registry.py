"""Name -> policy class, loaded lazily so heavy optional packages (Octo and its pins) are imported only when
used.

``load_policy("octo", {"checkpoint": "/models/octo-small-1.5"})`` uses a registered name;
``load_policy("my_pkg.policies:MyPolicy")`` loads a user's own :class:`~ivm_ros.policies.base.Policy` subclass
from a ``module:Class`` string.
"""

from __future__ import annotations

from typing import Any

from ivm_ros.plugins import PluginLoadError, Registry
from ivm_ros.policies.base import Policy, PolicyConfig

#: Registered policies: name -> "module:Class". Other issues add theirs here (the embedded JAX policy).
REGISTRY: dict[str, str] = {
    "embedded": "ivm_ros.policies.embedded.policy:EmbeddedPolicy",
    "octo": "ivm_ros.policies.octo:OctoPolicy",
}


class PolicyLoadError(PluginLoadError):
    """A policy name, class path or setting that cannot be used; the message says which."""


_POLICIES: Registry[Policy] = Registry("policy", Policy, REGISTRY, PolicyLoadError)


def register(name: str, target: str) -> None:
    """Adds or replaces a registry entry ``name -> "module:Class"``."""
    _POLICIES.register(name, target)


def available() -> list[str]:
    """Registered policy names, sorted."""
    return _POLICIES.available()


def resolve_class(spec: str) -> type[Policy]:
    """The policy class for a registered name or a ``module:Class`` string."""
    return _POLICIES.resolve_class(spec)


def config_fields(spec: str) -> dict[str, Any]:
    """The policy's settings and their defaults, e.g. for declaring ROS parameters."""
    return _POLICIES.config_fields(spec)


def make_config(spec: str, values: dict[str, Any] | None = None) -> PolicyConfig:
    """The policy's config from defaults overridden by ``values``; unknown keys are an error."""
    return _POLICIES.make_config(spec, values)


def load_policy(spec: str, values: dict[str, Any] | None = None) -> Policy:
    """Instantiates a policy by name or ``module:Class`` with the given settings."""
    return _POLICIES.load(spec, values)
