"""`fraudpipe doctor --cluster`, plugged into the CLI by the `fraudpipe.commands` entry point.

The Kubernetes client and the checks load only when the command runs: every `fraudpipe`
call in every pod builds the parser.
"""

from __future__ import annotations

import argparse
import asyncio
import os


def add_doctor_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `fraudpipe doctor --cluster [...]`."""
    parser = subparsers.add_parser(
        "doctor", help="check a GKE cluster against what the walk-through needs: one line "
                       "per check with what to do; exit 1 when one fails")
    parser.add_argument("--cluster", action="store_true", required=True,
                        help="check the cluster of your kubeconfig (the only mode)")
    parser.add_argument("--kubeconfig", default=None,
                        help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parser.add_argument("--image", default=None,
                        help="the pushed step image (default: $FRAUDPIPE_IMAGE)")
    parser.add_argument("--argo-url", default=None,
                        help="also ask this Argo Server URL for its version (the ArgoServer "
                             "block's url, e.g. https://localhost:2746 after a port-forward)")
    parser.add_argument("--argo-token", default=None,
                        help="bearer token for --argo-url (default: $ARGO_TOKEN)")
    parser.add_argument("--insecure", action="store_true",
                        help="do not verify --argo-url's TLS certificate (self-signed)")
    parser.set_defaults(func=run_doctor)


def ask_argo_server(url: str, token: str | None, verify: bool) -> str:
    """`ok <version>` when the server answers `GET /api/v1/version`, else why not."""
    import requests

    # A path prefix (https://host/argo) stays: the API path is appended, never joined.
    endpoint = f"{url.rstrip('/')}/api/v1/version"
    headers = {"Authorization": f"Bearer {token.removeprefix('Bearer ')}"} if token else {}
    try:
        answer = requests.get(endpoint, headers=headers, verify=verify, timeout=10)
    except requests.RequestException as exc:
        return f"{endpoint} does not answer: {exc}"
    if answer.status_code != 200:
        return f"{endpoint} answered HTTP {answer.status_code}: {answer.text[:200]}"
    return f"ok {endpoint} answers {answer.json().get('version')}"


def run_doctor(args: argparse.Namespace) -> int:
    """Read the cluster, print one line per check; 1 when a check fails."""
    from workflows.doctor.checks import run_checks, target
    from workflows.doctor.cluster import read_cluster
    from workflows.image import IMAGE_ENV
    from workflows.settings import WorkflowSettings

    settings = WorkflowSettings()
    image = args.image or os.environ.get(IMAGE_ENV) or None
    snapshot = asyncio.run(read_cluster(target(settings), args.kubeconfig, args.context))

    def local() -> dict:
        from workflows import train_template

        return train_template.build(settings).to_dict()

    answer = None
    if args.argo_url:
        answer = ask_argo_server(args.argo_url, args.argo_token or os.environ.get("ARGO_TOKEN"),
                                 not args.insecure)
    checks = run_checks(snapshot, settings, local, image, answer)
    for check in checks:
        print(check.line())
    failed = [c.name for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} of {len(checks)} checks passed"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0
