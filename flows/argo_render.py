"""`fraudpipe render`: write every manifest of the Argo deployment to a directory.

The workflows, the cron and the RBAC come from `workflows/render.py`; the PV/PVC is what
the `FilestoreStorage` block renders. Both meet here because `flows/` is the layer that
may import `workflows/` and `blocks/` alike (ARCHITECTURE.md, "Layers"). The command
plugs into the CLI through the `fraudpipe.commands` entry point; every `fraudpipe` call in
every pod builds the parser, so Hera, Prefect and the block load only when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workflows.settings import WorkflowSettings

#: File name of the PV/PVC rendered from the FilestoreStorage block.
FILESTORE_FILE = "filestore-pv-pvc.yaml"


def manifests(settings: WorkflowSettings | None = None) -> dict[str, str]:
    """File name -> YAML text of every committed manifest under `deployments/argo/`.

    The block's defaults describe only a local directory, so the committed claim uses
    dynamic provisioning with GKE's Filestore CSI class; a team with an existing
    instance renders the static PV/PVC from its own saved block instead.
    """
    from blocks.filestore import FilestoreStorage
    from workflows.render import dump
    from workflows.render import manifests as workflow_manifests
    from workflows.settings import WorkflowSettings

    settings = settings or WorkflowSettings()
    block = FilestoreStorage(
        storage_class=settings.filestore_storage_class,
        pvc_name=settings.pvc_name,
        mount_path=settings.mount_path,
        namespace=settings.namespace,
    )
    files = workflow_manifests(settings)
    files[FILESTORE_FILE] = dump(list(block.render_pv_pvc()))
    return files


def add_render_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `fraudpipe render --out DIR`."""
    parser = subparsers.add_parser(
        "render", help="write the Argo workflow YAML (and PV/PVC, RBAC) to a directory")
    parser.add_argument("--out", default=None,
                        help="output directory (default: deployments/argo of the repository)")
    parser.add_argument("--image", default=None,
                        help="the pushed step image, REGISTRY/PATH/fraudpipe-step:TAG, made "
                             "the templates' default and the CronWorkflow's (default: "
                             "$FRAUDPIPE_IMAGE; neither: the templates name no image)")
    parser.set_defaults(func=run_render)


def run_render(args: argparse.Namespace) -> int:
    """Render every manifest and print the files written.

    Without an image the templates name none (as committed) and a note says what that
    means; a name that is not a pushed image's is an error before anything is written.
    """
    import os
    import sys

    from workflows.image import IMAGE_ENV, step_image
    from workflows.render import DEFAULT_OUT, write
    from workflows.settings import WorkflowSettings

    given = args.image if args.image is not None else os.environ.get(IMAGE_ENV) or None
    image = None if given is None else step_image(
        given, "--image" if args.image is not None else IMAGE_ENV)
    if image is None:
        print(f"note: no step image (--image or {IMAGE_ENV}): the templates name none, so "
              "Argo refuses every submission without -p image=... and every CronWorkflow "
              "run (spec.arguments.image.value or spec.arguments.image.valueFrom is "
              "required)", file=sys.stderr)
    files = manifests(WorkflowSettings(image=image))
    for path in write(files, Path(args.out) if args.out else DEFAULT_OUT):
        print(path)
    return 0
