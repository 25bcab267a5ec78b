"""What Kubernetes and Argo need to give pods the share: the PV/PVC and the Hera volume.

Rendered from a `FilestoreStorage` block's fields (any object with the fields of
`FilestoreVolume`): static provisioning (a PersistentVolume on the instance's NFS export
and a claim bound to it) or dynamic (a claim the Filestore CSI driver provisions).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from blocks.errors import ProvisioningNotConfiguredError


class FilestoreVolume(Protocol):
    """The fields of the share's block that its manifests are rendered from."""

    capacity_gib: int
    pvc_name: str
    pv_name: str
    namespace: str | None
    storage_class: str | None
    ip_address: str | None
    share_name: str
    volume_name: str
    mount_path: str

    @property
    def provisioning(self) -> Literal["static", "dynamic", "none"]:
        """Which manifests can be rendered."""
        ...


def pv_pvc_manifests(share: FilestoreVolume) -> list[dict[str, Any]]:
    """The Kubernetes manifests that give pods the share.

    Static: a PersistentVolume on the instance's NFS export and a ReadWriteMany claim
    bound to it by `volumeName` with `storageClassName: ""` (so no provisioner steps
    in). Dynamic: only the claim, with the CSI driver's storage class.

    Raises:
        ProvisioningNotConfiguredError: neither `ip_address` nor `storage_class` is set.
    """
    storage = f"{share.capacity_gib}Gi"
    claim_metadata: dict[str, Any] = {"name": share.pvc_name}
    if share.namespace is not None:
        claim_metadata["namespace"] = share.namespace
    claim: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": claim_metadata,
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": storage}},
        },
    }
    if share.provisioning == "dynamic":
        claim["spec"]["storageClassName"] = share.storage_class
        return [claim]
    if share.provisioning == "none":
        raise ProvisioningNotConfiguredError(
            "FilestoreStorage has neither ip_address (static provisioning) nor "
            "storage_class (dynamic provisioning): set one to render the PV/PVC"
        )
    claim["spec"]["storageClassName"] = ""
    claim["spec"]["volumeName"] = share.pv_name
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": share.pv_name},
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "persistentVolumeReclaimPolicy": "Retain",
            "nfs": {"server": share.ip_address, "path": f"/{share.share_name}"},
        },
    }
    return [volume, claim]


def hera_volume(share: FilestoreVolume) -> Any:
    """The workflow volume (`hera.workflows.models.Volume`) claiming the share."""
    from hera.workflows.models import PersistentVolumeClaimVolumeSource, Volume

    return Volume(
        name=share.volume_name,
        persistent_volume_claim=PersistentVolumeClaimVolumeSource(claim_name=share.pvc_name),
    )


def hera_volume_mount(share: FilestoreVolume, read_only: bool = False) -> Any:
    """The container mount (`hera.workflows.models.VolumeMount`) at `mount_path`."""
    from hera.workflows.models import VolumeMount

    return VolumeMount(name=share.volume_name, mount_path=share.mount_path, read_only=read_only)
