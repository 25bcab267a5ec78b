"""FilestoreStorage: construction-time validation, path containment, PV/PVC, Hera volume."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from blocks import FilestoreStorage
from blocks.errors import PathEscapesShareError, ProvisioningNotConfiguredError
from trainer.share.layout import Share

STATIC = dict(ip_address="10.0.0.2", instance_name="nfs-server", location="us-central1-a")


def error_fields(exc: ValidationError) -> set[str]:
    return {str(part) for err in exc.errors() for part in err["loc"]}


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        (
            {"ip_address": "10.0.0.300", **{k: v for k, v in STATIC.items() if k != "ip_address"}},
            "ip_address",
            "IPv4",
        ),
        ({"ip_address": "fileserver.local"}, "ip_address", "IPv4"),
        ({"capacity_gib": 512}, "capacity_gib", "1024..65434"),
        ({"tier": "BASIC_SSD", "capacity_gib": 2000}, "capacity_gib", "BASIC_SSD"),
        ({"tier": "ENTERPRISE", "capacity_gib": 20480}, "capacity_gib", "ENTERPRISE"),
        ({"tier": "NEARLINE"}, "tier", "BASIC_HDD"),
        ({"location": "us-central1"}, "location", "zone"),
        ({"tier": "REGIONAL", "location": "us-central1-a"}, "location", "region"),
        ({"location": "Central US"}, "location", "zone"),
        ({"mount_path": "mnt/fileserver"}, "mount_path", "absolute"),
        ({"mount_path": "/"}, "mount_path", "absolute"),
        ({"pvc_name": "Fileserver_Claim"}, "pvc_name", "DNS-1123"),
        ({"pv_name": "-fileserver"}, "pv_name", "DNS-1123"),
        ({"namespace": "a.b"}, "namespace", "DNS-1123 label"),
        ({"volume_name": "x" * 64}, "volume_name", "DNS-1123 label"),
        ({"storage_class": "Standard RWX"}, "storage_class", "DNS-1123"),
        ({"instance_name": "1nfs"}, "instance_name", "Filestore instance"),
        ({"share_name": "vol-1"}, "share_name", "share name"),
        ({"local_path": "  "}, "local_path", "empty"),
    ],
)
def test_bad_field_fails_at_construction_naming_the_field(fields, field, words):
    with pytest.raises(ValidationError) as caught:
        FilestoreStorage(**fields)
    assert field in error_fields(caught.value) or field in str(caught.value)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({**STATIC, "storage_class": "standard-rwx"}, "mutually exclusive"),
        ({"ip_address": "10.0.0.2"}, "instance_name, location"),
        ({"storage_class": "premium-rwx", "capacity_gib": 2560}, "BASIC_SSD tier but tier is"),
    ],
)
def test_inconsistent_provisioning_is_refused(fields, words):
    with pytest.raises(ValidationError, match=words):
        FilestoreStorage(**fields)


def test_defaults_describe_the_gke_sample_and_the_embedded_share():
    storage = FilestoreStorage()
    assert storage.mount_path == "/mnt/fileserver"
    assert (storage.pv_name, storage.pvc_name) == ("fileserver", "fileserver-claim")
    assert storage.provisioning == "none"
    assert storage.root == (Path.cwd() / ".fraudpipe" / "share").resolve()


def test_good_values_are_normalised():
    storage = FilestoreStorage(
        **{**STATIC, "ip_address": " 10.0.0.2 "}, mount_path="/mnt/fileserver/", tier="BASIC_HDD"
    )
    assert storage.ip_address == "10.0.0.2"
    assert storage.mount_path == "/mnt/fileserver"
    regional = FilestoreStorage(tier="REGIONAL", location="europe-west4", capacity_gib=100)
    assert regional.location == "europe-west4"


@pytest.mark.parametrize(
    "escape", ["..", "../outside", "output/../../x", "/etc/passwd", "/mnt/fileserver/../x"]
)
def test_resolve_refuses_paths_outside_the_share(tmp_path, escape):
    storage = FilestoreStorage(local_path=str(tmp_path / "share"))
    with pytest.raises(PathEscapesShareError, match="outside the share root"):
        storage.resolve(escape)


def test_resolve_refuses_a_symlink_leading_out(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    (tmp_path / "secret").write_text("x")
    os.symlink(tmp_path / "secret", root / "link")
    storage = FilestoreStorage(local_path=str(root))
    with pytest.raises(PathEscapesShareError):
        storage.read_path("link")


def test_resolve_maps_relative_local_and_pod_paths_into_the_share(tmp_path):
    root = (tmp_path / "share").resolve()
    storage = FilestoreStorage(local_path=str(root))
    assert storage.resolve("output/lineage.json") == root / "output" / "lineage.json"
    assert storage.resolve(root / "features") == root / "features"
    assert storage.resolve("/mnt/fileserver/output/report.txt") == root / "output" / "report.txt"
    assert storage.resolve("") == root
    assert storage.pod_path("output/report.txt") == "/mnt/fileserver/output/report.txt"


def test_share_is_the_trainer_layout_at_local_path(tmp_path):
    storage = FilestoreStorage(local_path=str(tmp_path))
    share = storage.share()
    assert isinstance(share, Share)
    assert share.lineage == tmp_path.resolve() / "output" / "lineage.json"


def test_write_then_read_round_trip_sync_and_async(tmp_path):
    import asyncio

    storage = FilestoreStorage(local_path=str(tmp_path))
    written = storage.write_path("results/a.bin", b"\x00payload", _sync=True)
    assert Path(written) == tmp_path.resolve() / "results" / "a.bin"
    assert storage.read_path("results/a.bin", _sync=True) == b"\x00payload"
    assert asyncio.run(storage.awrite_path("results/b.bin", b"async")).endswith("b.bin")
    assert asyncio.run(storage.aread_path("results/b.bin")) == b"async"
    # No temporary files are left beside the final ones (atomic writes).
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["a.bin", "b.bin"]


def test_read_of_a_missing_file_names_it(tmp_path):
    storage = FilestoreStorage(local_path=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        storage.read_path("nope.bin", _sync=True)


def test_static_provisioning_renders_the_samples_pv_and_bound_pvc():
    # GIVEN a Filestore instance created as in the GKE sample (BASIC_HDD, share NFSVol, 1 TiB)
    storage = FilestoreStorage(**STATIC, namespace="argo")
    # WHEN the manifests are rendered
    pv, pvc = storage.render_pv_pvc()
    # THEN the PV points at the NFS export and the claim binds to exactly that PV
    assert pv["kind"] == "PersistentVolume" and pv["apiVersion"] == "v1"
    assert pv["metadata"] == {"name": "fileserver"}
    assert pv["spec"]["nfs"] == {"server": "10.0.0.2", "path": "/NFSVol"}
    assert pv["spec"]["capacity"] == {"storage": "1024Gi"}
    assert pv["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["kind"] == "PersistentVolumeClaim"
    assert pvc["metadata"] == {"name": "fileserver-claim", "namespace": "argo"}
    assert pvc["spec"]["volumeName"] == "fileserver"
    assert pvc["spec"]["storageClassName"] == ""
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1024Gi"


def test_dynamic_provisioning_renders_only_a_claim_on_the_storage_class():
    storage = FilestoreStorage(storage_class="standard-rwx", capacity_gib=2048)
    manifests = storage.render_pv_pvc()
    assert [m["kind"] for m in manifests] == ["PersistentVolumeClaim"]
    spec = manifests[0]["spec"]
    assert spec["storageClassName"] == "standard-rwx"
    assert spec["resources"]["requests"]["storage"] == "2048Gi"
    assert spec["accessModes"] == ["ReadWriteMany"]
    assert "volumeName" not in spec


def test_render_without_provisioning_says_what_to_set():
    with pytest.raises(ProvisioningNotConfiguredError, match="ip_address.*storage_class"):
        FilestoreStorage().render_pv_pvc()


def test_hera_volume_and_mount_point_at_the_claim():
    from hera.workflows.models import Volume, VolumeMount

    storage = FilestoreStorage(pvc_name="share-claim", volume_name="share", mount_path="/data")
    volume = storage.hera_volume()
    mount = storage.hera_volume_mount()
    assert isinstance(volume, Volume) and isinstance(mount, VolumeMount)
    assert volume.name == mount.name == "share"
    assert volume.persistent_volume_claim.claim_name == "share-claim"
    assert mount.mount_path == "/data"
    assert storage.hera_volume_mount(read_only=True).read_only is True
