"""Filestore's rules: tiers, their capacity ranges and locations, and its name formats.

From the Filestore service-tier and instance-naming pages; `FilestoreStorage` checks its
fields against these when the block is built, so a bad value fails there, not at deploy.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Literal

FilestoreTier = Literal[
    "BASIC_HDD", "BASIC_SSD", "ZONAL", "REGIONAL", "ENTERPRISE", "HIGH_SCALE_SSD"
]

#: Capacity bounds per tier in GiB (Filestore service-tier pages; BASIC max is 63.9 TiB).
TIER_CAPACITY_GIB: dict[str, tuple[int, int]] = {
    "BASIC_HDD": (1024, 65434),
    "BASIC_SSD": (2560, 65434),
    "ZONAL": (1024, 102400),
    "REGIONAL": (100, 102400),
    "ENTERPRISE": (1024, 10240),
    "HIGH_SCALE_SSD": (10240, 102400),
}
#: Regional and Enterprise instances live in a region; the others in a zone.
REGIONAL_TIERS = frozenset({"REGIONAL", "ENTERPRISE"})
#: GKE's built-in Filestore storage classes and the tier each provisions.
GKE_STORAGE_CLASS_TIERS = {
    "standard-rwx": "BASIC_HDD",
    "premium-rwx": "BASIC_SSD",
    "zonal-rwx": "ZONAL",
    "enterprise-rwx": "ENTERPRISE",
}

FILESTORE_INSTANCE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
FILESTORE_SHARE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
GCP_ZONE = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
GCP_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")


def check_mount_path(value: str) -> str:
    """`value` normalised, if it is an absolute path other than "/"; else ValueError."""
    normalised = posixpath.normpath(value)
    if not value.startswith("/") or normalised == "/":
        raise ValueError(f"mount_path {value!r} must be an absolute path other than '/'")
    return normalised


def check_instance_name(value: str | None) -> str | None:
    """`value` if it is a Filestore instance ID (or None); else ValueError."""
    if value is not None and not FILESTORE_INSTANCE.match(value):
        raise ValueError(
            f"instance_name {value!r} is not a Filestore instance ID: expected 1-63 "
            "lowercase letters, digits or '-', starting with a letter"
        )
    return value


def check_share_name(value: str) -> str:
    """`value` if it is a Filestore file share name; else ValueError."""
    if not FILESTORE_SHARE.match(value):
        raise ValueError(
            f"share_name {value!r} is not a Filestore share name: expected at most 32 "
            "letters, digits or '_', starting with a letter"
        )
    return value


def check_location(value: str | None, tier: str | None) -> str | None:
    """`value` if it is a region for a regional tier, a zone for the others; else ValueError."""
    if value is None or tier is None:
        return value
    wants_region = tier in REGIONAL_TIERS
    pattern, kind = (GCP_REGION, "region") if wants_region else (GCP_ZONE, "zone")
    if not pattern.match(value):
        example = "us-central1" if wants_region else "us-central1-a"
        raise ValueError(
            f"location {value!r} is not a {kind}, which the {tier} tier needs (e.g. {example})"
        )
    return value


def check_capacity(value: int, tier: str | None) -> int:
    """`value` if it is within the tier's capacity range in GiB; else ValueError."""
    if tier is None:  # the tier itself failed validation and is reported already
        return value
    low, high = TIER_CAPACITY_GIB[tier]
    if not low <= value <= high:
        raise ValueError(
            f"capacity_gib {value} is outside the {tier} tier's range {low}..{high} GiB"
        )
    return value


def check_ipv4(value: str | None) -> str | None:
    """`value` as a normalised IPv4 address (or None); else ValueError."""
    if value is None:
        return value
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError as exc:
        raise ValueError(
            f"ip_address {value!r} is not an IPv4 address (expected e.g. 10.0.0.2)"
        ) from exc
