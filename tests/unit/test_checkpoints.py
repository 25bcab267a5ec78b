"""Checkpoints: reproducible bytes, sha256 verified before loading, untrusted types refused."""

import io
import zipfile

import numpy as np
import pytest

from tests.shares import save_checkpoint
from trainer.errors import LineageError
from trainer.learners import DEFAULT_LEARNER
from trainer.learners.registry import learner_inputs, make_learner
from trainer.share.checkpoints import dump_model, load_checkpoint
from trainer.share.files import sha256_bytes

#: Columns of the default learner's inputs.
WIDTH = len(learner_inputs(DEFAULT_LEARNER))


def _trained(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(500, WIDTH))
    y = (X[:, 0] > 1.5).astype(int)
    return make_learner().partial_fit(X, y), X, y


def test_loaded_then_trained_equals_trained_in_memory():
    model, X, y = _trained()
    sha_path_free = dump_model(model)
    import skops.io as sio

    from trainer.learners.registry import TRUSTED_TYPES
    reloaded = sio.loads(sha_path_free, trusted=TRUSTED_TYPES)
    model.partial_fit(X, y)
    reloaded.partial_fit(X, y)
    assert dump_model(model) == dump_model(reloaded)


def test_round_trip_and_sha_check(tmp_path):
    model, X, _ = _trained()
    path = tmp_path / "model_cpt_2018-04-01.skops"
    sha = save_checkpoint(path, model)
    loaded = load_checkpoint(path, sha)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
    with pytest.raises(LineageError, match="sha256"):
        load_checkpoint(path, "0" * 64)


def test_entries_are_stored_and_deflated_checkpoints_of_older_chains_still_load(tmp_path):
    # GIVEN a checkpoint as this version writes it: every entry stored, none deflated
    model, X, _ = _trained()
    data = dump_model(model)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
        entries = {i.filename: archive.read(i) for i in archive.infolist()}
    # AND the same model as earlier versions wrote it: deflated at level 1
    old = io.BytesIO()
    with zipfile.ZipFile(old, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    path = tmp_path / "model_cpt_2018-04-01.skops"
    path.write_bytes(old.getvalue())
    # WHEN the older checkpoint is loaded THEN it is the same model
    loaded = load_checkpoint(path, sha256_bytes(old.getvalue()))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert dump_model(loaded) == data


def test_tampered_file_is_refused(tmp_path):
    model, _, _ = _trained()
    path = tmp_path / "cpt.skops"
    sha = save_checkpoint(path, model)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(LineageError, match="changed or corrupted"):
        load_checkpoint(path, sha)


def test_untrusted_type_is_refused_even_with_matching_sha(tmp_path):
    # GIVEN a skops file whose schema names a class nobody trusted
    model, _, _ = _trained()
    path = tmp_path / "cpt.skops"
    save_checkpoint(path, model)
    forged = tmp_path / "forged.skops"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(forged, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "schema.json":
                # the default learner's outermost class, whatever its members are
                assert b'"AveragedClassifier"' in data
                data = data.replace(b'"AveragedClassifier"', b'"Evil"', 1)
            dst.writestr(name, data)
    from trainer.share.files import sha256_file
    # WHEN it is loaded with its own (matching) sha256
    # THEN skops' type check refuses it
    with pytest.raises(LineageError, match="untrusted"):
        load_checkpoint(forged, sha256_file(forged))
