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

import posixpath
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import anyio.to_thread
from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.filesystems import WritableFileSystem
from pydantic import Field, HttpUrl, ValidationInfo, field_validator, model_validator

from blocks.errors import PathEscapesShareError
from blocks.filestore_manifests import hera_volume, hera_volume_mount, pv_pvc_manifests
from blocks.filestore_rules import (
    GKE_STORAGE_CLASS_TIERS,
    FilestoreTier,
    check_capacity,
    check_instance_name,
    check_ipv4,
    check_location,
    check_mount_path,
    check_share_name,
)
from blocks.k8s_names import dns1123_label, dns1123_subdomain
from trainer.share.files import atomic_write_bytes
from trainer.share.layout import Share


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
        return check_mount_path(value)

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
        return check_instance_name(value)

    @field_validator("share_name")
    @classmethod
    def _share_name_rules(cls, value: str) -> str:
        return check_share_name(value)

    @field_validator("location")
    @classmethod
    def _location_matches_tier(cls, value: str | None, info: ValidationInfo) -> str | None:
        return check_location(value, info.data.get("tier"))

    @field_validator("capacity_gib")
    @classmethod
    def _capacity_within_tier(cls, value: int, info: ValidationInfo) -> int:
        return check_capacity(value, info.data.get("tier"))

    @field_validator("ip_address")
    @classmethod
    def _ip_address_is_ipv4(cls, value: str | None) -> str | None:
        return check_ipv4(value)

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
        """The Kubernetes manifests that give pods the share (`pv_pvc_manifests`).

        Raises:
            ProvisioningNotConfiguredError: neither `ip_address` nor `storage_class` is set.
        """
        return pv_pvc_manifests(self)

    def hera_volume(self) -> Any:
        """The workflow volume (`hera.workflows.models.Volume`) claiming the share."""
        return hera_volume(self)

    def hera_volume_mount(self, read_only: bool = False) -> Any:
        """The container mount (`hera.workflows.models.VolumeMount`) at `mount_path`."""
        return hera_volume_mount(self, read_only)
