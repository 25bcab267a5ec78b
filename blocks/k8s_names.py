"""Kubernetes object-name rules (DNS-1123) shared by the blocks that render manifests."""

from __future__ import annotations

import re

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def dns1123_label(value: str, what: str) -> str:
    """Return `value` if it is a Kubernetes DNS-1123 label, else raise ValueError."""
    if len(value) > 63 or not DNS1123_LABEL.match(value):
        raise ValueError(
            f"{what} {value!r} is not a DNS-1123 label: expected at most 63 characters, "
            "lowercase letters, digits and '-', starting and ending with a letter or digit"
        )
    return value


def dns1123_subdomain(value: str, what: str) -> str:
    """Return `value` if it is a Kubernetes DNS-1123 subdomain, else raise ValueError."""
    if len(value) > 253 or not DNS1123_SUBDOMAIN.match(value):
        raise ValueError(
            f"{what} {value!r} is not a DNS-1123 subdomain: expected at most 253 characters "
            "of lowercase letters, digits, '-' and '.', each part starting and ending "
            "with a letter or digit"
        )
    return value
