"""Test helpers for `fraudpipe serve`: a bank-export share with a chain, running services.

`bank_share` simulates a small range as a bank's export (text ids, UTC timestamps, no
labels, chargebacks a week later), ingests its first days one morning at a time through
the CLI with the export's mapping, files the chargebacks and trains: the chain's head is
then a real checkpoint of the default learner (a LightGBM booster inside, so answers have
reasons). The last days are left out, to be served online and then arrive as files.

`Service` runs `fraudpipe serve` as a real process (uvicorn, real HTTP).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
from redis_server import free_port

from trainer.cli import main
from trainer.serving.scorer import ServeConfig
from trainer.serving.share_mapping import serving_mapping
from trainer.share.layout import Share

FRAUDPIPE = str(Path(sys.executable).parent / "fraudpipe")


@dataclass
class BankShare:
    """A share fed from a bank export, and the export's files of the days not ingested."""

    share: Share
    mapping: Path
    daily: Path
    """One CSV per day: export-<date>.csv."""
    served: list[dt.date]
    """The days left for the service (not on the share)."""

    def day_rows(self, day: dt.date) -> pd.DataFrame:
        """The export's rows of `day`, in (timestamp, tx_id) order: the order they happen."""
        rows = pd.read_csv(self.daily / f"export-{day}.csv", dtype={"tx_id": str,
                                                                     "card_id": str,
                                                                     "merchant_id": str})
        return rows.sort_values(["timestamp", "tx_id"], kind="stable", ignore_index=True)

    def replay_config(self, **options) -> ServeConfig:
        """The service's options on this share: its mapping, the replay clock from the first
        served day, reloads left to the test (hourly); `options` override or add."""
        return ServeConfig(**{"mapping": serving_mapping(self.share), "clock": "replay",
                              "today": self.served[0], "reload_seconds": 3600, **options})

    def arrive(self, day: dt.date) -> None:
        """Ingest `day`'s export file (no labels): the day arrives."""
        assert main(["ingest", "--source", str(self.daily / f"export-{day}.csv"), "--storage",
                     str(self.share.root), "--mapping", str(self.mapping)]) == 0


def bank_share(root: Path, *, days: int = 12, served: int = 2, customers: int = 150,
               terminals: int = 300, seed: int = 3, learner: str | None = None) -> BankShare:
    """A share with the first `days - served` days of a bank export ingested and trained."""
    start = dt.date(2018, 4, 1)
    assert main(["simulate", "--out", str(root / "bank"), "--start", start.isoformat(),
                 "--days", str(days), "--customers", str(customers), "--terminals",
                 str(terminals), "--seed", str(seed), "--format", "bank-export"]) == 0
    month = pd.read_csv(root / "bank" / "transactions" / "transactions-2018-04.csv",
                        dtype={"tx_id": str, "card_id": str, "merchant_id": str})
    daily = root / "daily"
    daily.mkdir()
    for day, rows in month.groupby(month["timestamp"].str[:10]):
        rows.to_csv(daily / f"export-{day}.csv", index=False)
    share = Share.at(root / "share")
    mapping = root / "bank" / "fraudpipe-mapping.json"
    result = BankShare(share, mapping, daily,
                       [start + dt.timedelta(days=n) for n in range(days - served, days)])
    landing = root / "landing"
    landing.mkdir()
    labels = root / "labels"
    labels.mkdir()
    last = result.served[0] - dt.timedelta(days=1)
    for n in range(days - served):
        day = start + dt.timedelta(days=n)
        (landing / f"export-{day}.csv").write_bytes((daily / f"export-{day}.csv").read_bytes())
        chargebacks = root / "bank" / "chargebacks" / f"{day}.csv"
        if chargebacks.is_file() and day <= last:
            (labels / chargebacks.name).write_bytes(chargebacks.read_bytes())
    assert main(["ingest", "--source", str(landing), "--storage", str(share.root),
                 "--mapping", str(mapping)]) == 0
    assert main(["labels", "--source", str(labels), "--storage", str(share.root)]) == 0
    assert main(["train", "--storage", str(share.root),
                 *(["--learner", learner] if learner else [])]) == 0
    return result


def transaction(row: pd.Series) -> dict:
    """An export row as the JSON object a client sends (the export's own column names)."""
    return {"tx_id": row["tx_id"], "timestamp": row["timestamp"], "card_id": row["card_id"],
            "merchant_id": row["merchant_id"], "amount": float(row["amount"])}


class Service:
    """`fraudpipe serve` in its own process, on a free loopback port."""

    def __init__(self, storage: Path, *args: str, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [FRAUDPIPE, "serve", "--storage", str(storage), "--port", str(self.port),
             "--log-level", "warning", *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.log = log

    def wait_ready(self, timeout: float = 300) -> dict:
        """Wait for /readyz to answer 200; return its body."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited {self.process.returncode}: "
                                     f"{self.log.read_text()[-3000:]}")
            try:
                answer = httpx.get(f"{self.url}/readyz", timeout=2)
                if answer.status_code == 200:
                    return answer.json()
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve not ready after {timeout} s: "
                             f"{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
