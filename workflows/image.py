"""The step image: given once, as `FRAUDPIPE_IMAGE`, and checked before anything uses it.

Every pod of the GKE path runs the image built from `deployments/Dockerfile` and pushed
to a registry. The Argo paths (`argo submit --from workflowtemplate/...`, the
CronWorkflow) read only what is installed in the cluster, and the Prefect path's Job
reads only its deployment's job variables, so the value has to be written into both at
install time: `fraudpipe render` writes it into the WorkflowTemplate and the
CronWorkflow, `prefect deploy` into the `*/gke` deployments (a build step runs
`fraudpipe image`), and the flow-run Job hands its own image on to the workflows it
submits (the base job template sets `FRAUDPIPE_IMAGE` from `{{ image }}`). A Prefect
block would be read only by flows at run time, too late for `argo submit` and the cron;
a deployment parameter would reach only the Prefect path.

A name without a registry host (`fraudpipe-step:latest`) is Docker Hub's `library/`
namespace to the kubelet, which is never the image a team pushed: it is refused here,
with the name of the setting that held it, instead of failing later as ErrImagePull.
"""

from __future__ import annotations

import os
import re

from trainer.errors import FraudpipeError

#: The environment variable that names the pushed step image.
IMAGE_ENV = "FRAUDPIPE_IMAGE"

#: An example of a name that is accepted (Artifact Registry, walk-through step 0).
EXAMPLE = "europe-west1-docker.pkg.dev/my-project/fraudpipe/fraudpipe-step:0.1.0"

#: Docker Hub's registry host names: a short name resolves to one of them.
DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")

# Reference grammar of the distribution project (reference/regexp.go), simplified: a
# registry host, path components, then a tag and/or a digest.
_HOST = r"(?:localhost|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)+)(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^(?P<host>{_HOST})/(?P<path>{_PATH})"
                        rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")


class ImageError(FraudpipeError):
    """The step image is unset or is not a fully qualified name of a pushed image."""

    exit_code = 2


def check_image(reference: str, source: str = IMAGE_ENV) -> str:
    """`reference` if it names an image in a registry, with a tag or a digest.

    Args:
        reference: the image name to check.
        source: where the name came from (a setting, an option, a cluster object), for
            the message.

    Raises:
        ImageError: naming `source`, the value and what was expected.
    """
    value = reference.strip()
    expected = f"REGISTRY/PATH/fraudpipe-step:TAG, e.g. {EXAMPLE}"
    if not value:
        raise ImageError(f"{source} is empty: set it to the image you pushed ({expected})")
    found = _REFERENCE.match(value)
    if found is None:
        first = value.split("/", 1)[0]
        if "/" not in value or not re.fullmatch(_HOST, first):
            why = ("has no registry host, so the kubelet pulls it from Docker Hub's "
                   "library/ namespace, which does not hold your image (ErrImagePull)")
        else:
            why = "is not a valid image reference"
        raise ImageError(f"{source}={value!r} {why}: expected {expected}")
    if found["host"] in DOCKER_HUB and found["path"].startswith("library/"):
        raise ImageError(f"{source}={value!r} is a Docker Hub official image (library/), "
                         f"not the fraudpipe step image: expected {expected}")
    if found["tag"] is None and found["digest"] is None:
        raise ImageError(f"{source}={value!r} has no tag or digest: name the version you "
                         f"pushed ({expected})")
    return value


def step_image(given: str | None = None, source: str = IMAGE_ENV) -> str:
    """The checked step image: `given` if not None, else `$FRAUDPIPE_IMAGE`.

    Raises:
        ImageError: neither is set (an empty value counts as unset), or the name is
            not that of a pushed image.
    """
    if given is None:
        given = os.environ.get(IMAGE_ENV) or None
        if given is None:
            raise ImageError(
                f"no step image: {IMAGE_ENV} is not set. Export it to the image you built "
                f"from deployments/Dockerfile and pushed, e.g. {IMAGE_ENV}={EXAMPLE}")
    return check_image(given, source)
