"""The shared storage as a Prefect block: a Filestore share, a PV/PVC, and a local path.

One block describes the same share three ways: the directory this machine reads and
writes (`local_path`; in the embedded mode it is the only one that matters), the mount
point inside pods (`mount_path`, `/mnt/fileserver` as in Google's batch/aiml-workloads
sample), and how Kubernetes gets to it: a static PersistentVolume on a Filestore
instance's NFS export, or a claim that the Filestore CSI driver provisions dynamically.

The block is also a Prefect `WritableFileSystem`, so flows can persist results on the
share. Writes are atomic (temp + fsync + rename, docs/facts.md#checkpoints) because other pods read
the same NFS directory.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import anyio.to_thread
from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.filesystems import WritableFileSystem
from pydantic import Field, HttpUrl, ValidationInfo, field_validator, model_validator

from blocks.errors import PathEscapesShareError, ProvisioningNotConfiguredError
from trainer.share.files import atomic_write_bytes
from trainer.share.layout import Share

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

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
FILESTORE_INSTANCE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
FILESTORE_SHARE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
GCP_ZONE = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
GCP_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")


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


class FilestoreStorage(WritableFileSystem):
    """The fraudpipe share: a Filestore NFS export in pods, a directory on this machine.

    With neither `ip_address` nor `storage_class` set, the block only describes the local
    directory (the embedded mode). Set `ip_address` (with the instance's name and
    location) for static provisioning, as Google's batch/aiml-workloads sample does, or
    `storage_class` to let the Filestore CSI driver create the instance.

    As Prefect result storage, pair it with `result_serializer="json"`: Prefect's default
    serializer pickles, and nothing on the share may ever be unpickled (docs/facts.md#checkpoints).
    Prefect also wants the block saved before a flow uses it as result storage.

    Example:
        Load the saved share and open its layout:
        ```python
        from blocks import FilestoreStorage

        storage = FilestoreStorage.load("BLOCK_NAME")
        share = storage.share()
        manifests = storage.render_pv_pvc()
        ```
    """

    _block_type_name = "Fraudpipe Filestore Storage"
    _description = (
        "The fraudpipe shared storage: a GKE Filestore share mounted in pods and a local "
        "directory on this machine; renders its PersistentVolume/Claim and Hera volume."
    )
    _logo_url = HttpUrl("https://raw.githubusercontent.com/PrefectHQ/prefect/420d0d6a78bb6df1fc18bcf188fdad43c1d22ea9/assets/block-logos/filesystem.png")  # noqa: E501
    _documentation_url = HttpUrl(
        "https://cloud.google.com/kubernetes-engine/docs/how-to/persistent-volumes/"
        "filestore-csi-driver"
    )

    local_path: str = Field(
        default=".fraudpipe/share",
        description="The share's root as seen by this machine; relative paths are taken "
        "from the working directory when used.",
    )
    mount_path: str = Field(
        default="/mnt/fileserver", description="Absolute path where pods mount the share."
    )
    instance_name: str | None = Field(
        default=None, description="Filestore instance ID (static provisioning)."
    )
    tier: FilestoreTier = Field(default="BASIC_HDD", description="Filestore service tier.")
    location: str | None = Field(
        default=None,
        description="Zone of the instance (e.g. us-central1-a), or its region for the "
        "REGIONAL and ENTERPRISE tiers.",
    )
    share_name: str = Field(default="NFSVol", description="Name of the instance's file share.")
    capacity_gib: int = Field(
        default=1024, description="Capacity in GiB, within the tier's allowed range."
    )
    ip_address: str | None = Field(
        default=None,
        description="IPv4 address of the Filestore instance; setting it selects static "
        "provisioning.",
    )
    storage_class: str | None = Field(
        default=None,
        description="StorageClass of the Filestore CSI driver (e.g. standard-rwx); setting "
        "it selects dynamic provisioning.",
    )
    pv_name: str = Field(default="fileserver", description="PersistentVolume name.")
    pvc_name: str = Field(default="fileserver-claim", description="PersistentVolumeClaim name.")
    namespace: str | None = Field(
        default=None, description="Namespace of the claim; omitted from manifests if unset."
    )
    volume_name: str = Field(
        default="fileserver", description="Name of the volume in pod and workflow specs."
    )

    @field_validator("mount_path")
    @classmethod
    def _mount_path_is_absolute(cls, value: str) -> str:
        normalised = posixpath.normpath(value)
        if not value.startswith("/") or normalised == "/":
            raise ValueError(f"mount_path {value!r} must be an absolute path other than '/'")
        return normalised

    @field_validator("local_path")
    @classmethod
    def _local_path_not_empty(cls, value: Any) -> str:
        value = str(value)
        if not value.strip():
            raise ValueError("local_path must not be empty")
        return value

    @field_validator("instance_name")
    @classmethod
    def _instance_name_rules(cls, value: str | None) -> str | None:
        if value is not None and not FILESTORE_INSTANCE.match(value):
            raise ValueError(
                f"instance_name {value!r} is not a Filestore instance ID: expected 1-63 "
                "lowercase letters, digits or '-', starting with a letter"
            )
        return value

    @field_validator("share_name")
    @classmethod
    def _share_name_rules(cls, value: str) -> str:
        if not FILESTORE_SHARE.match(value):
            raise ValueError(
                f"share_name {value!r} is not a Filestore share name: expected at most 32 "
                "letters, digits or '_', starting with a letter"
            )
        return value

    @field_validator("location")
    @classmethod
    def _location_matches_tier(cls, value: str | None, info: ValidationInfo) -> str | None:
        tier = info.data.get("tier")
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

    @field_validator("capacity_gib")
    @classmethod
    def _capacity_within_tier(cls, value: int, info: ValidationInfo) -> int:
        tier = info.data.get("tier")
        if tier is None:  # the tier itself failed validation and is reported already
            return value
        low, high = TIER_CAPACITY_GIB[tier]
        if not low <= value <= high:
            raise ValueError(
                f"capacity_gib {value} is outside the {tier} tier's range {low}..{high} GiB"
            )
        return value

    @field_validator("ip_address")
    @classmethod
    def _ip_address_is_ipv4(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            return str(ipaddress.IPv4Address(value.strip()))
        except ValueError as exc:
            raise ValueError(
                f"ip_address {value!r} is not an IPv4 address (expected e.g. 10.0.0.2)"
            ) from exc

    @field_validator("storage_class")
    @classmethod
    def _storage_class_name(cls, value: str | None) -> str | None:
        return None if value is None else dns1123_subdomain(value, "storage_class")

    @field_validator("pv_name", "pvc_name")
    @classmethod
    def _object_names(cls, value: str, info: ValidationInfo) -> str:
        return dns1123_subdomain(value, str(info.field_name))

    @field_validator("namespace", "volume_name")
    @classmethod
    def _label_names(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else dns1123_label(value, str(info.field_name))

    @model_validator(mode="after")
    def _provisioning_is_consistent(self) -> FilestoreStorage:
        if self.ip_address is not None and self.storage_class is not None:
            raise ValueError(
                "ip_address (static provisioning) and storage_class (dynamic provisioning) "
                "are mutually exclusive: set exactly one"
            )
        if self.ip_address is not None:
            missing = [f for f in ("instance_name", "location") if getattr(self, f) is None]
            if missing:
                raise ValueError(
                    f"static provisioning (ip_address set) also needs {', '.join(missing)}"
                )
        implied_tier = GKE_STORAGE_CLASS_TIERS.get(self.storage_class or "")
        if implied_tier is not None and implied_tier != self.tier:
            raise ValueError(
                f"storage_class {self.storage_class!r} provisions the {implied_tier} tier "
                f"but tier is {self.tier}"
            )
        return self

    # -- paths -------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The share's local root, resolved now (relative to the working directory)."""
        return Path(self.local_path).expanduser().resolve()

    def share(self) -> Share:
        """The trainer's view of the share: every fraudpipe path under `local_path`."""
        return Share.at(self.root)

    def resolve(self, path: str | Path | None) -> Path:
        """The local path of `path` on the share, refusing anything outside it.

        Args:
            path: Relative to the share's root, or absolute under either `local_path` or
                `mount_path` (a path a pod reported is translated to this machine).

        Raises:
            PathEscapesShareError: `..`, a symlink or an absolute path leads outside.
        """
        root = self.root
        if path is None or str(path) == "":
            return root
        candidate = Path(path).expanduser()
        if candidate.is_absolute():
            pod_path = PurePosixPath(posixpath.normpath(str(candidate)))
            mount = PurePosixPath(self.mount_path)
            if pod_path == mount or mount in pod_path.parents:
                candidate = root / pod_path.relative_to(mount)
        else:
            candidate = root / candidate
        resolved = candidate.resolve()
        if resolved != root and root not in resolved.parents:
            raise PathEscapesShareError(
                f"path {str(path)!r} resolves to {resolved}, outside the share root {root}"
            )
        return resolved

    def pod_path(self, path: str | Path | None = None) -> str:
        """Where `path` (on the share) is seen inside pods, under `mount_path`."""
        relative = self.resolve(path).relative_to(self.root)
        return str(PurePosixPath(self.mount_path) / PurePosixPath(*relative.parts))

    # -- Prefect file-system interface (result storage) -------------------------------

    async def aread_path(self, path: str) -> bytes:
        """Read a file on the share (async)."""
        return await anyio.to_thread.run_sync(self._read, path)

    # Prefect's sync result path calls read_path(..., _sync=True) (docs/facts.md#prefect);
    # async_dispatch pops `_sync` and picks the sync or async implementation. Prefect's own
    # LocalFileSystem (prefect/filesystems.py) overrides its abstract async methods the same
    # way, hence the ignores.
    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:  # type: ignore[override]
        """Read a file on the share."""
        return self._read(path)

    async def awrite_path(self, path: str, content: bytes) -> str:
        """Write a file on the share atomically (async); returns its local path."""
        return await anyio.to_thread.run_sync(self._write, path, content)

    @async_dispatch(awrite_path)
    def write_path(self, path: str, content: bytes) -> str:  # type: ignore[override]
        """Write a file on the share atomically; returns its local path."""
        return self._write(path, content)

    def _read(self, path: str) -> bytes:
        target = self.resolve(path)
        if not target.is_file():
            raise FileNotFoundError(f"{target} (path {path!r} on the share) is not a file")
        return target.read_bytes()

    def _write(self, path: str, content: bytes) -> str:
        target = self.resolve(path)
        if target.exists() and not target.is_file():
            raise IsADirectoryError(f"{target} (path {path!r} on the share) is a directory")
        atomic_write_bytes(target, content)
        return str(target)

    # -- Kubernetes and Hera ----------------------------------------------------------

    @property
    def provisioning(self) -> Literal["static", "dynamic", "none"]:
        """Which manifests the block can render."""
        if self.ip_address is not None:
            return "static"
        return "dynamic" if self.storage_class is not None else "none"

    def render_pv_pvc(self) -> list[dict[str, Any]]:
        """The Kubernetes manifests that give pods the share.

        Static: a PersistentVolume on the instance's NFS export and a ReadWriteMany claim
        bound to it by `volumeName` with `storageClassName: ""` (so no provisioner steps
        in). Dynamic: only the claim, with the CSI driver's storage class.

        Raises:
            ProvisioningNotConfiguredError: neither `ip_address` nor `storage_class` is set.
        """
        storage = f"{self.capacity_gib}Gi"
        claim_metadata: dict[str, Any] = {"name": self.pvc_name}
        if self.namespace is not None:
            claim_metadata["namespace"] = self.namespace
        claim: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": claim_metadata,
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": storage}},
            },
        }
        if self.provisioning == "dynamic":
            claim["spec"]["storageClassName"] = self.storage_class
            return [claim]
        if self.provisioning == "none":
            raise ProvisioningNotConfiguredError(
                "FilestoreStorage has neither ip_address (static provisioning) nor "
                "storage_class (dynamic provisioning): set one to render the PV/PVC"
            )
        claim["spec"]["storageClassName"] = ""
        claim["spec"]["volumeName"] = self.pv_name
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": self.pv_name},
            "spec": {
                "capacity": {"storage": storage},
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "persistentVolumeReclaimPolicy": "Retain",
                "nfs": {"server": self.ip_address, "path": f"/{self.share_name}"},
            },
        }
        return [volume, claim]

    def hera_volume(self) -> Any:
        """The workflow volume (`hera.workflows.models.Volume`) claiming the share."""
        from hera.workflows.models import PersistentVolumeClaimVolumeSource, Volume

        return Volume(
            name=self.volume_name,
            persistent_volume_claim=PersistentVolumeClaimVolumeSource(claim_name=self.pvc_name),
        )

    def hera_volume_mount(self, read_only: bool = False) -> Any:
        """The container mount (`hera.workflows.models.VolumeMount`) at `mount_path`."""
        from hera.workflows.models import VolumeMount

        return VolumeMount(name=self.volume_name, mount_path=self.mount_path, read_only=read_only)
