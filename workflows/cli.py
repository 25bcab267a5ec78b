"""`fraudpipe validate` and `fraudpipe image`, plugged into the CLI by entry points.

(`render`: flows/argo_render.py; `doctor`: workflows/doctor/.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Imports of Hera and jsonschema stay inside the commands: every `fraudpipe` call in
# every pod builds this parser, and loading Hera's models alone costs seconds.
REPO_ROOT = Path(__file__).resolve().parent.parent


def add_validate_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `fraudpipe validate [PATH...]`."""
    parser = subparsers.add_parser(
        "validate", help="strictly validate Argo and Kubernetes manifests offline, and the "
                         "pods Argo builds from them against Pod Security admission")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files or directories (default: deployments/ of the repository)")
    parser.add_argument("--schema", default=None,
                        help="Argo JSON schema, .json or .json.gz (default: the Argo v4.1.2 "
                             "schema vendored in workflows/argo_schema/)")
    parser.set_defaults(func=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    """Print every problem; exit 1 when there is one, 2 when nothing was found to check."""
    from workflows.validate import validate_deployment

    paths = args.paths or [str(REPO_ROOT / "deployments")]
    result = validate_deployment(paths, args.schema)
    for problem in result.problems:
        print(f"error: {problem}", file=sys.stderr)
    if not result.files:
        print(f"error: no YAML manifests under {', '.join(paths)}", file=sys.stderr)
        return 2
    for report in result.pod_reports:
        print(report.summary())
    pods = sum(len(r.pods) for r in result.pod_reports)
    refused = sum(r.refused for r in result.pod_reports)
    print(f"{len(result.files)} file(s) checked, {pods} pod(s) built as Argo builds them, "
          f"{refused} refused at admission, {len(result.problems)} problem(s)")
    return 1 if result.problems else 0


def add_image_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `fraudpipe image [--image IMAGE]`."""
    parser = subparsers.add_parser(
        "image", help="print the step image ($FRAUDPIPE_IMAGE) after checking it names a "
                      "pushed image; prefect.yaml's GKE deployments read it from here")
    parser.add_argument("--image", default=None,
                        help="check this name instead of $FRAUDPIPE_IMAGE")
    parser.set_defaults(func=run_image)


def run_image(args: argparse.Namespace) -> int:
    """Print the checked image; exit 2 naming the setting when it is unset or unqualified."""
    from workflows.image import step_image

    print(step_image(args.image, "--image" if args.image is not None else "FRAUDPIPE_IMAGE"))
    return 0
