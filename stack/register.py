"""What a local Prefect server needs before fraudpipe's deployments can run on it.

Work pools, the `fraudpipe-share` and `fraudpipe-queue` blocks pointing at the live
share and Redis, `prefect deploy` of this repository's prefect.yaml (the `*/local`
deployments; the `*/gke` ones only when asked, since they cannot run on a laptop), and the
landing area of the run directory as the deployments' `landing` parameter, so that
scheduled runs read the same files a triggered run does.

Call these after PREFECT_API_URL and PREFECT_HOME point at the server (`prefect_env`):
Prefect reads its settings when first imported.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import yaml

REPOSITORY = Path(__file__).resolve().parents[1]
PREFECT_YAML = REPOSITORY / "prefect.yaml"
PROCESS_POOL = "fraudpipe-process"
GKE_POOL = "fraudpipe-gke"
GKE_TEMPLATE = REPOSITORY / "deployments" / "prefect" / "kubernetes-base-job-template.json"
STORAGE_BLOCK = "fraudpipe-share"
QUEUE_BLOCK = "fraudpipe-queue"
DAILY_DEPLOYMENT = "daily-pipeline/local"
#: The slug of the short interval schedule `make up DEMO=<seconds>` adds.
DEMO_SCHEDULE = "demo"


class PrefectCommandError(RuntimeError):
    """A `prefect` command failed; the message shows the command and its output."""


def prefect_cli(args: list[str], env: dict[str, str], what: str) -> str:
    """Run `prefect <args>` from the repository; its output, or an error that shows it."""
    result = subprocess.run([sys.executable, "-m", "prefect", *args], cwd=REPOSITORY, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise PrefectCommandError(
            f"{what} failed (prefect {' '.join(args)}, exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def local_deployment_names(prefect_yaml: Path = PREFECT_YAML) -> list[str]:
    """The names of prefect.yaml's deployments on the process pool (`local`).

    `prefect deploy --name local` deploys every deployment of that name, whatever its flow
    (prefect/cli/deploy/_config.py, `_handle_pick_deploy_with_name`).
    """
    config = yaml.safe_load(prefect_yaml.read_text())
    return sorted({deployment["name"] for deployment in config["deployments"]
                   if deployment["work_pool"]["name"] == PROCESS_POOL})


async def create_pools_and_blocks(share_path: Path, redis_url: str, gke: bool = False) -> None:
    """Register the block types, save both blocks, create the work pools (overwriting)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker as PrefectProcessWorker

    from blocks import ArgoServer, FilestoreStorage, RedisWorkQueue
    from trainer.share.layout import create_share

    # The run directory's share is this stack's own: create it (as `fraudpipe init` does),
    # since the flows refuse a storage root that is not a share.
    create_share(share_path, "fraudpipe stack (make up / make run)")
    for block_class in (FilestoreStorage, RedisWorkQueue, ArgoServer):
        await block_class.register_type_and_schema()
    await FilestoreStorage(local_path=str(share_path)).save(STORAGE_BLOCK, overwrite=True)
    await RedisWorkQueue.from_url(redis_url).save(QUEUE_BLOCK, overwrite=True)
    pools = {PROCESS_POOL: ("process", PrefectProcessWorker.get_default_base_job_template())}
    if gke:
        pools[GKE_POOL] = ("kubernetes", json.loads(GKE_TEMPLATE.read_text()))
    async with get_client() as client:
        for name, (pool_type, template) in pools.items():
            await client.create_work_pool(
                WorkPoolCreate(name=name, type=pool_type, base_job_template=template),
                overwrite=True,
            )


def deploy(env: dict[str, str], gke: bool = False) -> str:
    """`prefect deploy` of the local deployments, or of all of them (`gke`)."""
    if gke:
        return prefect_cli(["--no-prompt", "deploy", "--all"], env, "prefect deploy --all")
    args = ["--no-prompt", "deploy"]
    for name in local_deployment_names():
        args += ["--name", name]
    return prefect_cli(args, env, "prefect deploy (the */local deployments)")


async def point_landing_at(landing: Path, labels: Path | None = None) -> None:
    """Set the `landing` parameter of the local deployments that have one to `landing`.

    prefect.yaml's default is relative to the checkout; the run directory may be elsewhere.
    With `labels`, the deployments whose flow takes a `labels` parameter get it too (the
    demo's label files, a week after their days).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

    async with get_client() as client:
        deployments = await client.read_deployments(
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[PROCESS_POOL])))
        for deployment in deployments:
            if "landing" in deployment.parameters:
                parameters = {**deployment.parameters, "landing": str(landing)}
                takes = (deployment.parameter_openapi_schema or {}).get("properties", {})
                if labels is not None and "labels" in takes:
                    parameters["labels"] = str(labels)
                await client.update_deployment(deployment.id,
                                               DeploymentUpdate(parameters=parameters))


async def set_interval_schedule(name: str, seconds: float | None,
                                slug: str = DEMO_SCHEDULE) -> None:
    """Give deployment `name` an extra schedule every `seconds`, or none (`seconds` None).

    The schedule is found again by its `slug`: an earlier one is replaced or removed.
    Deleting a schedule deletes the deployment's auto-scheduled runs that have not started
    (prefect/server/api/deployments.py, `delete_deployment_schedule`), so a stack started
    again does not come back to a pile of late demo runs; the scheduler then fills in the
    remaining schedules' next runs.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import IntervalSchedule

    async with get_client() as client:
        deployment = await client.read_deployment_by_name(name)
        for schedule in deployment.schedules:
            if schedule.slug == slug:
                await client.delete_deployment_schedule(deployment.id, schedule.id)
        if not seconds:
            return
        await client.create_deployment_schedules(deployment.id, [DeploymentScheduleCreate(
            schedule=IntervalSchedule(interval=dt.timedelta(seconds=seconds)),
            active=True, slug=slug)])
