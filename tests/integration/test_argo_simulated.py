"""Simulated execution of the rendered Argo workflow: its commands really train.

The harness reads `deployments/argo/fraudpipe-train-workflow.yaml` (the committed file,
not the Python), resolves parameters the way Argo does (`{{workflow.parameters.*}}`,
`{{inputs.parameters.*}}`, `{{item}}`/`{{item.*}}`, `{{steps.*.outputs.parameters.*}}`,
failing on any reference it cannot resolve), evaluates `when`, expands `withParam`, and
runs every container's command+args and every script's source locally in Argo's order:
step groups one after the other, a loop's items in list order with the template's
`parallelism` (the feature fan-out runs concurrently, the chain one at a time). The PVC
mount path is mapped to a temporary share, `/tmp` to a per-pod directory. Retries,
podSpecPatch, node placement and security contexts are the cluster's business and are
not simulated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "deployments" / "argo" / "fraudpipe-train-workflow.yaml"
MOUNT = "/mnt/fileserver"
VENV_BIN = Path(sys.executable).parent
MOUNTS = re.compile(r"/mnt/fileserver|(?<![\w/.-])/tmp(?![\w.-])")
REFERENCE = re.compile(r"\{\{\s*([^}=][^}]*?)\s*\}\}")

pytestmark = pytest.mark.integration


class PodFailed(AssertionError):
    """A simulated pod exited non-zero."""


def substitute(text: str, context: dict[str, str]) -> str:
    """Replace `{{name}}` from `context`; an unknown name is a plumbing bug: fail."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in context:
            raise KeyError(f"unresolved reference {{{{{name}}}}} in {text[:80]!r}")
        return context[name]
    return REFERENCE.sub(replace, text)


class ArgoSimulator:
    """Runs one rendered Workflow's templates as local processes."""

    def __init__(self, manifest: dict[str, Any], share: Path, scratch: Path,
                 parameters: dict[str, str], extra_env: dict[str, str] | None = None) -> None:
        self.spec = manifest["spec"]
        self.templates = {t["name"]: t for t in self.spec["templates"]}
        self.share = share
        self.scratch = scratch
        self.extra_env = extra_env or {}
        declared = {p["name"]: p.get("value") for p in self.spec["arguments"]["parameters"]}
        unknown = set(parameters) - set(declared)
        assert not unknown, f"parameters the workflow does not declare: {unknown}"
        declared.update(parameters)
        self.globals = {f"workflow.parameters.{k}": str(v) for k, v in declared.items()}
        self.globals["workflow.name"] = "fraudpipe-train-sim"
        self.pods: list[tuple[str, list[str]]] = []
        self.pod_count = 0

    def run(self) -> None:
        self.execute(self.spec["entrypoint"], {})

    def execute(self, name: str, inputs: dict[str, str]) -> dict[str, str]:
        template = self.templates[name]
        declared = [p["name"] for p in template.get("inputs", {}).get("parameters", [])]
        assert set(inputs) == set(declared), f"{name}: inputs {set(inputs)} != {set(declared)}"
        context = dict(self.globals)
        context.update({f"inputs.parameters.{k}": v for k, v in inputs.items()})
        if "steps" in template:
            return self.run_steps(template, context)
        return self.run_pod(template, context)

    def run_steps(self, template: dict[str, Any], context: dict[str, str]) -> dict[str, str]:
        for group in template["steps"]:
            for step in group:  # groups run in parallel in Argo; ours never share outputs
                when = step.get("when")
                if when is not None and not self.evaluate(substitute(when, context)):
                    continue
                outputs = self.run_step(step, context, template.get("parallelism"))
                context.update({f"steps.{step['name']}.outputs.parameters.{k}": v
                                for k, v in outputs.items()})
        return {}

    @staticmethod
    def evaluate(condition: str) -> bool:
        left, operator, right = re.fullmatch(r"\s*(\S+)\s*(==|!=)\s*(\S+)\s*", condition).groups()
        return (left == right) if operator == "==" else (left != right)

    def run_step(self, step: dict[str, Any], context: dict[str, str],
                 parallelism: int | None) -> dict[str, str]:
        arguments = step.get("arguments", {}).get("parameters", [])
        if "withParam" not in step:
            inputs = {a["name"]: substitute(a["value"], context) for a in arguments}
            return self.execute(step["template"], inputs)
        items = json.loads(substitute(step["withParam"], context))

        def one(item: Any) -> None:
            local = dict(context)
            if isinstance(item, dict):
                local.update({f"item.{k}": str(v) for k, v in item.items()})
            else:
                local["item"] = str(item)
            self.execute(step["template"],
                         {a["name"]: substitute(a["value"], local) for a in arguments})

        with ThreadPoolExecutor(max_workers=parallelism or len(items) or 1) as pool:
            for future in [pool.submit(one, item) for item in items]:
                future.result()
        return {}

    def run_pod(self, template: dict[str, Any], context: dict[str, str]) -> dict[str, str]:
        self.pod_count += 1
        pod_tmp = self.scratch / f"pod-{self.pod_count:04d}-{template['name']}"
        pod_tmp.mkdir(parents=True)

        mapping = {MOUNT: str(self.share), "/tmp": str(pod_tmp)}

        def local(text: str) -> str:
            # one pass, so a mapped path under /tmp is never mapped twice
            return MOUNTS.sub(lambda m: mapping[m.group(0)], substitute(text, context))

        body = template.get("container") or template["script"]
        env = {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **self.extra_env}
        for variable in body.get("env", []):
            if "value" in variable:
                env[variable["name"]] = local(variable["value"])
            # valueFrom (Secrets) have no value here: like an optional Secret left out
        command = [local(part) for part in body.get("command", [])]
        args = [local(part) for part in body.get("args", [])]
        if "script" in template:
            source = pod_tmp / "script"
            source.write_text(local(body["source"]))
            args = [str(source)]
        if command and command[0] == "python":
            command[0] = sys.executable
        argv = command + args
        self.pods.append((template["name"], argv))
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600,
                              cwd=pod_tmp)
        if done.returncode != 0:
            raise PodFailed(f"pod {template['name']} exited {done.returncode}: {argv}\n"
                            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        outputs = {}
        for parameter in template.get("outputs", {}).get("parameters", []):
            path = Path(local(parameter["valueFrom"]["path"]))
            outputs[parameter["name"]] = path.read_text().strip()
        return outputs


def fraudpipe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(VENV_BIN / "fraudpipe"), *args], capture_output=True, text=True,
                          timeout=900, env={**os.environ, **(env or {})})
    assert done.returncode == 0, f"fraudpipe {' '.join(args)} exited {done.returncode}\n{done.stderr}"
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


def test_rendered_workflow_trains_the_same_lineage_as_fraudpipe_train(ingested, tmp_path):
    root, days = ingested
    # GIVEN two copies of the same ingested share
    argo_share, local_share = tmp_path / "argo", tmp_path / "local"
    shutil.copytree(root, argo_share)
    shutil.copytree(root, local_share)
    # WHEN the committed workflow runs them in 3-day batches, and `fraudpipe train` runs
    manifest = yaml.safe_load(WORKFLOW.read_text())
    simulator = ArgoSimulator(manifest, argo_share, tmp_path / "pods",
                              {"datasets": json.dumps(days), "days-per-step": "3"})
    simulator.run()
    fraudpipe("train", "--storage", str(local_share))
    # THEN the pods ran in Argo's order: plan, 10 feature pods, 4 training pods, report
    names = [name for name, _ in simulator.pods]
    assert names == ["plan"] + ["features"] * 10 + ["train-batch"] * 4 + ["report"]
    first_batch = simulator.pods[11][1]
    assert first_batch[:2] == ["sh", "-c"]
    assert all((argo_share / "features" / f"{day}.parquet").is_file() for day in days)
    # and both lineages hold the same checkpoints, link for link
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
    manifest = yaml.safe_load(WORKFLOW.read_text())
    # the workflow passes host/port/db as parameters and FRAUDPIPE_REDIS_* variables
    simulator = ArgoSimulator(manifest, share, tmp_path / "pods",
                              {"datasets": "queued", "redis-host": settings.host,
                               "redis-port": str(settings.port), "redis-db": str(settings.db)})
    simulator.run()
    assert [name for name, _ in simulator.pods] == ["plan", "drain-queue", "report"]
    assert [date for date, _ in chain(share)] == days[:4]
