"""Deployment files, proved without a Docker engine or a cluster.

Schemas: the compose file against the compose-spec, the workflows against GitHub's schemas
(both vendored by check-jsonschema), the Kubernetes manifests against the API schemas that
kubernetes-validate ships. Tools: promtool, amtool, hadolint and `kubectl kustomize` where
installed (CI installs them). Consistency: every variable, port, path, topic and flag that
configures our service in these files is one the code reads, with a value it accepts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import confluent_kafka
import kubernetes_validate
import pytest
import yaml

from consumer.settings import Settings
from sentiment_stream.cli import main as cli_main
from stream_core.cli_options import load_settings
from stream_core.kafka import ENV_PREFIX as KAFKA_ENV_PREFIX
from tests.fixtures.services import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
COMPOSE_PROMETHEUS = ROOT / "deploy" / "compose" / "prometheus.yml"
PROMETHEUS_RULES = ROOT / "deploy" / "prometheus" / "rules"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = [K8S / "base", K8S / "overlays" / "production"]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((ROOT / ".github" / "actions").glob("*/action.yml"))
# The oldest Kubernetes minor we support, and the newest the schemas know.
K8S_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
CUSTOM_RESOURCE_GROUPS = ("keda.sh/", "monitoring.coreos.com/")
# The image's service (compose services built from deploy/Dockerfile, Kubernetes containers).
OUR_DOCKERFILE = "deploy/Dockerfile"
OUR_IMAGE = "sentiment-stream"
OUR_TRAINER_IMAGE = "sentiment-stream-trainer"  # the Dockerfile's `trainer` stage (torch)


# --- loading ---------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def interpolate(text: str) -> str:
    """Compose variable interpolation with every variable unset: defaults, `$$` -> `$`."""
    text = re.sub(r"\$\{[A-Z0-9_]+:?-([^}]*)\}", r"\1", text)
    return text.replace("$$", "$")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE_FILE.read_text(encoding="utf-8")))
    return data


def our_compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    ours = {
        name: service
        for name, service in services.items()
        if service.get("build", {}).get("dockerfile") == OUR_DOCKERFILE
    }
    assert {"migrate", "consumer", "simulator"} <= set(ours)
    return ours


def kustomization_files(directory: Path) -> Iterator[tuple[str, Path]]:
    """(`resource` | `patch`, file) for a kustomization and the ones it includes, kustomize-free."""
    kustomization = load_yaml(directory / "kustomization.yaml")
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            yield from kustomization_files(target)
        else:
            yield "resource", target
    for patch in kustomization.get("patches", []):
        yield "patch", (directory / patch["path"]).resolve()


def k8s_resources(directory: Path) -> list[dict[str, Any]]:
    return [
        doc
        for role, path in kustomization_files(directory)
        if role == "resource"
        for doc in load_documents(path)
    ]


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed here (GitHub's runners have it): no kustomize build")
    rendered = run_tool(kubectl, "kustomize", str(directory))
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def run_tool(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)


# --- settings ---------------------------------------------------------------------------------


def settings_env_names() -> set[str]:
    """Every environment variable name a Settings field reads (read from the model itself)."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
        aliases = {choice for choice in choices if isinstance(choice, str)}
        names |= {choice.upper() for choice in aliases} or {f"{prefix}{name}".upper()}
    return names


def is_setting(name: str) -> bool:
    return name in settings_env_names() or name.startswith(KAFKA_ENV_PREFIX)


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings exactly as the service would build them from this environment."""
    for name in list(os.environ):
        if is_setting(name):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(Path(__file__).parent)  # no stray .env file
    settings = load_settings(Settings, {})
    # librdkafka itself rejects unknown properties and bad values (no connection is made).
    producer_config = settings.kafka_config(**{"bootstrap.servers": "127.0.0.1:9", "log_level": 0})
    confluent_kafka.Producer(producer_config)
    return settings


def test_settings_env_names_are_read_from_the_model() -> None:
    names = settings_env_names()
    assert {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "SENTIMENT_HTTP_PORT"} <= names
    assert "SENTIMENT_DATABASE_URL" not in names
    assert is_setting("KAFKA_SASL_PASSWORD")
    assert not is_setting("SENTIMENT_NO_SUCH_SETTING")


# --- schemas ----------------------------------------------------------------------------------


def check_jsonschema(schema: str, *files: Path) -> None:
    result = run_tool(
        sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_matches_the_compose_spec() -> None:
    check_jsonschema("vendor.compose-spec", COMPOSE_FILE)


def test_workflows_and_actions_match_githubs_schemas() -> None:
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "cd.yml"}
    check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    check_jsonschema("vendor.github-actions", *ACTIONS)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_k8s_resources_match_the_api_schemas(directory: Path, version: str) -> None:
    docs = k8s_resources(directory)
    assert docs
    for doc in docs:
        if doc["apiVersion"].startswith(CUSTOM_RESOURCE_GROUPS):
            continue  # no published schema: checked field by field below
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_kustomize_builds_and_the_output_matches_the_api_schemas(directory: Path) -> None:
    docs = kustomize_build(directory)
    for doc in docs:
        assert doc["metadata"].get("namespace", "sentiment-stream") == "sentiment-stream"
        if not doc["apiVersion"].startswith(CUSTOM_RESOURCE_GROUPS):
            kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)


def test_every_overlay_patch_targets_a_base_resource() -> None:
    targets = {(doc["kind"], doc["metadata"]["name"]) for doc in k8s_resources(K8S / "base")}
    overlay = kustomization_files(K8S / "overlays" / "production")
    patches = [path for role, path in overlay if role == "patch"]
    assert patches
    for path in patches:
        for doc in load_documents(path):
            assert (doc["kind"], doc["metadata"]["name"]) in targets, path.name


# --- tools ------------------------------------------------------------------------------------


def require(tool: str) -> str:
    found = shutil.which(tool) or shutil.which(tool, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{tool} is not installed here (CI installs it: see .github/workflows/ci.yml)")
    return found


def test_compose_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    promtool = require("promtool")
    # The layout of the container: the config with the rules folder beside it.
    shutil.copy(COMPOSE_PROMETHEUS, tmp_path / "prometheus.yml")
    (tmp_path / "rules").mkdir()
    for rule_file in sorted(PROMETHEUS_RULES.glob("*.yml")):
        shutil.copy(rule_file, tmp_path / "rules" / rule_file.name)
    result = run_tool(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_passes_amtool() -> None:
    amtool = require("amtool")
    result = run_tool(amtool, "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_passes_hadolint() -> None:
    hadolint = require("hadolint")
    result = run_tool(hadolint, str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


# --- the image --------------------------------------------------------------------------------


def dockerfile_instructions(keyword: str) -> list[str]:
    """Arguments of every `keyword` instruction in the runtime stage, continuations joined."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    runtime = text[text.index(" AS runtime") :]
    return [line.split(None, 1)[1] for line in runtime.splitlines() if line.startswith(keyword)]


def test_image_exposes_and_health_checks_the_settings_port() -> None:
    port = Settings.model_fields["http_port"].default
    assert dockerfile_instructions("EXPOSE") == [str(port)]
    (healthcheck,) = dockerfile_instructions("HEALTHCHECK")
    assert "/health'" in healthcheck
    assert f"'SENTIMENT_HTTP_PORT', '{port}'" in healthcheck
    env = " ".join(dockerfile_instructions("ENV"))
    assert f"SENTIMENT_HTTP_PORT={port}" in env
    for name in re.findall(r"\b([A-Z][A-Z0-9_]+)=", env):
        assert name in {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"} or is_setting(name)


def test_image_runs_as_non_root_with_our_entrypoint() -> None:
    assert dockerfile_instructions("USER") == ["10001:10001"]
    assert dockerfile_instructions("ENTRYPOINT") == ['["sentiment-stream"]']
    assert dockerfile_instructions("CMD") == ['["consume"]']


def test_dockerignore_keeps_the_default_model_and_data_and_drops_tests() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {"!model/assets/default", "!model/assets/tweeteval"} <= set(lines)
    assert {"tests", ".git", ".venv", ".env"} <= set(lines)


# --- compose ----------------------------------------------------------------------------------


def test_compose_env_is_settings_the_code_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, service in our_compose_services().items():
        env = {key: str(value) for key, value in service["environment"].items()}
        unknown = sorted(key for key in env if not is_setting(key))
        assert not unknown, f"{name}: not settings: {unknown}"
        settings = settings_from(env, monkeypatch)
        assert settings.bootstrap_servers == "kafka:9092"
        assert settings.database_url_value().startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in settings.database_url_value()


def test_compose_consumers_scale_and_start_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    consumer = services["consumer"]
    assert "container_name" not in consumer
    assert "ports" not in consumer  # a host port would clash at --scale consumer=2
    port = settings_from(consumer["environment"], monkeypatch).http_port
    assert consumer["expose"] == [str(port)]
    assert consumer["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "topic-init": {"condition": "service_completed_successfully"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    # SIGTERM must leave time to drain and commit the batch in flight.
    grace = int(consumer["stop_grace_period"].removesuffix("s"))
    assert grace > Settings.model_fields["shutdown_timeout_s"].default
    assert services["migrate"]["command"] == ["db", "upgrade"]


def test_compose_waits_only_on_what_can_report() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            target = services[dependency]
            if rule["condition"] == "service_healthy":
                assert "test" in target.get("healthcheck", {}), f"{name} -> {dependency}"
            if rule["condition"] == "service_completed_successfully":
                assert target.get("restart") == "no", f"{name} -> {dependency}"
    # The image's HEALTHCHECK probes the HTTP API, which only the consumer serves.
    for name, service in our_compose_services().items():
        assert (name == "consumer") != service.get("healthcheck", {}).get("disable", False)


def topic_partitions() -> dict[str, int]:
    script = " ".join(compose()["services"]["topic-init"]["command"])
    specs = re.search(r"for spec in ([^;]+);", script)
    assert specs, "topic-init: no `for spec in TOPIC:PARTITIONS ...;` list"
    return {topic: int(count) for topic, count in re.findall(r"([\w.]+):(\d+)", specs[1])}


def test_compose_creates_every_topic_the_consumer_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(compose()["services"]["consumer"]["environment"], monkeypatch)
    partitions = topic_partitions()
    assert {settings.topic, settings.dlq_topic, settings.alerts_topic} <= set(partitions)
    assert partitions[settings.topic] >= 3  # room for `--scale consumer=3`


def test_compose_prometheus_discovers_every_consumer_replica(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = compose()["services"]["consumer"]
    port = settings_from(consumer["environment"], monkeypatch).http_port
    config = load_yaml(COMPOSE_PROMETHEUS)
    (job,) = [job for job in config["scrape_configs"] if "dns_sd_configs" in job]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["dns_sd_configs"] == [
        {"names": ["consumer"], "type": "A", "port": port, "refresh_interval": "15s"}
    ]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]


def test_compose_mounts_the_files_it_names() -> None:
    volumes = [
        volume.split(":")[0]
        for service in compose()["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    ]
    assert volumes
    for volume in volumes:
        if volume.startswith(("./deploy/prometheus/", "./deploy/grafana/")):
            continue  # written by the observability work; compose mounts them where they land
        assert (ROOT / volume).exists(), volume


# --- Kubernetes -------------------------------------------------------------------------------


def container_env(
    container: dict[str, Any], docs: list[dict[str, Any]]
) -> Iterator[tuple[str, str]]:
    """(name, value) of a container's environment, ConfigMap and Secret references resolved."""
    config_maps = {doc["metadata"]["name"]: doc["data"] for doc in by_kind(docs, "ConfigMap")}
    secrets = {doc["metadata"]["name"]: doc["stringData"] for doc in by_kind(docs, "Secret")}
    for source in container.get("envFrom", []):
        yield from config_maps[source["configMapRef"]["name"]].items()
    for variable in container.get("env", []):
        if "value" in variable:
            yield variable["name"], variable["value"]
        elif "secretKeyRef" in variable["valueFrom"]:
            reference = variable["valueFrom"]["secretKeyRef"]
            yield variable["name"], secrets[reference["name"]][reference["key"]]
        else:
            reference = variable["valueFrom"]["configMapKeyRef"]
            yield variable["name"], config_maps[reference["name"]][reference["key"]]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template's spec of a Deployment, Job or CronJob; None for other kinds."""
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    elif doc["kind"] not in {"Deployment", "Job"}:
        return None
    return dict(spec["template"]["spec"])


def our_containers(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for doc in docs:
        for container in (pod_spec(doc) or {}).get("containers", []):
            if container["image"].split(":")[0].endswith((OUR_IMAGE, OUR_TRAINER_IMAGE)):
                yield doc, container


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_k8s_env_is_settings_the_code_accepts(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = kustomize_build(directory)
    for doc, container in our_containers(docs):
        env = dict(container_env(container, docs))
        unknown = sorted(key for key in env if not is_setting(key))
        assert not unknown, f"{doc['metadata']['name']}: not settings: {unknown}"
        settings_from(env, monkeypatch)
        # Credentials come from Secrets, never from the ConfigMap or a literal.
        for variable in container.get("env", []):
            if variable["name"] == "DATABASE_URL" or "PASSWORD" in variable["name"]:
                assert "secretKeyRef" in variable["valueFrom"]


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_k8s_ports_probes_and_termination(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = kustomize_build(directory)
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    settings = settings_from(dict(container_env(container, docs)), monkeypatch)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": settings.http_port}

    def probe(kind: str) -> tuple[str, int]:
        get = container[kind]["httpGet"]
        return get["path"], ports.get(get["port"], get["port"])

    assert probe("livenessProbe") == ("/health", settings.http_port)
    assert probe("startupProbe") == ("/health", settings.http_port)
    assert probe("readinessProbe") == ("/ready", settings.http_port)

    service = one(docs, "Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    (service_port,) = service["spec"]["ports"]
    assert ports.get(service_port["targetPort"], service_port["targetPort"]) == settings.http_port
    for monitor in by_kind(docs, "ServiceMonitor"):
        assert {e["port"] for e in monitor["spec"]["endpoints"]} == {service_port["name"]}
        assert {e["path"] for e in monitor["spec"]["endpoints"]} == {"/metrics"}

    # SIGKILL must not come before the preStop pause plus the drain deadline.
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pause + settings.shutdown_timeout_s
    assert "replicas" not in deployment["spec"]  # owned by the ScaledObject

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["requests"] and container["resources"]["limits"]
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_keda_scales_the_consumer_group_on_lag_up_to_the_partitions(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = kustomize_build(directory)
    deployment = one(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    settings = settings_from(dict(container_env(container, docs)), monkeypatch)
    scaled = one(docs, "ScaledObject")["spec"]
    assert scaled["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert scaled["maxReplicaCount"] == topic_partitions()[settings.topic]
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["bootstrapServers"] == settings.bootstrap_servers
    assert trigger["metadata"]["consumerGroup"] == settings.group_id
    assert trigger["metadata"]["topic"] == settings.topic
    assert int(trigger["metadata"]["lagThreshold"]) > 0

    # A secured cluster: KEDA authenticates with keys that exist in the Secret.
    if "security.protocol" in settings.kafka_options:
        auth = one(docs, "TriggerAuthentication")
        assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
        secrets = {doc["metadata"]["name"]: doc["stringData"] for doc in by_kind(docs, "Secret")}
        parameters = {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]}
        assert parameters == {"sasl", "username", "password", "tls"}
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["key"] in secrets[ref["name"]]
    else:
        assert "authenticationRef" not in trigger


# --- retraining on a schedule -----------------------------------------------------------------


def test_retrain_runs_on_the_trainer_image_on_every_scheduler() -> None:
    """compose, the CronJob and the workflow run the same retrain, with torch from the CPU
    index in an image of its own; the service image stays torch-free."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    trainer = text[text.index(" AS trainer") : text.index(" AS runtime")]
    assert "download.pytorch.org/whl/cpu" in trainer
    assert '".[train,tracking]"' in trainer
    assert "torch" not in text[text.index(" AS runtime") :]
    assert text.rstrip().endswith('CMD ["consume"]')  # `docker build` builds the service

    service = compose()["services"]["retrain"]
    assert service["build"] == {"context": ".", "dockerfile": OUR_DOCKERFILE, "target": "trainer"}
    assert service["profiles"] == ["retrain"]  # `docker compose up` leaves it alone
    compose_args = [str(arg) for arg in service["command"]]

    base = k8s_resources(K8S / "base")
    cronjob = one(base, "CronJob")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = [c for doc, c in our_containers([cronjob])]
    assert container["image"] == OUR_TRAINER_IMAGE
    assert container["args"] == compose_args
    images = {image["name"] for image in load_yaml(K8S / "base" / "kustomization.yaml")["images"]}
    assert OUR_TRAINER_IMAGE in images

    workflow = load_yaml(ROOT / ".github" / "workflows" / "retrain.yml")
    assert workflow[True]["schedule"]  # YAML 1.1 reads the key `on` as True
    for args in (compose_args, container["args"]):
        assert args[:2] == ["model", "retrain"]
        assert "--shadow" in args
        assert any(arg.startswith("--promote-if-better=") for arg in args)


# --- the CLI named in these files -------------------------------------------------------------


def cli_invocations() -> Iterator[tuple[str, list[str]]]:
    """(where, argv) of every `sentiment-stream` call in compose, Kubernetes and workflows."""
    for name, service in our_compose_services().items():
        yield f"compose:{name}", [str(arg) for arg in service["command"]]
    for directory in KUSTOMIZATIONS:
        for doc, container in our_containers(k8s_resources(directory)):
            yield f"k8s:{doc['metadata']['name']}", container["args"]
    for workflow in WORKFLOWS:
        for job in load_yaml(workflow)["jobs"].values():
            for step in job["steps"]:
                # `run: >` folds a call onto one line; `\` continues one in `run: |`.
                run = step.get("run", "").replace("\\\n", " ")
                for line in run.splitlines():
                    if line.strip().startswith("sentiment-stream "):
                        yield workflow.name, line.split()[1:]


def resolve(argv: list[str]) -> tuple[click.Command, list[str]]:
    command: click.Command = cli_main
    while isinstance(command, click.Group) and argv and argv[0] in command.commands:
        command, argv = command.commands[argv[0]], argv[1:]
    return command, argv


def test_cli_calls_in_deploy_files_name_real_commands_and_flags() -> None:
    invocations = list(cli_invocations())
    assert {where for where, _ in invocations} >= {"compose:consumer", "cd.yml"}
    for where, argv in invocations:
        command, rest = resolve(argv)
        # Commands still stubs on this branch (no subcommands, no options) are checked once real.
        if isinstance(command, click.Group):
            assert not command.commands, f"{where}: no such command: {' '.join(argv)}"
            continue
        if not command.params:
            continue
        flags = {opt for param in command.params for opt in param.opts}
        for arg in rest:
            if arg.startswith("--"):
                assert arg.split("=")[0] in flags, f"{where}: {' '.join(argv)}"
