"""The production deployment files agree with the code: docker-compose.yml, deploy/Dockerfile,
the PostgreSQL init script, the topic script and the Kubernetes manifests.

Docker and a cluster are not needed: the files are parsed with pyyaml and checked against
the settings classes, `shared.events` and the CLI; the two shell scripts are run for real with
stand-ins for `psql` and `kafka-topics.sh` that record how they were called. Where the docker
CLI has its compose plugin, `docker compose config` validates the compose file as well.
"""
from __future__ import annotations

import fnmatch
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from shared.cli import build_parser
from shared.events import ALL_TOPICS, dlq
from shared import registry
from shared.settings import ROOT, Settings

SERVICES = tuple(registry.ports())
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SECRET_TEMPLATE = K8S / "secret-template" / "qiyue-secrets.yaml"
INIT_SCRIPT = DEPLOY / "postgres-init" / "10-service-databases.sh"
TOPICS_SCRIPT = DEPLOY / "kafka-topics.sh"
EXPECTED_TOPICS = {*ALL_TOPICS, *(dlq(t) for t in ALL_TOPICS)}
# Read by shared.settings.var_dir() straight from the environment, not a Settings field.
NON_FIELD_VARIABLES = {"QIYUE_VAR_DIR"}


def settings_class(service: str) -> type[Settings]:
    """The service's own settings (services/<service>/settings.py) or the shared ones."""
    try:
        module = importlib.import_module(f"services.{service}.settings")
    except ModuleNotFoundError as exc:
        if exc.name != f"services.{service}.settings":
            raise
        return Settings
    return next(c for c in vars(module).values() if isinstance(c, type) and issubclass(c, Settings) and c is not Settings)


FIELDS = {service: {f.upper() for f in settings_class(service).model_fields} - {"SERVICE"} for service in SERVICES}


# --- loading ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def k8s_manifests() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def k8s() -> list[dict]:
    docs = []
    for path in k8s_manifests() + [SECRET_TEMPLATE]:
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def find(docs: list[dict], kind: str, name: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def container_of(workload: dict) -> dict:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def is_setting(name: str) -> bool:
    """`QIYUE_<FIELD>` or `QIYUE_<SERVICE>_<FIELD>` for a field a service's settings read."""
    if name in NON_FIELD_VARIABLES:
        return True
    if not name.startswith("QIYUE_"):
        return False
    rest = name[len("QIYUE_"):]
    if any(rest in fields for fields in FIELDS.values()):
        return True
    return any(rest.startswith(s.upper() + "_") and rest[len(s) + 1:] in FIELDS[s] for s in SERVICES)


def test_is_setting_tells_settings_from_typos():
    assert is_setting("QIYUE_KAFKA_BOOTSTRAP") and is_setting("QIYUE_SLA_DATABASE_URL")
    assert is_setting("QIYUE_SMTP_HOST") and is_setting("QIYUE_NOTIFICATIONS_RETRY_BASE_S")
    assert not is_setting("QIYUE_KAFKA_BOOTSTRAP_SERVERS") and not is_setting("QIYUE_BILLING_DATABASE_URL")
    assert not is_setting("QIYUE_PAYMENTS_RETRY_BASE_S")   # payments has no such setting


def parses(argv: list[str]) -> bool:
    """The `qiyue` command line accepts `argv` (what the containers run)."""
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return False
    return True


def test_parses_tells_commands_from_typos():
    assert parses(["serve", "sla", "--host", "0.0.0.0"]) and parses(["migrate"])
    assert not parses(["serve", "billing"]) and not parses(["serve", "sla", "--bind", "0.0.0.0"])


# --- docker-compose.yml ----------------------------------------------------------------------

def test_compose_runs_apache_kafka_in_kraft_mode_reachable_as_kafka_9092(compose):
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:") and not kafka["image"].endswith(":latest")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node}@kafka:9093"
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"].split(",")
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "PLAINTEXT://:9092" in env["KAFKA_LISTENERS"].split(",")
    assert not any("ZOOKEEPER" in key for key in env)
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"  # one node holds one copy
    assert "/opt/kafka/bin/" in " ".join(kafka["healthcheck"]["test"])


def test_compose_postgres_runs_the_init_script_and_has_every_password_it_reads(compose):
    postgres = compose["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "./deploy/postgres-init:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    read_by_script = set(re.findall(r"\$\{(\w+_DB_PASSWORD)", INIT_SCRIPT.read_text()))
    assert read_by_script == {f"{s.upper()}_DB_PASSWORD" for s in SERVICES}
    assert read_by_script <= set(postgres["environment"])
    assert "-h 127.0.0.1" in " ".join(postgres["healthcheck"]["test"])  # not the init-time socket


@pytest.mark.parametrize("service", SERVICES)
def test_compose_service_is_built_from_the_dockerfile_and_served_on_its_port(compose, service):
    svc, port = compose["services"][service], registry.ports()[service]
    assert svc["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}
    assert svc["command"] == ["qiyue", "serve", service, "--host", "0.0.0.0"] and parses(svc["command"][1:])
    assert svc["ports"] == [f"{port}:{port}"]
    assert svc["environment"]["QIYUE_PORT"] == str(port)
    check = " ".join(svc["healthcheck"]["test"])   # healthy = ready, on the port QIYUE_PORT names
    assert "http://127.0.0.1:%s/readyz" in check and "os.environ['QIYUE_PORT']" in check
    assert svc["restart"] == "unless-stopped"


@pytest.mark.parametrize("service", SERVICES)
def test_compose_service_environment_is_production_and_its_own(compose, service):
    env = compose["services"][service]["environment"]
    assert env["QIYUE_ENVIRONMENT"] == "production"
    assert env["QIYUE_MIGRATE_ON_START"] == "false"
    assert env["QIYUE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["QIYUE_JWT_SECRET"].startswith("${QIYUE_JWT_SECRET:?")
    url = env[f"QIYUE_{service.upper()}_DATABASE_URL"]
    assert re.fullmatch(rf"postgresql://{service}:\$\{{{service.upper()}_DB_PASSWORD:\?[^}}]*\}}@postgres:5432/{service}", url)
    others = [f"QIYUE_{s.upper()}_DATABASE_URL" for s in SERVICES if s != service]
    assert not set(others) & set(env), "a service is given only its own database"


def test_compose_migrates_once_before_any_service_starts(compose):
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["qiyue", "migrate"] and parses(migrate["command"][1:])
    assert migrate["build"]["dockerfile"] == "deploy/Dockerfile" and migrate["image"] == services["contracts"]["image"]
    assert migrate["restart"] == "no"
    assert {f"QIYUE_{s.upper()}_DATABASE_URL" for s in SERVICES} <= set(migrate["environment"])
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for service in SERVICES:
        depends = services[service]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["kafka-topics"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == depends["kafka"]["condition"] == "service_healthy"


def test_compose_creates_topics_with_the_partitions_the_services_expect(compose):
    topics = compose["services"]["kafka-topics"]
    assert topics["image"] == compose["services"]["kafka"]["image"]
    assert topics["entrypoint"] == ["/bin/bash", "/deploy/kafka-topics.sh"]
    assert "./deploy/kafka-topics.sh:/deploy/kafka-topics.sh:ro" in topics["volumes"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert topics["environment"]["KAFKA_BOOTSTRAP"] == "kafka:9092"
    for service in SERVICES:
        assert compose["services"][service]["environment"]["QIYUE_KAFKA_PARTITIONS"] == topics["environment"]["PARTITIONS"]


def test_compose_every_long_running_container_has_a_health_check(compose):
    for name, svc in compose["services"].items():
        if svc.get("restart") == "no":
            continue  # one-shot steps: their exit status is their health
        assert svc["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name


def test_compose_gives_notifications_a_mail_relay_from_the_environment(compose):
    env = compose["services"]["notifications"]["environment"]
    assert env["QIYUE_SMTP_HOST"].startswith("${QIYUE_SMTP_HOST:?") and env["QIYUE_SMTP_FROM"].startswith("${QIYUE_SMTP_FROM:?")
    assert not [k for s in SERVICES if s != "notifications" for k in compose["services"][s]["environment"]
                if k.startswith("QIYUE_SMTP_")], "only notifications sends mail"


def test_compose_holds_no_literal_secret(compose):
    for name, svc in compose["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if re.search(r"SECRET|PASSWORD", key):   # required (:?) or optional with an empty default (:-)
                assert re.fullmatch(rf"\$\{{{key}(:\?[^}}]+|:-)\}}", str(value)), f"{name}.{key} must come from .env"
            if key.endswith("DATABASE_URL"):
                password = re.match(r"postgresql://[^:]+:([^@]+)@", value).group(1)
                assert password.startswith("${") and ":?" in password, f"{name}.{key}"


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_the_env_file_compose_reads_is_never_committed():
    assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT).returncode == 0


def compose_variables() -> set[str]:
    """The variables docker-compose.yml takes from .env."""
    return set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))


@pytest.mark.skipif(shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"],
                    capture_output=True).returncode != 0, reason="no docker compose plugin here")
def test_docker_compose_accepts_the_file(tmp_path):
    env = {**os.environ, **{name: "placeholder" for name in compose_variables()}}
    done = subprocess.run(["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_compose_references_only_real_settings(compose):
    names = {key for svc in compose["services"].values() for key in (svc.get("environment") or {})
             if key.startswith("QIYUE_")}
    assert names and not {n for n in names if not is_setting(n)}


# --- the two scripts, run with stand-ins -----------------------------------------------------

def recorder(directory: Path, name: str) -> Path:
    """An executable that appends its arguments and its stdin to <name>.log, one JSON call a line."""
    path = directory / name
    path.write_text(f"#!{sys.executable}\n"
                    "import json, sys\n"
                    f"with open({str(directory / (name + '.log'))!r}, 'a') as log:\n"
                    "    log.write(json.dumps({'argv': sys.argv[1:], 'stdin': sys.stdin.read()}) + '\\n')\n")
    path.chmod(0o755)
    return path


def calls(directory: Path, name: str) -> list[dict]:
    log = directory / f"{name}.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run_script(script: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script)], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=check, timeout=30)


def test_topic_script_lists_exactly_every_topic_and_its_dead_letter_topic():
    listed = re.search(r"topics=\(\n(.*?)\n\)", TOPICS_SCRIPT.read_text(), re.S).group(1).split()
    assert sorted(listed) == sorted(EXPECTED_TOPICS)


def test_topic_script_creates_each_topic_idempotently_with_partitions_and_replication(tmp_path):
    tool = recorder(tmp_path, "kafka-topics.sh")
    env = {**os.environ, "KAFKA_TOPICS_CMD": str(tool), "KAFKA_BOOTSTRAP": "broker-1:9092",
           "PARTITIONS": "12", "REPLICATION_FACTOR": "3", "MIN_INSYNC_REPLICAS": "2", "TOPIC_PREFIX": "staging."}
    run_script(TOPICS_SCRIPT, env)
    made = [call["argv"] for call in calls(tmp_path, "kafka-topics.sh")]
    assert len(made) == len(EXPECTED_TOPICS)
    created = set()
    for argv in made:
        opts = dict(zip(argv, argv[1:]))
        assert "--create" in argv and "--if-not-exists" in argv
        assert opts["--bootstrap-server"] == "broker-1:9092"
        assert (opts["--partitions"], opts["--replication-factor"]) == ("12", "3")
        assert opts["--config"] == "min.insync.replicas=2"
        created.add(opts["--topic"])
    assert created == {"staging." + t for t in EXPECTED_TOPICS}


def test_topic_script_defaults_suit_the_single_node_compose(tmp_path):
    tool = recorder(tmp_path, "kafka-topics.sh")
    env = {k: v for k, v in os.environ.items() if k not in ("PARTITIONS", "REPLICATION_FACTOR", "TOPIC_PREFIX")}
    run_script(TOPICS_SCRIPT, {**env, "KAFKA_TOPICS_CMD": str(tool)})
    made = calls(tmp_path, "kafka-topics.sh")
    assert len(made) == len(EXPECTED_TOPICS)
    for call in made:
        opts = dict(zip(call["argv"], call["argv"][1:]))
        assert (opts["--bootstrap-server"], opts["--partitions"], opts["--replication-factor"]) == ("kafka:9092", "6", "1")


def test_topic_script_stops_at_the_first_failure(tmp_path):
    tool = tmp_path / "kafka-topics.sh"
    tool.write_text("#!/usr/bin/env bash\necho broker unreachable >&2\nexit 1\n")
    tool.chmod(0o755)
    done = run_script(TOPICS_SCRIPT, {**os.environ, "KAFKA_TOPICS_CMD": str(tool)}, check=False)
    assert done.returncode != 0 and "topics ready" not in done.stdout


def init_env(tmp_path: Path, **passwords: str) -> dict:
    recorder(tmp_path, "psql")
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "POSTGRES_USER": "postgres",
            "POSTGRES_DB": "postgres", **passwords}


def test_postgres_init_creates_a_role_and_a_database_for_each_service(tmp_path):
    passwords = {f"{s.upper()}_DB_PASSWORD": f"pw-{s}-it's" for s in SERVICES}
    run_script(INIT_SCRIPT, init_env(tmp_path, **passwords))
    made = calls(tmp_path, "psql")
    assert len(made) == len(SERVICES)
    for service, call in zip(SERVICES, made):
        argv, sql = call["argv"], call["stdin"]
        assert f"service={service}" in argv and f"password=pw-{service}-it's" in argv
        assert "ON_ERROR_STOP=1" in argv
        assert 'CREATE ROLE :"service" LOGIN PASSWORD :\'password\'' in sql
        assert 'CREATE DATABASE :"service" OWNER :"service"' in sql
        assert "REVOKE ALL ON DATABASE" in sql
        assert "pw-" not in sql  # the password travels as a psql variable, never spliced into SQL


def test_postgres_init_refuses_a_missing_password(tmp_path):
    done = run_script(INIT_SCRIPT, init_env(tmp_path), check=False)
    assert done.returncode != 0 and "no password for the contracts database" in done.stderr
    assert calls(tmp_path, "psql") == []


# --- deploy/Dockerfile and .dockerignore -----------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def instructions(name: str) -> list[str]:
    return [args for op, args in dockerfile() if op == name]


def image_uid() -> str:
    return instructions("USER")[-1].split(":")[0]


def test_dockerfile_installs_the_project_on_python_311_slim_without_test_extras():
    assert all(args.split()[0] == "python:3.11-slim" for args in instructions("FROM"))
    runs = " ".join(instructions("RUN"))
    assert re.search(r"pip install (--\S+ )*\.(\s|$)", runs)
    assert "[test]" not in runs and "pytest" not in runs and "-e " not in runs


def test_dockerfile_runs_as_a_non_root_user_and_declares_ports_and_a_health_check():
    uid = image_uid()
    assert uid.isdigit() and int(uid) >= 1000  # numeric, so Kubernetes can verify runAsNonRoot
    assert f"--uid {uid}" in " ".join(instructions("RUN"))
    assert {int(p) for p in " ".join(instructions("EXPOSE")).split()} == set(registry.ports().values())
    (health,) = instructions("HEALTHCHECK")
    assert "/readyz" in health and "QIYUE_PORT" in health


def test_dockerfile_commands_exist_in_the_installed_package():
    """The containers run `qiyue ...`: the console script pip installs from pyproject."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["qiyue"] == "shared.cli:main"
    (default,) = instructions("CMD")
    assert json.loads(default) == ["qiyue", "--help"]   # no role given: say which there are


def test_docker_build_context_holds_what_the_dockerfile_copies_and_no_secret():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]

    def ignored(path: str) -> bool:
        result = False
        for pattern in patterns:
            negate, pattern = pattern.startswith("!"), pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern + "/*") or \
                    (pattern.startswith("**/") and fnmatch.fnmatch(Path(path).name, pattern[3:])):
                result = not negate
        return result

    copied = [args.split()[0] for args in instructions("COPY") if not args.startswith("--from")]
    assert copied and not [c for c in copied if ignored(c)]
    for secret in (".env", "var/dev-jwt-secret", ".venv/bin/python", ".git/config", "shared/__pycache__/x.pyc"):
        assert ignored(secret), secret


def test_the_installed_package_carries_every_data_file_the_services_read():
    """`pip install .` in the image installs only .py files and pyproject's package-data patterns."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["*"]
    missing = []
    for top in ("shared", "services"):
        for path in (ROOT / top).rglob("*"):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix in (".py", ".pyc", ".md"):
                continue
            if not any(fnmatch.fnmatch(path.name, p) for p in patterns):
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"not installed into the image (add to package-data): {missing}"


# --- Kubernetes ------------------------------------------------------------------------------

def test_k8s_manifests_are_namespaced_and_use_stable_api_versions(k8s):
    versions = {"Namespace": "v1", "ConfigMap": "v1", "Secret": "v1", "Service": "v1", "Job": "batch/v1",
                "Deployment": "apps/v1", "HorizontalPodAutoscaler": "autoscaling/v2",
                "PodDisruptionBudget": "policy/v1"}
    for doc in k8s:
        assert doc["apiVersion"] == versions[doc["kind"]], doc["metadata"]["name"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "qiyue"


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_service_has_a_deployment_with_probes_resources_and_its_settings(k8s, service):
    deployment, port = find(k8s, "Deployment", service), registry.ports()[service]
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    container = container_of(deployment)
    assert container["command"] == ["qiyue", "serve", service, "--host", "0.0.0.0"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert list(named.values()) == [port]

    def probe(kind: str) -> tuple[str, int]:
        get = container[kind]["httpGet"]
        return get["path"], named.get(get["port"], get["port"])

    assert probe("readinessProbe") == ("/readyz", port)
    assert probe("livenessProbe") == ("/healthz", port)
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    assert parses(container["command"][1:])
    assert {"configMapRef": {"name": "qiyue-config"}} in container["envFrom"]
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    required = {name for name, ref in secrets.items() if not ref.get("optional")}
    assert required == {f"QIYUE_{service.upper()}_DATABASE_URL", "QIYUE_JWT_SECRET"}
    mail = {"QIYUE_SMTP_USERNAME", "QIYUE_SMTP_PASSWORD"} if service == "notifications" else set()
    assert set(secrets) - required == mail, "only notifications logs in to the mail relay"
    assert all(ref["name"] == "qiyue-secrets" for ref in secrets.values())
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True and str(security["runAsUser"]) == image_uid()


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_service_has_a_service_and_a_cpu_autoscaler(k8s, service):
    svc, port = find(k8s, "Service", service), registry.ports()[service]
    assert svc["spec"]["selector"] == find(k8s, "Deployment", service)["spec"]["selector"]["matchLabels"]
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(port, "http")]
    hpa = find(k8s, "HorizontalPodAutoscaler", service)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    partitions = int(find(k8s, "ConfigMap", "qiyue-config")["data"]["QIYUE_KAFKA_PARTITIONS"])
    assert hpa["spec"]["maxReplicas"] <= partitions, "a consumer beyond the partition count gets no work"
    assert find(k8s, "PodDisruptionBudget", service)["spec"]["minAvailable"] >= 1


def test_k8s_migration_job_runs_qiyue_migrate_with_every_database(k8s):
    job = find(k8s, "Job", "qiyue-migrate")
    container = container_of(job)
    assert container["command"] == ["qiyue", "migrate"] and parses(container["command"][1:])
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert {"configMapRef": {"name": "qiyue-config"}} in container["envFrom"]
    urls = {e["name"] for e in container["env"] if e["valueFrom"]["secretKeyRef"]["name"] == "qiyue-secrets"}
    assert urls == {f"QIYUE_{s.upper()}_DATABASE_URL" for s in SERVICES}
    assert container["image"] == container_of(find(k8s, "Deployment", "contracts"))["image"]


def test_k8s_topic_job_takes_partitions_and_prefix_from_the_services_config(k8s):
    container = container_of(find(k8s, "Job", "qiyue-kafka-topics"))
    assert container["image"].startswith("apache/kafka:")
    assert container["command"] == ["/bin/bash", "/deploy/kafka-topics.sh"]
    refs = {e["name"]: e["valueFrom"]["configMapKeyRef"]["key"] for e in container["env"] if "valueFrom" in e}
    assert refs == {"KAFKA_BOOTSTRAP": "QIYUE_KAFKA_BOOTSTRAP", "PARTITIONS": "QIYUE_KAFKA_PARTITIONS",
                    "TOPIC_PREFIX": "QIYUE_TOPIC_PREFIX"}
    values = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert int(values["REPLICATION_FACTOR"]) >= 3 and int(values["MIN_INSYNC_REPLICAS"]) >= 2


def test_k8s_configmap_is_production_and_holds_no_secret(k8s):
    data = find(k8s, "ConfigMap", "qiyue-config")["data"]
    assert data["QIYUE_ENVIRONMENT"] == "production" and data["QIYUE_MIGRATE_ON_START"] == "false"
    assert not [k for k in data if re.search(r"SECRET|PASSWORD|DATABASE_URL", k)]


def test_k8s_secret_is_a_template_of_placeholders_kept_out_of_kubectl_apply(k8s):
    secret = find(k8s, "Secret", "qiyue-secrets")
    assert "data" not in secret, "no base64 values: stringData placeholders only"
    assert secret["stringData"] and all(re.search(r"<[a-z0-9 ,-]+>", v) for v in secret["stringData"].values())
    for value in secret["stringData"].values():  # nothing that could pass for a real key
        assert not re.search(r"[A-Za-z0-9+/=_-]{24,}", re.sub(r"<[^>]*>", "", value))
    assert SECRET_TEMPLATE.parent != K8S  # `kubectl apply -f deploy/k8s/` never overwrites the real Secret
    referenced = {e["valueFrom"]["secretKeyRef"]["key"] for d in k8s if d["kind"] in ("Deployment", "Job")
                  for e in container_of(d).get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    assert referenced == set(secret["stringData"])


def test_k8s_references_only_real_settings(k8s):
    names = set(find(k8s, "ConfigMap", "qiyue-config")["data"]) | set(find(k8s, "Secret", "qiyue-secrets")["stringData"])
    for doc in k8s:
        if doc["kind"] in ("Deployment", "Job") and not doc["metadata"]["name"].endswith("kafka-topics"):
            names |= {e["name"] for e in container_of(doc).get("env", [])}
    commented = set(re.findall(r"#\s*(QIYUE_\w+):", (K8S / "10-configmap.yaml").read_text()))
    assert names and commented
    assert not {n for n in names | commented if not is_setting(n)}


def test_k8s_kustomization_applies_every_manifest_but_the_secret_and_names_the_image_once(k8s):
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == "qiyue"
    assert kustomization["resources"] == [p.name for p in k8s_manifests()]
    (image,) = kustomization["images"]
    qiyue = {container_of(d)["image"] for d in k8s if d["kind"] in ("Deployment", "Job")
             and not container_of(d)["image"].startswith("apache/kafka:")}
    assert {ref.split(":")[0] for ref in qiyue} == {image["name"]}


def test_k8s_setup_step_holds_what_the_services_need_first(k8s):
    """`kubectl apply -k deploy/k8s/ -l app.kubernetes.io/component=setup` (README.md, Deployment)."""
    setup = {(d["kind"], d["metadata"]["name"]) for d in k8s
             if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "setup"}
    assert setup == {("ConfigMap", "qiyue-config"), ("Job", "qiyue-kafka-topics"), ("Job", "qiyue-migrate")}
    assert "-l app.kubernetes.io/component=setup" in readme_section("Deployment")


# --- README.md: its "Settings" and "Deployment" sections --------------------------------------

def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"^## {title}\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def test_readme_settings_document_every_setting_of_every_service_and_name_no_other():
    text = readme_section("Settings")
    mentioned = set(re.findall(r"QIYUE_[A-Z0-9_]*[A-Z0-9]", text))
    for service, fields in FIELDS.items():
        undocumented = {f for f in fields if not {f"QIYUE_{f}", f"QIYUE_{service.upper()}_{f}"} & mentioned}
        assert not undocumented, f"README.md, Settings, does not describe {service}'s {sorted(undocumented)}"
    assert NON_FIELD_VARIABLES <= mentioned
    assert not {m for m in mentioned if not is_setting(m)}


def test_readme_deployment_explains_every_variable_compose_takes_from_env():
    text = readme_section("Deployment")
    assert not {v for v in compose_variables() if v not in text}
    assert not {m for m in re.findall(r"QIYUE_[A-Z0-9_]*[A-Z0-9]", text) if not is_setting(m)}
