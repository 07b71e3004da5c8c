"""The stack configuration: one typed model, read once, validated before any resource exists.

Keys live in the project namespace (`scanner:<key>`) plus a few `aws:` keys, flat in the stack
file and declared with their types in `Pulumi.yaml`. The model is composed of one section per
tier (network, cluster, data, scans, services, dashboard), each owning its keys, their rules and
what is derived from them; the rules that join tiers (the environment's minimums, one tier's
demand against another's capacity) sit on the whole (stack.py). Every broken rule becomes a
line of a `ConfigError` that names the key as the stack file spells it; one run reports them all.
"""

from stack_config.base import PROJECT, ConfigError
from stack_config.cluster import ClusterSection
from stack_config.dashboard import DashboardSection
from stack_config.data import DataSection
from stack_config.loading import KNOWN_KEYS, full_key, load_from_pulumi, parse
from stack_config.network import DEFAULT_INTERFACE_ENDPOINTS, NetworkSection
from stack_config.scans import ScansSection
from stack_config.services import ServiceConfig, ServicesRollout, ServicesSection
from stack_config.stack import SECTIONS, StackConfig

__all__ = [
    "PROJECT",
    "ConfigError",
    "StackConfig",
    "SECTIONS",
    "NetworkSection",
    "ClusterSection",
    "DataSection",
    "ScansSection",
    "ServicesSection",
    "ServiceConfig",
    "ServicesRollout",
    "DashboardSection",
    "DEFAULT_INTERFACE_ENDPOINTS",
    "KNOWN_KEYS",
    "full_key",
    "load_from_pulumi",
    "parse",
]
