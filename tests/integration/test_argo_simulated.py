"""Simulated execution of the rendered Argo workflow by the controller's rules; its pods
really train.

The harness reads `deployments/argo/fraudpipe-train-workflow.yaml` (the committed file,
not the Python) and runs it with `tests/argo_controller.py`, which follows the Argo
controller's rules (tags and expressions, podSpecPatch, retries and backoff, steps,
parallelism and failFast counting; each rule cites its source file there). Every pod's
substituted command and args, or script source, runs locally at the pod's start: the PVC
mount path is mapped to a temporary share, `/tmp` to a per-pod directory. Time is
simulated; a "cluster" decides how long each pod takes and which Spot pods are preempted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from argo_controller import POOLS, Controller, PodCall, PodResult, Preempting, fits

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "deployments" / "argo" / "fraudpipe-train-workflow.yaml"
MOUNT = "/mnt/fileserver"
VENV_BIN = Path(sys.executable).parent
MOUNTS = re.compile(r"/mnt/fileserver|(?<![\w/.-])/tmp(?![\w.-])")

pytestmark = pytest.mark.integration


class LocalPods:
    """Runs each pod's command as a local process (the runner the controller calls)."""

    def __init__(self, share: Path, scratch: Path, extra_env: dict[str, str] | None = None
                 ) -> None:
        self.share = share
        self.scratch = scratch
        self.extra_env = extra_env or {}
        self.argvs: list[tuple[str, list[str]]] = []

    def __call__(self, call: PodCall) -> PodResult:
        pod_tmp = self.scratch / f"pod-{len(self.argvs):04d}-{call.template}"
        pod_tmp.mkdir(parents=True)
        mapping = {MOUNT: str(self.share), "/tmp": str(pod_tmp)}

        def local(text: str) -> str:
            # one pass, so a mapped path under /tmp is never mapped twice
            return MOUNTS.sub(lambda m: mapping[m.group(0)], text)

        body = call.body
        env = {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **self.extra_env}
        for variable in body.get("env", []):
            if "value" in variable:
                env[variable["name"]] = local(variable["value"])
            # valueFrom (Secrets) have no value here: like an optional Secret left out
        command = [local(part) for part in body.get("command", [])]
        args = [local(part) for part in body.get("args", [])]
        if "source" in body:
            source = pod_tmp / "script"
            source.write_text(local(body["source"]))
            args = [str(source)]
        if command and command[0] == "python":
            command[0] = sys.executable
        argv = command + args
        self.argvs.append((call.template, argv))
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600,
                              cwd=pod_tmp)
        outputs = {}
        if done.returncode == 0:
            for parameter in call.outputs:
                path = Path(local(parameter["valueFrom"]["path"]))
                outputs[parameter["name"]] = path.read_text().strip()
        return PodResult(done.returncode, outputs, done.stdout + done.stderr)


#: Seconds each pod runs in the simulated cluster.
DURATIONS = {"plan": 20, "train-batch": 15 * 60, "report": 60}


def fraudpipe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(VENV_BIN / "fraudpipe"), *args], capture_output=True, text=True,
                          timeout=900, env={**os.environ, **(env or {})})
    assert done.returncode == 0, (f"fraudpipe {' '.join(args)} exited {done.returncode}\n"
                                  f"{done.stderr}")
    return done


def chain(root: Path) -> list[tuple[str, str]]:
    """(date, checkpoint sha256) of every link of the lineage, oldest first."""
    document = json.loads(fraudpipe("lineage", "--storage", str(root), "--json").stdout)
    links = document["chain"] if isinstance(document, dict) else document
    return [(str(link.get("date") or link.get("dataset_date")),
             link.get("checkpoint_sha256") or link.get("sha256")) for link in links]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> tuple[Path, list[str]]:
    """10 simulated days, small population, ingested onto a fresh share."""
    base = tmp_path_factory.mktemp("argo-sim")
    source, root = base / "landing", base / "share"
    fraudpipe("simulate", "--out", str(source), "--start", "2018-04-01", "--days", "10",
              "--customers", "300", "--terminals", "600", "--seed", "7")
    fraudpipe("ingest", "--source", str(source), "--storage", str(root))
    days = [f"2018-04-{day:02d}" for day in range(1, 11)]
    return root, days


def test_rendered_workflow_survives_preemptions_and_trains_the_same_lineage(ingested, tmp_path):
    root, days = ingested
    # GIVEN two copies of the same ingested share
    argo_share, local_share = tmp_path / "argo", tmp_path / "local"
    shutil.copytree(root, argo_share)
    shutil.copytree(root, local_share)
    # WHEN the committed workflow runs them in 3-day batches, the second batch's pod being
    # preempted on its first two attempts (the second after 9.5 minutes), and
    # `fraudpipe train` runs the other copy
    pods = LocalPods(argo_share, tmp_path / "pods")
    cluster = Preempting(DURATIONS, {("2018-04-04", 0): 5 * 60, ("2018-04-04", 1): 9.5 * 60})
    controller = Controller(yaml.safe_load(WORKFLOW.read_text()),
                            {"datasets": json.dumps(days), "days-per-step": "3"}, pods, cluster)
    outcome = controller.run()
    fraudpipe("train", "--storage", str(local_share))
    # THEN the workflow succeeded: plan, the chain with two retries, report (no features
    # stage: each step computes its day's features from the carried state)
    assert outcome.phase == "Succeeded", controller.summary()
    started = [(p.template, p.inputs.get("first"), p.retries) for p in controller.pods]
    assert started == ([("plan", None, 0)]
                       + [("train-batch", "2018-04-01", 0), ("train-batch", "2018-04-04", 0),
                          ("train-batch", "2018-04-04", 1), ("train-batch", "2018-04-04", 2),
                          ("train-batch", "2018-04-07", 0), ("train-batch", "2018-04-10", 0),
                          ("report", None, 0)])
    # the third attempt ran off Spot, by affinity; preempted attempts never ran their command
    third = controller.pods[4]
    assert not third.pool.spot and not any(fits(third.spec, p) for p in POOLS if p.spot)
    assert [name for name, _ in pods.argvs].count("train-batch") == 4
    assert pods.argvs[1][1][:2] == ["sh", "-c"]
    assert all((argo_share / "output" / "feature_state" / f"{day}.parquet").is_file()
               for day in days)
    # and both lineages hold the same checkpoints, link for link, in date order
    argo_chain, local_chain = chain(argo_share), chain(local_share)
    assert [date for date, _ in argo_chain] == days
    assert argo_chain == local_chain
    assert (argo_share / "output" / "report.json").is_file()


def test_queued_mode_drains_a_real_redis(ingested, tmp_path, redis_url):
    root, days = ingested
    share = tmp_path / "share"
    shutil.copytree(root, share)
    from trainer.queue.settings import RedisSettings

    settings = RedisSettings.from_url(redis_url)
    fraudpipe("queue", "push", "--redis-url", redis_url, *days[:4])
    # the workflow passes host/port/db as parameters and FRAUDPIPE_REDIS_* variables
    pods = LocalPods(share, tmp_path / "pods")
    controller = Controller(yaml.safe_load(WORKFLOW.read_text()),
                            {"datasets": "queued", "redis-host": settings.host,
                             "redis-port": str(settings.port), "redis-db": str(settings.db)},
                            pods, Preempting(DURATIONS))
    assert controller.run().phase == "Succeeded", controller.summary()
    assert [name for name, _ in pods.argvs] == ["plan", "drain-queue", "report"]
    assert [date for date, _ in chain(share)] == days[:4]
