"""Which device a message is from: ``affectlite/<device>/<kind>`` on a site broker, or
``sites/<site>/affectlite/<device>/<kind>`` at a central broker fed by site bridges."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("events", "state", "stats", "availability", "audience")


@dataclass(frozen=True)
class Route:
    site: str               # "" on a site's own broker
    device: str
    kind: str


def subscriptions(prefix: str = "affectlite") -> list[str]:
    """Topic filters for both layouts."""
    return [f"{prefix}/+/{kind}" for kind in KINDS] + [f"sites/+/{prefix}/+/{kind}" for kind in KINDS]


def parse(topic: str, prefix: str = "affectlite") -> Route | None:
    parts = topic.split("/")
    if len(parts) == 3 and parts[0] == prefix and parts[2] in KINDS:
        return Route("", parts[1], parts[2])
    if len(parts) == 5 and parts[0] == "sites" and parts[2] == prefix and parts[4] in KINDS:
        return Route(parts[1], parts[3], parts[4])
    return None
