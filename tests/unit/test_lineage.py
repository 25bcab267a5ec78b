"""The lineage: compare-and-swap commits, the chain, verification, rewind."""

import threading

import pytest

from trainer.errors import HeadMovedError, LeaseLostError, LineageError
from trainer.share.files import atomic_write_bytes, sha256_bytes
from trainer.share.layout import Share
from trainer.share.lineage import Entry, EntryStatus, Lineage, commit, rewind, verify


def _entry(share, date, parent, payload=None, publish=True):
    data = (payload or date).encode()
    path = share.checkpoint(__import__("datetime").date.fromisoformat(date))
    if publish:
        atomic_write_bytes(path, data)
    return Entry(date=date, checkpoint=str(path.relative_to(share.root)), sha256=sha256_bytes(data),
                 parent_sha256=parent, dataset_sha256="d" * 64, learner="sgd")


@pytest.fixture
def share(tmp_path):
    return Share.at(tmp_path)


def test_chain_in_order_and_verified(share):
    e1 = _entry(share, "2018-04-01", None)
    commit(share, e1, None)
    e2 = _entry(share, "2018-04-02", e1.sha256)
    commit(share, e2, e1.sha256)
    chain = verify(share)
    assert [e.date.isoformat() for e in chain] == ["2018-04-01", "2018-04-02"]
    assert Lineage.load(share).head == e2.sha256


def test_commit_refuses_a_stale_parent(share):
    e1 = _entry(share, "2018-04-01", None)
    commit(share, e1, None)
    # a second writer that started from the empty chain must not fork it
    other = _entry(share, "2018-04-02", None, payload="other")
    with pytest.raises(HeadMovedError):
        commit(share, other, None)
    assert [e.date.isoformat() for e in Lineage.load(share).chain()] == ["2018-04-01"]


def test_guard_can_abort_the_commit(share):
    e1 = _entry(share, "2018-04-01", None)

    def lost():
        raise LeaseLostError("lease lost")

    with pytest.raises(LeaseLostError):
        commit(share, e1, None, guard=lost)
    assert Lineage.load(share).head is None


def test_concurrent_commits_from_the_same_parent_never_fork(share):
    e1 = _entry(share, "2018-04-01", None)
    commit(share, e1, None)
    candidates = [_entry(share, "2018-04-02", e1.sha256, payload=f"c{i}", publish=False)
                  for i in range(8)]
    outcomes = []

    def attempt(entry):
        # each writer moves its checkpoint into place only once it has won the CAS
        path = share.root / entry.checkpoint
        data = [f"c{i}" for i in range(8) if sha256_bytes(f"c{i}".encode()) == entry.sha256][0]
        try:
            commit(share, entry, e1.sha256,
                   publish=lambda: atomic_write_bytes(path, data.encode()))
            outcomes.append("ok")
        except HeadMovedError:
            outcomes.append("moved")

    threads = [threading.Thread(target=attempt, args=(c,)) for c in candidates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1
    assert len(verify(share)) == 2


def test_verify_names_the_broken_link(share):
    e1 = _entry(share, "2018-04-01", None)
    commit(share, e1, None)
    e2 = _entry(share, "2018-04-02", e1.sha256)
    commit(share, e2, e1.sha256)
    share.checkpoint(__import__("datetime").date(2018, 4, 1)).write_bytes(b"tampered")
    with pytest.raises(LineageError, match="2018-04-01"):
        verify(share)


def test_rewind_keeps_the_old_branch_marked_superseded(share):
    import datetime as dt
    e1 = _entry(share, "2018-04-01", None)
    commit(share, e1, None)
    e2 = _entry(share, "2018-04-02", e1.sha256)
    commit(share, e2, e1.sha256)
    dropped = rewind(share, dt.date(2018, 4, 1))
    lineage = Lineage.load(share)
    assert [e.date.isoformat() for e in dropped] == ["2018-04-02"]
    assert lineage.head == e1.sha256
    assert [e.status for e in lineage.entries] == ["active", EntryStatus.SUPERSEDED]
    assert [e.date.isoformat() for e in verify(share)] == ["2018-04-01"]
