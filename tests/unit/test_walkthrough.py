"""The GKE walk-through (deployments/README.md) names only things that exist.

Its commands cannot run here (no gcloud, kubectl, argo or docker), so they are read from
the bash blocks and checked: every `fraudpipe` command is in the CLI, every Prefect
deployment run is in prefect.yaml, every `argo submit --from` names the rendered template,
every repository path exists, every variable is set in step 0, and each step of Google's
tutorial has its counterpart.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from trainer.cli import build_parser
from workflows.settings import WorkflowSettings

REPO = Path(__file__).resolve().parents[2]
WALKTHROUGH = REPO / "deployments" / "README.md"
FLOW_NAME = re.compile(r"@flow\(\s*name=\"([^\"]+)\"")


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", WALKTHROUGH.read_text(), flags=re.S)


def commands() -> list[list[str]]:
    """Every shell command of the bash blocks, continuation lines joined, heredocs dropped."""
    result = []
    for block in bash_blocks():
        text = re.sub(r"<<'?EOF'?\n.*?\nEOF\n", "\n", block, flags=re.S)
        text = text.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;")
            lexer.whitespace_split = True
            words: list[str] = []
            for token in lexer:
                if set(token) <= set("|&;"):  # an operator ends a command
                    if words:
                        result.append(words)
                    words = []
                else:
                    words.append(token)
            if words:
                result.append(words)
    return result


def cli_commands() -> dict[str, object]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices


def test_every_fraudpipe_command_exists_and_parses():
    parsers = cli_commands()
    found = []
    for words in commands():
        if "fraudpipe" not in words:
            continue
        words = words[words.index("fraudpipe"):]
        assert words[1] in parsers, f"fraudpipe {words[1]}: no such command"
        # Arguments parse too (shell variables stand for values).
        build_parser().parse_args(words[1:])
        found.append(words[1])
    assert {"render", "validate", "simulate", "ingest", "queue", "lineage"} <= set(found)


def test_every_prefect_deployment_named_exists_in_prefect_yaml():
    prefect_yaml = yaml.safe_load((REPO / "prefect.yaml").read_text())
    flow_names = {}
    for path in (REPO / "flows").glob("*.py"):
        for name in FLOW_NAME.findall(path.read_text()):
            flow_names[path.stem] = name
    deployments = set()
    for deployment in prefect_yaml["deployments"]:
        module = deployment["entrypoint"].split(":")[0].removeprefix("flows/").removesuffix(".py")
        deployments.add(f"{flow_names[module]}/{deployment['name']}")
    named = [w[3] for w in commands() if w[:3] in (["prefect", "deployment", "run"],
                                                   ["prefect", "deployment", "delete"])]
    assert "daily-pipeline/gke" in named
    assert set(named) <= deployments, set(named) - deployments


def test_work_pool_and_blocks_match_prefect_yaml():
    prefect_yaml = yaml.safe_load((REPO / "prefect.yaml").read_text())
    pool = prefect_yaml["definitions"]["work_pools"]["gke"]["name"]
    created = [w for w in commands() if w[:3] == ["prefect", "work-pool", "create"]]
    assert created and created[0][3] == pool
    template = created[0][created[0].index("--base-job-template") + 1]
    assert (REPO / template).is_file()
    text = WALKTHROUGH.read_text()
    for block_name in prefect_yaml["definitions"]["blocks"].values():
        assert f'.save("{block_name}"' in text, block_name
    assert '.save("fraudpipe-argo"' in text
    assert ["prefect", "block", "register", "-m", "blocks"] in commands()
    assert ["prefect", "--no-prompt", "deploy", "--all"] in commands()


def test_argo_submit_names_the_rendered_template():
    settings = WorkflowSettings()
    submits = [w for w in commands() if w[:2] == ["argo", "submit"]]
    assert submits
    for words in submits:
        source = words[words.index("--from") + 1]
        assert source == f"workflowtemplate/{settings.template_name}"
        assert words[words.index("-n") + 1] in ("$NAMESPACE", settings.namespace)
        parameters = {words[i + 1].split("=")[0] for i, w in enumerate(words) if w == "-p"}
        template = yaml.safe_load((REPO / "deployments" / "argo" /
                                   "fraudpipe-train-workflowtemplate.yaml").read_text())
        known = {p["name"] for p in template["spec"]["arguments"]["parameters"]}
        assert parameters <= known, parameters - known


def test_repository_paths_exist():
    paths = set()
    for words in commands():
        for word in words:
            for candidate in re.findall(r"(?:^|=)((?:deployments|flows|blocks)/[\w./-]+)", word):
                paths.add(candidate)
    assert "deployments/argo/fraudpipe-train-workflowtemplate.yaml" in paths
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert missing == []


def test_every_variable_is_set_in_step_zero():
    blocks = bash_blocks()
    defined = set(re.findall(r"export (\w+)=", "\n".join(blocks)))
    used = set(re.findall(r"\$\{?(\w+)", "\n".join(blocks)))
    shell_builtins = {"PATH", "HOME"}
    assert used - defined - shell_builtins == set()
    step_zero = blocks[0]
    for name in ("PROJECT_ID", "REGION", "ZONE", "CLUSTER", "FRAUDPIPE_IMAGE"):
        assert f"export {name}=" in step_zero


def test_image_is_built_from_the_dockerfile_and_used_everywhere():
    text = WALKTHROUGH.read_text()
    assert '"-f", "deployments/Dockerfile"' in text
    assert any(w[:3] == ["gcloud", "builds", "submit"] for w in commands())
    assert '"-t", "${FRAUDPIPE_IMAGE}"' in text
    set_image = ["kubectl", "-n", "$NAMESPACE", "set", "image"]
    set_images = {w[5]: w[6] for w in commands() if w[:5] == set_image}
    assert set_images == {"deployment/prefect-worker": "worker=$FRAUDPIPE_IMAGE",
                          "deployment/fraudpipe-toolbox": "toolbox=$FRAUDPIPE_IMAGE",
                          "deployment/fraudpipe-serve": "serve=$FRAUDPIPE_IMAGE"}
    # The image is given once (step 0): the rendered template and the cron carry it, so no
    # run passes it again, and nothing else names an image variable.
    for words in commands():
        if words[:2] == ["argo", "submit"]:
            assert not any(w.startswith("image=") for w in words), words
    assert not re.search(r"\$\{?IMAGE\b", text)
    renders = [i for i, w in enumerate(commands()) if w[:2] == ["fraudpipe", "render"]]
    assert renders and "--image" not in commands()[renders[0]]  # it reads FRAUDPIPE_IMAGE


def test_each_step_of_googles_tutorial_has_a_counterpart():
    text = WALKTHROUGH.read_text()
    rows = re.findall(r"^\| \"([^\"]+)\"", text, flags=re.M)
    tutorial_steps = ("Create a GKE cluster", "Create a Filestore instance",
                      "Create the PersistentVolume and PersistentVolumeClaim",
                      "Copy the datasets to Filestore", "Deploy Redis", "Fill the queue",
                      "Deploy the workload", "Monitor the workload", "View the results",
                      "Clean up")
    assert set(tutorial_steps) <= set(rows), set(tutorial_steps) - set(rows)


def test_walkthrough_reads_the_report_and_cleans_up():
    joined = [" ".join(w) for w in commands()]
    assert any("cat /mnt/fileserver/output/report.txt" in c for c in joined)
    assert any(c.startswith("gcloud container clusters delete") for c in joined)
    assert any("port-forward service/argo-server 2746:2746" in c for c in joined)


def test_port_forwards_only_into_namespaces_the_walkthrough_creates():
    created = {w[3] for w in commands() if w[:3] == ["kubectl", "create", "namespace"]}
    created.add("$NAMESPACE")  # deployments/k8s/namespace.yaml, `kubectl apply -k` in step 3
    assert (REPO / "deployments" / "k8s" / "namespace.yaml").is_file()
    forwards = [w for w in commands() if "port-forward" in w]
    assert forwards
    for words in forwards:
        namespace = words[words.index("-n") + 1]
        assert namespace in created, f"port-forward into {namespace}, which no step creates"


def test_one_image_name_in_every_doc_and_manifest():
    """The step image is `fraudpipe-step` wherever it is named (never `fraudpipe/step`)."""
    step_zero = bash_blocks()[0]
    assert re.search(r"export FRAUDPIPE_IMAGE=\S*/fraudpipe-step:", step_zero)
    docs = [REPO / "README.md", WALKTHROUGH, REPO / "prefect.yaml",
            *sorted((REPO / "deployments").rglob("*.yaml")),
            REPO / "deployments" / "prefect" / "kubernetes-base-job-template.json"]
    for path in docs:
        text = path.read_text()
        assert "fraudpipe/step:" not in text, path
        for image in re.findall(r"image:\s*['\"]?([\w./-]+:[\w.{}-]+)", text):
            if "{{" not in image and "fraudpipe" in image:
                assert image.rsplit("/", 1)[-1].startswith("fraudpipe-step:"), (path, image)


def test_the_shell_has_the_virtualenv_before_any_fraudpipe_command():
    first = next(i for i, b in enumerate(bash_blocks()) if re.search(r"^fraudpipe ", b, re.M))
    assert "source .venv/bin/activate" in bash_blocks()[0] and first > 0


def test_no_fact_sheet_or_path_outside_the_repository():
    text = WALKTHROUGH.read_text()
    assert "FACTS" not in text and "../shared" not in text


def test_the_claim_gets_its_consumer_before_the_walkthrough_waits_for_it():
    # GIVEN the walk-through's commands in order
    joined = [" ".join(w) for w in commands()]

    def first(predicate) -> int:
        return next(i for i, c in enumerate(joined) if predicate(c))

    applied = first(lambda c: c.startswith("kubectl apply") and "filestore-pv-pvc.yaml" in c)
    mode = first(lambda c: c.startswith("kubectl get storageclass")
                 and "volumeBindingMode" in c)
    consumer = first(lambda c: "scale deployment/fraudpipe-toolbox --replicas=1" in c)
    bound = first(lambda c: "pvc/fileserver-claim" in c and "Bound" in c)
    share_pv = first(lambda c: c.startswith("export SHARE_PV="))
    # THEN the class's binding mode is read, not assumed (the class the claim names) ...
    claim = yaml.safe_load((REPO / "deployments" / "argo" / "filestore-pv-pvc.yaml").read_text())
    assert commands()[mode][3] == claim["spec"]["storageClassName"]
    # ... and a pod that mounts the claim is started before anything waits for Bound,
    # which comes before the bound volume's name is read (a WaitForFirstConsumer claim
    # with no consumer stays Pending and SHARE_PV would be empty)
    assert applied < consumer < bound < share_pv
    assert mode < bound
    assert joined[bound].startswith("kubectl -n $NAMESPACE wait")
    assert "--timeout" in joined[bound]
    assert not any("get pvc fileserver-claim --watch" in c for c in joined)
    # The consumer really mounts that claim.
    toolbox = yaml.safe_load((REPO / "deployments" / "k8s" / "toolbox.yaml").read_text())
    claims = {v["persistentVolumeClaim"]["claimName"]
              for v in toolbox["spec"]["template"]["spec"]["volumes"]
              if "persistentVolumeClaim" in v}
    assert claims == {claim["metadata"]["name"]}


def test_controller_configmap_and_compute_class_are_applied_before_any_workflow():
    # Argo builds every pod's init and wait containers from the ConfigMap, and every step
    # selects the ComputeClass: both must exist before a template or a run reaches the cluster.
    from workflows.render import COMPUTE_CLASS_FILE, CONTROLLER_CONFIGMAP_FILE

    lines = [" ".join(words) for words in commands()]

    def first(predicate) -> int:
        return next(i for i, line in enumerate(lines) if predicate(line))

    configmap = first(lambda line: line.startswith("kubectl apply")
                      and f"deployments/argo/{CONTROLLER_CONFIGMAP_FILE}" in line)
    compute_class = first(lambda line: line.startswith("kubectl apply")
                          and f"deployments/argo/{COMPUTE_CLASS_FILE}" in line)
    template = first(lambda line: "fraudpipe-train-workflowtemplate.yaml" in line
                     and line.startswith("kubectl apply"))
    runs = [i for i, line in enumerate(lines) if line.startswith(("argo submit",
                                                                  "prefect deployment run"))]
    assert runs and max(configmap, compute_class) < min([template, *runs])
    assert (REPO / "deployments" / "argo" / CONTROLLER_CONFIGMAP_FILE).is_file()


def test_the_doctor_runs_once_everything_is_applied_and_before_the_first_run():
    joined = [" ".join(w) for w in commands()]
    doctor = [i for i, c in enumerate(joined) if c.startswith("fraudpipe doctor --cluster")]
    assert len(doctor) == 1
    applied = [i for i, c in enumerate(joined) if c.startswith("kubectl apply")
               and "deployments/argo/" in c]
    runs = [i for i, c in enumerate(joined) if c.startswith(("argo submit",
                                                             "prefect deployment run"))]
    deployed = joined.index("prefect --no-prompt deploy --all")
    assert max(applied) < doctor[0] and deployed < doctor[0] < min(runs)
