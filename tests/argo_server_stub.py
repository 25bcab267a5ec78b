"""A local Argo Server that speaks only what `argo-server-v4.1-swagger.json` allows.

Every request is checked against the swagger file: the path and method must be an
operation, path and query parameters must be declared, the bearer token must be present
(the API's `BearerToken` security), and a JSON body must validate against the
operation's body schema with the swagger definitions, unknown keys included (Argo's
server decodes strictly). Non-conforming requests get 400 and are recorded in
`errors`. Answers are validated against the operation's 200 schema (errors against the
`default` one) before they are sent, so the stub cannot drift from the contract either.

Like a controller with `workflowRestrictions.templateReferencing: Strict`, the stub holds
the committed WorkflowTemplate (or `template_file`), starts workflows from it (`/submit`,
parameters checked against the template's; a parameter left with neither a value nor a
default is refused with Argo's message) and refuses inline Workflows. `prefix` serves the
API under a path, as behind an ingress (`https://host/argo`); `/api/v1/version` answers.

Scenarios: `success` (plan, train, report succeed), `failed` (a training pod is preempted,
its retry fails with exit code 3), `hang` (runs until stopped: timeouts and
cancellations). `get_faults` maps GET numbers (1-based) to an error status: 503 (an Argo
Server restart, an ingress), 403 (a token revoked).
"""

from __future__ import annotations

import functools
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import yaml
from reference import REPO, reference_dir

from workflows.validate import unknown_keys

SWAGGER_NAME = "argo-server-v4.1-swagger.json"
TEMPLATE_FILE = REPO / "deployments" / "argo" / "fraudpipe-train-workflowtemplate.yaml"
#: What Argo answers when templateReferencing is Strict and a workflow is inline.
STRICT_REFUSAL = ("workflows must use workflowTemplateRef to be executed when the controller "
                  "is in reference mode")


@functools.cache
def load_swagger() -> dict[str, Any]:
    return json.loads((reference_dir() / "argo" / SWAGGER_NAME).read_text())


def path_pattern(template: str) -> re.Pattern[str]:
    """Regex of a swagger path template; parameters become positional groups."""
    parts = re.split(r"\{[^}]+\}", template)
    return re.compile("^" + "([^/]+)".join(re.escape(part) for part in parts) + "$")


class Contract:
    """Operations of the swagger file, matched by method and path."""

    def __init__(self, swagger: dict[str, Any]) -> None:
        self.swagger = swagger
        self.operations = []
        for template, methods in swagger["paths"].items():
            pattern = path_pattern(template)
            for method, operation in methods.items():
                if method in ("get", "post", "put", "delete", "patch"):
                    self.operations.append((method.upper(), template, pattern, operation))

    def match(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        candidates = [(template, pattern, operation)
                      for m, template, pattern, operation in self.operations
                      if m == method and pattern.match(path)]
        if not candidates:
            return None
        # the most literal template wins (/workflows/{ns}/{name}/stop over /{ns}/{name})
        template, _, operation = max(candidates, key=lambda c: len(c[0].replace("{", "")))
        return template, operation

    def schema(self, ref_schema: dict[str, Any]) -> dict[str, Any]:
        return {**ref_schema, "definitions": self.swagger["definitions"]}

    def check(self, schema: dict[str, Any], instance: Any, where: str) -> list[str]:
        full = self.schema(schema)
        errors = [f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in jsonschema.Draft4Validator(full).iter_errors(instance)]
        errors += [f"{where}: {'/'.join(map(str, path))}: unknown key {key!r}"
                   for path, key in unknown_keys(instance, full, full)]
        return errors


class ArgoStub:
    """The stub's state: workflows by name, the scenario, what was asked and refused."""

    def __init__(self, scenario: str = "success", steps_to_finish: int = 3,
                 get_faults: dict[int, int] | None = None, prefix: str = "",
                 template_file: Path = TEMPLATE_FILE) -> None:
        self.contract = Contract(load_swagger())
        self.scenario = scenario
        self.steps_to_finish = steps_to_finish
        self.get_faults = get_faults or {}
        self.gets = 0
        # Served under a path, as behind an ingress (`https://host/argo`): a request
        # outside it is answered like an unknown route.
        self.prefix = prefix.rstrip("/")
        template = yaml.safe_load(template_file.read_text())
        self.templates = {template["metadata"]["name"]: template}
        self.workflows: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.errors: list[str] = []
        self.stopped: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.prefix}"

    def parameters(self, name: str) -> dict[str, str]:
        """Workflow `name`'s parameters as the controller resolves them: given, else default."""
        manifest = self.workflows[name]["manifest"]
        template = self.templates[manifest["spec"]["workflowTemplateRef"]["name"]]
        values = {p["name"]: p["value"] for p in template["spec"]["arguments"]["parameters"]
                  if "value" in p}
        values.update({p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]})
        return values

    def __enter__(self) -> ArgoStub:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- the workflow's life -------------------------------------------------------
    def _node(self, name: str, display: str, template: str, phase: str,
              message: str | None = None, kind: str = "Pod", order: int = 0) -> dict:
        node = {"id": f"{name}-{abs(hash(display)) % 10**8}", "name": f"{name}.{display}",
                "displayName": display, "type": kind, "templateName": template,
                "phase": phase, "startedAt": f"2026-01-01T00:00:{order:02d}Z"}
        if phase in ("Succeeded", "Failed", "Error"):
            node["finishedAt"] = f"2026-01-01T00:01:{order:02d}Z"
        if message:
            node["message"] = message
        return node

    def _status(self, name: str) -> dict[str, Any]:
        polls = self.polls[name]
        workflow = self.workflows[name]
        if workflow.get("stopped"):
            return {"phase": "Failed", "message": "Stopped with strategy 'Stop'",
                    "nodes": {}}
        done = polls >= self.steps_to_finish
        nodes = [self._node(name, "plan", "plan", "Succeeded", order=1)]
        if self.scenario == "failed" and done:
            nodes.append(self._node(name, "train(0:2018-04-01)", "train-batch", "Succeeded",
                                    order=2))
            nodes.append(self._node(name, "train(0)", "train-batch", "Failed",
                                    "Pod was terminated due to imminent node shutdown", order=3))
            nodes.append(self._node(
                name, "train(1)", "train-batch", "Failed",
                "main: Error (exit code 3): dataset 2018-04-02.parquet: column TX_AMOUNT missing",
                order=4))
            nodes.append(self._node(name, "train", "train-batch", "Failed",
                                    "retryStrategy.expression evaluated to false", kind="Retry",
                                    order=3))
            nodes.append(self._node(name, "train-chain", "train-chain", "Failed",
                                    "child 'train(1:2018-04-02)' failed", kind="Steps", order=2))
            return {"phase": "Failed", "message": "child 'train-chain' failed",
                    "nodes": {n["id"]: n for n in nodes}}
        if self.scenario == "success" and done:
            nodes.append(self._node(name, "train(0:2018-04-01)", "train-batch", "Succeeded",
                                    order=2))
            nodes.append(self._node(name, "report", "report", "Succeeded", order=3))
            return {"phase": "Succeeded", "nodes": {n["id"]: n for n in nodes}}
        nodes.append(self._node(name, "train(0:2018-04-01)", "train-batch", "Running", order=2))
        return {"phase": "Running", "nodes": {n["id"]: n for n in nodes}}

    def submit(self, namespace: str, body: dict[str, Any]) -> tuple[int, Any]:
        """`/submit`: a Workflow that references the template, with the given parameters."""
        if body.get("resourceKind") != "WorkflowTemplate":
            kind = body.get("resourceKind")
            return 400, {"code": 3, "message": f"unsupported resourceKind {kind}"}
        template = self.templates.get(body.get("resourceName", ""))
        if template is None or template["metadata"]["namespace"] != namespace:
            return 404, {"code": 5, "message": "workflowtemplates.argoproj.io "
                                               f"\"{body.get('resourceName')}\" not found"}
        declared = {p["name"] for p in template["spec"]["arguments"]["parameters"]}
        parameters = []
        for pair in body.get("submitOptions", {}).get("parameters", []):
            key, sep, value = pair.partition("=")
            if not sep or key not in declared:
                return 400, {"code": 3, "message": f"invalid parameter {pair!r}"}
            parameters.append({"name": key, "value": value})
        # Argo's validation of the merged arguments (workflow/validate/validate.go,
        # validateArgumentsValues): a parameter with neither a value nor valueFrom refuses
        # the submission.
        given = {p["name"] for p in parameters}
        for declared_parameter in template["spec"]["arguments"]["parameters"]:
            missing = declared_parameter["name"]
            if missing not in given and "value" not in declared_parameter \
                    and "valueFrom" not in declared_parameter:
                why = (f"spec.arguments.{missing}.value or spec.arguments.{missing}.valueFrom "
                       "is required")
                return 400, {"code": 3, "message": why}
        name = template["metadata"]["name"] + "-" + uuid.uuid4().hex[:5]
        workflow = {
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                         "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"workflows.argoproj.io/workflow-template":
                                    template["metadata"]["name"]}},
            "spec": {"workflowTemplateRef": {"name": template["metadata"]["name"]},
                     "arguments": {"parameters": parameters}},
        }
        self.workflows[name] = {"manifest": workflow}
        self.polls[name] = 0
        return 200, {**workflow, "status": {"phase": "Pending"}}

    def answer(self, method: str, template: str, params: dict[str, str],
               body: Any) -> tuple[int, Any]:
        with self.lock:
            if template == "/api/v1/workflows/{namespace}" and method == "POST":
                if "workflowTemplateRef" not in body["workflow"].get("spec", {}):
                    return 400, {"code": 3, "message": STRICT_REFUSAL}
                return 501, {"code": 12, "message": "stub creates workflows only by /submit"}
            if template == "/api/v1/workflows/{namespace}/submit":
                return self.submit(params["namespace"], body)
            if template == "/api/v1/version":
                return 200, {"version": "v4.1.2", "buildDate": "2026-01-01T00:00:00Z",
                             "gitCommit": "0" * 40, "gitTag": "v4.1.2", "gitTreeState": "clean",
                             "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"}
            name = params.get("name", "")
            if name not in self.workflows:
                return 404, {"code": 5, "message": f"workflows.argoproj.io \"{name}\" not found"}
            if template == "/api/v1/workflows/{namespace}/{name}" and method == "GET":
                self.gets += 1
                fault = self.get_faults.get(self.gets)
                if fault is not None:
                    return fault, {"code": {503: 14, 403: 7}.get(fault, 2),
                                   "message": f"simulated HTTP {fault}"}
                self.polls[name] += 1
                manifest = self.workflows[name]["manifest"]
                return 200, {**manifest, "status": self._status(name)}
            if template == "/api/v1/workflows/{namespace}/{name}/stop":
                self.workflows[name]["stopped"] = True
                self.stopped.append(body)
                return 200, {**self.workflows[name]["manifest"], "status": self._status(name)}
        return 501, {"code": 12, "message": f"stub does not implement {method} {template}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # keep test output quiet
                pass

            def _reply(self, code: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _refuse(self, why: list[str]) -> None:
                stub.errors.extend(why)
                stub.requests.append((self.command, self.path, 400))
                self._reply(400, {"code": 3, "message": "; ".join(why)})

            def _serve(self) -> None:
                split = urlsplit(self.path)
                if not split.path.startswith(stub.prefix + "/"):
                    return self._refuse([f"{self.command} {split.path}: not under "
                                         f"{stub.prefix}/"])
                split = split._replace(path=split.path[len(stub.prefix):])
                found = stub.contract.match(self.command, split.path)
                if found is None:
                    return self._refuse([f"{self.command} {split.path}: no such operation"])
                template, operation = found
                declared = {p["name"]: p for p in operation.get("parameters", [])}
                names = re.findall(r"\{([^}]+)\}", template)
                values = path_pattern(template).match(split.path).groups()
                params = dict(zip(names, values, strict=True))
                problems = [f"query parameter {q!r} is not declared"
                            for q in parse_qs(split.query)
                            if declared.get(q, {}).get("in") != "query"]
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or len(auth.split()) != 2:
                    problems.append("missing or malformed Authorization: Bearer token")
                body = None
                body_spec = next((p for p in declared.values() if p["in"] == "body"), None)
                length = int(self.headers.get("Content-Length") or 0)
                if body_spec is not None:
                    try:
                        body = json.loads(self.rfile.read(length) or b"null")
                    except json.JSONDecodeError as exc:
                        problems.append(f"body is not JSON: {exc}")
                    else:
                        if body is None and body_spec.get("required"):
                            problems.append("body is required")
                        elif body is not None:
                            problems += stub.contract.check(body_spec["schema"], body, "body")
                elif length:
                    problems.append("this operation takes no body")
                if problems:
                    return self._refuse(problems)
                code, payload = stub.answer(self.command, template, params, body)
                responses = operation["responses"]
                response = (responses["200"] if code == 200 else responses["default"])["schema"]
                mistakes = stub.contract.check(response, payload, "response")
                if mistakes:
                    stub.errors.extend(mistakes)
                    code, payload = 500, {"code": 13, "message": "; ".join(mistakes)}
                stub.requests.append((self.command, split.path, code))
                self._reply(code, payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler


if __name__ == "__main__":  # pragma: no cover - manual use: python tests/argo_server_stub.py
    import sys
    import time

    with ArgoStub(sys.argv[1] if len(sys.argv) > 1 else "success") as running:
        print(running.url, flush=True)
        while True:
            time.sleep(3600)
