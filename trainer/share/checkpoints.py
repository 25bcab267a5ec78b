"""Checkpoints: skops files written atomically, byte-reproducible, loaded only if verified.

A checkpoint is found through the lineage (never by listing the share) and loaded only
after its sha256 matches the lineage's record, and skops loads only trusted types
(docs/facts.md#checkpoints), so a file planted on the share cannot execute code.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import skops
import skops.io as sio
from skops.io._utils import SaveContext, get_state
from skops.io.exceptions import UntrustedTypesFoundException

from trainer.errors import LineageError
from trainer.learners.registry import TRUSTED_TYPES
from trainer.share.files import sha256_bytes

#: zip entries get this timestamp so the same model always gives the same bytes.
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


_ARRAY_FILE = re.compile(r"^\d+\.npy$")


def _renumber(schema, ids: dict, files: dict):
    """Replace skops' memory-address ids and array file names by first-seen ordinals."""
    if isinstance(schema, dict):
        out = {}
        for key, value in sorted(schema.items()):  # canonical order, not insertion order
            if key == "__id__" and isinstance(value, int):
                out[key] = ids.setdefault(value, len(ids))
            else:
                out[key] = _renumber(value, ids, files)
        return out
    if isinstance(schema, list):
        return [_renumber(item, ids, files) for item in schema]
    if isinstance(schema, str) and _ARRAY_FILE.match(schema):
        return files.setdefault(schema, f"{len(files):06d}.npy")
    return schema


class _Entries(dict):
    """Where skops writes a model's array files (`SaveContext.zip_file`): a dict, not a zip.

    skops' savers call only `writestr` and `namelist`; keeping the bytes here spares
    writing a zip that `dump_model` would read back and rewrite at once.
    """

    def writestr(self, name: str, data) -> None:
        self[name] = bytes(data)  # `data` may be a view of a buffer skops reuses

    def namelist(self) -> list[str]:
        return list(self)


def dump_model(model) -> bytes:
    """The model as reproducible skops bytes.

    What `skops.io.dumps` writes, made reproducible: skops names arrays and memo entries
    after `id()` of the objects (memory addresses) and stamps zip entries with the current
    time; both change between processes. The lineage compares checkpoints by sha256
    across pods, so we renumber and fix the time. skops' own steps (`_persist._save`) are
    done here so that its schema is not encoded with `indent=2` (json's pure-Python
    encoder, a fifth of the dump) only to be parsed back, nor its arrays zipped and
    unzipped again: the same bytes in half the time (a step's checkpoint, every day).
    """
    arrays = _Entries()
    context = SaveContext(zip_file=arrays)  # duck-typed: skops only calls what _Entries has
    state = get_state(model, context)
    context.clear_memo()
    state["protocol"] = context.protocol
    state["_skops_version"] = skops.__version__
    ids: dict[int, int] = {}
    files: dict[str, str] = {}
    # Through JSON and back, as a reader of the file sees the schema (JSON's own types).
    schema = _renumber(json.loads(json.dumps(state)), ids, files)
    # compact: an indent would switch json to its pure-Python encoder
    entries = {"schema.json": json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()}
    for name, data in arrays.items():
        entries[files.get(name, name)] = data
    out = io.BytesIO()
    # Stored, not deflated: the bulk is the booster's reservoir of float rows, which deflate
    # shrinks ~1.7x at the cost of most of the dump and a third of the load (default size,
    # lgbm_mlp_profiles at day 180: 2.4 MB in 0.075 + 0.033 s deflated at level 1, 4.1 MB in
    # 0.005 + 0.010 s stored), and the reservoir grows with the day's size. A few MB more
    # on the share per day is cheaper than that CPU in every step.
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as target:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            target.writestr(info, entries[name])
    return out.getvalue()


def verified_bytes(path: str | Path, expected_sha256: str) -> bytes:
    """The checkpoint file's bytes, after checking their sha256 against the lineage's record."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LineageError(f"checkpoint {path} is missing") from None
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise LineageError(
            f"checkpoint {path} has sha256 {actual[:12]}..., the lineage expects "
            f"{expected_sha256[:12]}...: the file was changed or corrupted"
        )
    return data


def load_checkpoint(path: str | Path, expected_sha256: str):
    """Load a checkpoint after checking its sha256 against the lineage's record."""
    data = verified_bytes(path, expected_sha256)
    # one parse: `loads` itself refuses a type outside the trusted list, before building it
    try:
        return sio.loads(data, trusted=TRUSTED_TYPES)
    except UntrustedTypesFoundException as exc:
        raise LineageError(f"checkpoint {path} contains untrusted types: {exc}") from None
