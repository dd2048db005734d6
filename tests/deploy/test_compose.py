"""The docker-compose stack: each file is valid, and the files agree with one another.

No Docker engine runs in CI: these tests check the files (compose, Prometheus, Alertmanager,
Grafana provisioning, replywatch config, Dockerfile), never a built image or a started stack.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import RunCli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CLUSTER = ROOT / "docker-compose.cluster.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
REPLYWATCH_TOML = ROOT / "deploy" / "replywatch.toml"
SECRETS_README = ROOT / "deploy" / "secrets" / "README.md"
ALERTMANAGER = ROOT / "alerts" / "alertmanager.example.yml"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
DATASOURCES = PROVISIONING / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = PROVISIONING / "dashboards" / "replywatch.yml"
REPLYWATCH_CONFIG = "/etc/replywatch/replywatch.toml"
SERVICES = {"replywatch", "postgres", "prometheus", "alertmanager", "grafana"}
DOCKER_COMPOSE = shutil.which("docker-compose")
PROMTOOL = shutil.which("promtool")
GIT = shutil.which("git")
needs_compose = pytest.mark.skipif(
    DOCKER_COMPOSE is None,
    reason="docker-compose missing: apt-get install docker-compose (scripts/services)",
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: apt-get install prometheus (scripts/services)"
)


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]  # type: ignore[no-any-return]


def mounts(name: str) -> dict[str, tuple[str, str]]:
    """A service's volumes in short syntax, by container path: (source, mode)."""
    found = {}
    for volume in service(name).get("volumes", []):
        source, target, *mode = volume.split(":")
        found[target] = (source, mode[0] if mode else "rw")
    return found


def bind_source(name: str, target: str) -> Path:
    """The repository path a service mounts at ``target``, read-only."""
    source, mode = mounts(name)[target]
    assert source.startswith("./"), f"{name}: {target} is not a bind mount of the repository"
    assert mode == "ro", f"{name}: {target} is mounted {mode}"
    return ROOT / source


def env_example() -> dict[str, str]:
    """The variables .env.example lists, with their values."""
    pairs = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), line
            pairs[name] = value
    return pairs


def filled_env() -> str:
    """.env.example with a dummy value for every variable, as an operator would fill it."""
    return "".join(f"{name}=dummy-{name.lower().replace('_', '-')}\n" for name in env_example())


def compose_config(project: Path, *overrides: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` on the repository's file, with .env read from ``project``."""
    # A clean environment: variables of the test run must not fill in what .env lacks.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project)}
    files = [arg for path in (COMPOSE, *overrides) for arg in ("-f", str(path))]
    return subprocess.run(
        [DOCKER_COMPOSE, *files, "--project-directory", str(project), "config"],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=60,
    )


def cmd_listen_port() -> int:
    """The port the Dockerfile's CMD makes replywatch listen on."""
    cmd = json.loads(dockerfile_instruction("CMD"))
    return int(cmd[cmd.index("--listen") + 1].rsplit(":", 1)[1])


def dockerfile_instruction(keyword: str) -> str:
    """The arguments of the last ``keyword`` instruction (continuation lines joined)."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    found = re.findall(rf"^{keyword}\s+(.+)$", text, flags=re.MULTILINE)
    assert found, f"Dockerfile has no {keyword}"
    return str(found[-1]).strip()


@needs_compose
def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    """`docker-compose config` resolves the file with a filled-in .env and passes the secrets."""
    (tmp_path / ".env").write_text(filled_env(), encoding="utf-8")
    result = compose_config(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == SERVICES
    replywatch = resolved["services"]["replywatch"]["environment"]
    # env_file .env reaches replywatch (every env: reference of deploy/replywatch.toml) ...
    for name in env_example():
        assert replywatch[name] == f"dummy-{name.lower().replace('_', '-')}", name
    # ... and the database URL carries the same password the postgres container is given.
    password = resolved["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert password == "dummy-postgres-password"
    assert f":{password}@postgres:5432/" in replywatch["REPLYWATCH_DATABASE_URL"]
    grafana = resolved["services"]["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == "dummy-grafana-admin-password"


@needs_compose
def test_the_cluster_file_turns_the_monitor_into_serve_and_workers(tmp_path: Path) -> None:
    """With docker-compose.cluster.yml on top: replywatch serves, workers poll, same secrets."""
    (tmp_path / ".env").write_text(filled_env(), encoding="utf-8")
    result = compose_config(tmp_path, CLUSTER)
    assert result.returncode == 0, result.stdout + result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == SERVICES | {"worker"}
    serve, worker = services["replywatch"], services["worker"]
    assert serve["command"][2:] == ["serve", "--listen", f"0.0.0.0:{cmd_listen_port()}"]
    assert worker["command"][2:] == ["worker"]
    assert serve["command"][:2] == worker["command"][:2] == ["--config", REPLYWATCH_CONFIG]
    # The same config file, the same secrets and the same database as the serving process.
    assert worker["environment"] == serve["environment"]
    assert [v.split(":")[1] for v in worker["volumes"]] == [REPLYWATCH_CONFIG]
    assert worker["volumes"] == serve["volumes"]
    assert worker["image"] == serve["image"]
    assert worker["healthcheck"] == {"test": ["NONE"]}  # `disable: true`, as Compose spells it
    assert "ports" not in worker
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"


@needs_compose
def test_docker_compose_refuses_an_unfilled_env(tmp_path: Path) -> None:
    """With .env.example copied unchanged (empty values), nothing starts without a password."""
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    result = compose_config(tmp_path)
    assert result.returncode != 0, result.stdout
    assert "POSTGRES_PASSWORD" in result.stderr


def test_every_service_and_its_published_ports() -> None:
    """Only replywatch's webhook port is on every interface; the others on 127.0.0.1 only."""
    services = compose()["services"]
    assert set(services) == SERVICES
    assert "version" not in compose()
    ports = {name: services[name].get("ports", []) for name in SERVICES}
    assert ports == {
        "replywatch": [f"0.0.0.0:{cmd_listen_port()}:{cmd_listen_port()}"],
        "postgres": [],
        "prometheus": ["127.0.0.1:9090:9090"],
        "alertmanager": ["127.0.0.1:9093:9093"],
        "grafana": ["127.0.0.1:3000:3000"],
    }
    assert services["replywatch"]["build"] == "."
    assert services["replywatch"]["env_file"] == ".env"
    assert services["replywatch"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]


def test_images_are_pinned() -> None:
    """Every image names a specific version, never latest or a bare name."""
    for name, spec in compose()["services"].items():
        image = spec["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and re.fullmatch(r"v?\d+(\.\d+)+", tag), f"{name}: {image}"


def test_bind_mounts_exist_in_the_repository() -> None:
    """Every ./ mount names a file or folder of the repository (Docker would make empty dirs)."""
    expected = {
        ("replywatch", "/etc/replywatch/replywatch.toml"): REPLYWATCH_TOML,
        ("prometheus", "/etc/prometheus/prometheus.yml"): PROMETHEUS,
        ("prometheus", "/etc/prometheus/rules"): ROOT / "alerts" / "rules",
        ("alertmanager", "/etc/alertmanager/alertmanager.yml"): ALERTMANAGER,
        ("grafana", "/etc/grafana/provisioning/datasources/prometheus.yml"): DATASOURCES,
        ("grafana", "/etc/grafana/provisioning/dashboards/replywatch.yml"): DASHBOARD_PROVIDERS,
        ("grafana", "/var/lib/grafana/dashboards/replywatch"): ROOT / "dashboards" / "generated",
    }
    for (name, target), path in expected.items():
        assert bind_source(name, target).resolve() == path, (name, target)
    for name in SERVICES:
        for source, _mode in mounts(name).values():
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose()["volumes"], f"{name}: undeclared volume {source}"


def test_prometheus_scrapes_replywatch_as_the_rules_expect() -> None:
    """Job `replywatch` (up{job="replywatch"} in the rules) at the port replywatch listens on."""
    config = load_yaml(PROMETHEUS)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert "replywatch" in jobs
    rules = (ROOT / "alerts" / "rules" / "connectors.yaml").read_text(encoding="utf-8")
    assert 'up{job="replywatch"}' in rules
    targets = [t for group in jobs["replywatch"]["static_configs"] for t in group["targets"]]
    assert targets == [f"replywatch:{cmd_listen_port()}"]
    toml_listen = tomllib.loads(REPLYWATCH_TOML.read_text(encoding="utf-8"))["replywatch"]
    assert toml_listen["listen"].endswith(f":{cmd_listen_port()}")
    assert jobs["replywatch"]["scrape_interval"] == "15s"
    managers = [
        t
        for manager in config["alerting"]["alertmanagers"]
        for group in manager["static_configs"]
        for t in group["targets"]
    ]
    assert managers == ["alertmanager:9093"]


def test_prometheus_loads_the_mounted_rules() -> None:
    """rule_files points into the folder docker-compose.yml mounts alerts/rules at."""
    (pattern,) = load_yaml(PROMETHEUS)["rule_files"]
    folder, _, glob = pattern.rpartition("/")
    assert bind_source("prometheus", folder) == ROOT / "./alerts/rules"
    assert sorted((ROOT / "alerts" / "rules").glob(glob))


@needs_promtool
def test_promtool_checks_the_config_and_its_rules(tmp_path: Path) -> None:
    """`promtool check config` accepts the config and every rule file it loads."""
    # promtool resolves rule_files on this machine, where the container path
    # /etc/prometheus/rules does not exist, and a glob matching nothing is no error: the rules
    # would silently go unchecked. So a copy points rule_files at the folder docker-compose.yml
    # mounts there (alerts/rules); everything else is checked as written.
    config = load_yaml(PROMETHEUS)
    (pattern,) = config["rule_files"]
    folder, _, glob = pattern.rpartition("/")
    rules_dir = bind_source("prometheus", folder)
    config["rule_files"] = [str(rules_dir.resolve() / glob)]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(copy)],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rule_files = sorted(rules_dir.resolve().glob(glob))
    assert rule_files
    assert f"SUCCESS: {len(rule_files)} rule files found" in output, output
    # Each file is then checked like `promtool check rules` (which tests/alerts also runs).
    for path in rule_files:
        assert re.search(rf"Checking {re.escape(str(path))}\n\s+SUCCESS: \d+ rules found", output)


def test_alertmanager_gets_the_secret_files_its_config_reads() -> None:
    """deploy/secrets is mounted where every *_file of the example config points."""
    # `amtool check-config` on the example runs in tests/alerts/test_alertmanager_config.py.
    files: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith("_file") and isinstance(value, str):
                    files.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(load_yaml(ALERTMANAGER))
    assert files
    folders = {str(Path(f).parent) for f in files}
    assert len(folders) == 1, folders
    (folder,) = folders
    assert bind_source("alertmanager", folder) == ROOT / "./deploy/secrets"
    readme = SECRETS_README.read_text(encoding="utf-8")
    for name in {Path(f).name for f in files}:
        assert f"`{name}`" in readme, f"deploy/secrets/README.md does not explain {name}"


def test_every_variable_is_listed_in_env_example() -> None:
    """Each env:NAME of deploy/replywatch.toml and ${NAME} of the compose file, and no other."""
    listed = env_example()
    from_toml = set(re.findall(r'"env:([A-Za-z_][A-Za-z0-9_]*)"', REPLYWATCH_TOML.read_text()))
    from_compose = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE.read_text()))
    assert from_toml >= {"SHOP_FB_TOKEN", "META_APP_SECRET", "META_VERIFY_TOKEN"}
    assert from_compose >= {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
    assert set(listed) == from_toml | from_compose
    # An example holds no secret, not even a weak default someone might keep.
    assert all(value == "" for value in listed.values()), listed


@pytest.mark.skipif(
    GIT is None or not (ROOT / ".git").exists(), reason="git missing or not a git checkout"
)
def test_secrets_stay_out_of_git() -> None:
    """.env and deploy/secrets/* are ignored; their documentation is not."""

    def ignored(path: str) -> bool:
        result = subprocess.run([GIT, "-C", str(ROOT), "check-ignore", "-q", path], check=False)  # type: ignore[list-item]
        assert result.returncode in (0, 1), path
        return result.returncode == 0

    assert ignored(".env")
    assert ignored("deploy/secrets/slack-webhook-url")
    assert not ignored(".env.example")
    assert not ignored("deploy/secrets/README.md")


def test_replywatch_config_passes_check_config(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/replywatch.toml is valid and every secret resolves once .env is filled in."""
    for name in env_example():
        monkeypatch.delenv(name, raising=False)
    missing = run_cli("--config", str(REPLYWATCH_TOML), "check-config")
    assert missing.code == 2 and "SHOP_FB_TOKEN is not set" in missing.err
    for line in filled_env().splitlines():
        name, _, value = line.partition("=")
        monkeypatch.setenv(name, value)
    result = run_cli("--config", str(REPLYWATCH_TOML), "check-config")
    assert result.code == 0, result.err
    assert "1 account(s)" in result.out


def test_replywatch_config_matches_the_stack() -> None:
    """Database without a password (compose supplies it), Alertmanager and Meta webhook set."""
    config = tomllib.loads(REPLYWATCH_TOML.read_text(encoding="utf-8"))
    database = config["replywatch"]["database"]
    assert database == "postgresql://replywatch@postgres:5432/replywatch"
    url = service("replywatch")["environment"]["REPLYWATCH_DATABASE_URL"]
    user, _, rest = url.removeprefix("postgresql://").partition(":")
    assert url.startswith("postgresql://") and user == "replywatch"
    assert rest.endswith("@postgres:5432/replywatch")
    postgres = service("postgres")["environment"]
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]) == ("replywatch", "replywatch")
    assert config["alerts"]["alertmanager"]["url"] == "http://alertmanager:9093"
    assert set(config["webhooks"]["meta"]["secrets"]) == {"app_secret", "verify_token"}


def test_dockerfile_runs_replywatch_unprivileged_with_a_health_check() -> None:
    """Non-editable install, non-root user, the mounted config, /healthz on the listen port."""
    assert dockerfile_instruction("FROM") == "python:3.11-slim"
    install = dockerfile_instruction("RUN pip install")
    assert '".[postgres]"' in install and " -e " not in install
    user = dockerfile_instruction("USER")
    assert user.split(":")[0] not in ("root", "0")
    assert json.loads(dockerfile_instruction("ENTRYPOINT")) == ["replywatch"]
    cmd = json.loads(dockerfile_instruction("CMD"))
    config_path = cmd[cmd.index("--config") + 1]
    assert bind_source("replywatch", config_path) == ROOT / "./deploy/replywatch.toml"
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    assert f"ENV REPLYWATCH_CONFIG={config_path}" in lines
    assert cmd[-3:] == ["run", "--listen", f"0.0.0.0:{cmd_listen_port()}"]
    assert dockerfile_instruction("EXPOSE") == str(cmd_listen_port())
    health = dockerfile_instruction("HEALTHCHECK")
    assert f"http://127.0.0.1:{cmd_listen_port()}/healthz" in health and "urllib" in health
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", ".env", "deploy", "*.db"} <= set(ignored)


def test_grafana_datasource_is_the_stack_prometheus() -> None:
    """One default Prometheus datasource, uid `prometheus`, at the compose service."""
    (source,) = load_yaml(DATASOURCES)["datasources"]
    assert source["uid"] == "prometheus" and source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    scrape = load_yaml(PROMETHEUS)["global"]["scrape_interval"]
    assert source["jsonData"]["timeInterval"] == scrape


def test_grafana_loads_the_mounted_dashboards() -> None:
    """The file provider reads the folder dashboards/generated is mounted at."""
    (provider,) = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert provider["type"] == "file" and provider["folder"] == "replywatch"
    path = provider["options"]["path"]
    assert bind_source("grafana", path) == ROOT / "./dashboards/generated"


def test_generated_dashboards_use_the_provisioned_datasource() -> None:
    """Every datasource reference is the import input, resolved to the provisioned type."""
    (source,) = load_yaml(DATASOURCES)["datasources"]
    boards = sorted((ROOT / "dashboards" / "generated").glob("*.json"))
    assert boards, "dashboards/generated has no dashboard: run `replywatch dashboards build`"
    refs: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "datasource" in node:
                refs.append(node["datasource"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for board in boards:
        dashboard = json.loads(board.read_text(encoding="utf-8"))
        walk(dashboard)
        # Import asks for a datasource of the provisioned type (Grafana's export for sharing);
        # provisioned or pushed, the DS_PROMETHEUS variable resolves to the default one.
        (wanted,) = dashboard["__inputs"]
        assert wanted["name"] == "DS_PROMETHEUS" and wanted["pluginId"] == source["type"]
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["DS_PROMETHEUS"]["type"] == "datasource"
        assert variables["DS_PROMETHEUS"]["query"] == source["type"]
    assert refs
    for ref in refs:
        if ref == "${DS_PROMETHEUS}":
            continue  # the variable itself (a datasource variable names the placeholder)
        assert ref == {"type": source["type"], "uid": "${DS_PROMETHEUS}"}, ref
