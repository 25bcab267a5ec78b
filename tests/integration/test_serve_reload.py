"""Hot reload under load: a new head is served with no failed request; a bad one is refused.

One `fraudpipe serve` process (uvicorn, real HTTP) answers a steady stream of requests
while the chain's head moves twice: a real step trains the next day (its labels
arrived), then a head whose checkpoint does not match the lineage's sha256 is committed
by hand. Every request must succeed, the answers must switch to the new checkpoint and
never to the bad one, and the refusal must be counted.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time

import httpx
import pytest
from serving import Service, bank_share, transaction

from trainer.cli import main
from trainer.share.files import atomic_write_bytes
from trainer.share.lineage import Lineage

pytestmark = pytest.mark.integration


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_new_head_is_served_without_a_failed_request(tmp_path):
    bank = bank_share(tmp_path)
    day = bank.served[0]
    rows = bank.day_rows(day)
    old = Lineage.load(bank.share).head_entry
    service = Service(bank.share.root, "--clock", "replay", "--today", day.isoformat(),
                      "--mapping", str(bank.mapping), "--reload-interval", "0.5",
                      log=tmp_path / "serve.log")
    answers: list[dict] = []
    failures: list[str] = []
    stop = threading.Event()

    def bodies():
        """The day's transactions, then new ones at its last instant until stopped.

        The stream outlasts the step whatever the service's speed: a new transaction
        (not a repeat, whose answer would be its first one) is scored by the current head.
        """
        for _, row in rows.iterrows():
            yield transaction(row)
        last, extra = transaction(rows.iloc[-1]), 0
        while True:
            extra += 1
            yield {**last, "tx_id": f"{last['tx_id']}-more-{extra}"}

    def load() -> None:
        with httpx.Client(timeout=60) as client:
            for body in bodies():
                if stop.is_set():
                    return
                try:
                    reply = client.post(f"{service.url}/v1/score", json=body)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if reply.status_code != 200:
                    failures.append(reply.text)
                else:
                    answers.append(reply.json())

    try:
        service.wait_ready()
        sender = threading.Thread(target=load)
        sender.start()
        wait_for(lambda: len(answers) >= 20)
        # WHEN the next day's labels arrive and a real step moves the head
        chargebacks = tmp_path / "bank" / "chargebacks" / f"{day}.csv"
        assert main(["labels", "--source", str(chargebacks), "--storage",
                     str(bank.share.root), "--today", day.isoformat()]) == 0
        assert main(["train", "--storage", str(bank.share.root)]) == 0
        new = Lineage.load(bank.share).head_entry
        assert new.sha256 != old.sha256
        wait_for(lambda: answers[-1]["checkpoint"]["sha256"] == new.sha256 or stop.is_set())
        # AND a head whose checkpoint does not verify is committed by hand
        lineage = Lineage.load(bank.share)
        bad_path = bank.share.root / "output" / "model_cpt_tampered.skops"
        shutil.copyfile(bank.share.root / new.checkpoint, bad_path)
        atomic_write_bytes(bad_path, bad_path.read_bytes() + b"tampered")
        bad = dataclasses.replace(new, checkpoint="output/model_cpt_tampered.skops",
                                  sha256="f" * 64, parent_sha256=new.sha256)
        lineage.entries.append(bad)
        lineage.head = bad.sha256
        lineage.save(bank.share)
        wait_for(lambda: 'fraudpipe_serve_reloads_total{outcome="refused"} 1.0'
                 in httpx.get(f"{service.url}/metrics").text)
        count = len(answers)
        wait_for(lambda: len(answers) >= count + 10 or not sender.is_alive())
        stop.set()
        sender.join()
        metrics = httpx.get(f"{service.url}/metrics").text
        ready = httpx.get(f"{service.url}/readyz").json()
    finally:
        stop.set()
        service.stop()
    # THEN nothing failed, the answers moved from the old head to the new one only
    assert failures == []
    served = [a["checkpoint"]["sha256"] for a in answers]
    switch = served.index(new.sha256)
    assert set(served[:switch]) == {old.sha256}
    assert set(served[switch:]) == {new.sha256}
    assert 'fraudpipe_serve_reloads_total{outcome="loaded"} 1.0' in metrics
    assert ready["checkpoint"]["sha256"] == new.sha256
    assert "refused the new head ffffffffffff" in service.log.read_text()
