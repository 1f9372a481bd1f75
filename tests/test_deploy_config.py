"""The deployment files agree with the code: every SNAPFIND_* name they use is a real setting,
.env.example documents every setting, and compose / cloud-init keep their promises
(restart policy, limits, volumes, a one-shot index build, a service started at boot).

A misspelt variable in a compose or env file is silently ignored by pydantic-settings
(`extra="ignore"`), so only a test like this one notices it.
"""

import re
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings

from bot.settings import BotSettings
from retrieval.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
CLOUD_INIT = DEPLOY / "cloud-init.yaml"
DOCKERFILE = ROOT / "Dockerfile"

NAME = re.compile(r"\bSNAPFIND_[A-Z0-9_]+\b")
ASSIGNMENT = re.compile(r"^\s*(?:#\s*)?([A-Z][A-Z0-9_]*)=", re.MULTILINE)
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
INTERPOLATED = re.compile(r"\$\{[^}]*\}")  # `${CATALOG_DIR:-../data}`: its colons are not a mount's


def env_names(settings_class: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads (prefix + field name, upper case)."""
    prefix = settings_class.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in settings_class.model_fields}


SETTINGS = env_names(Settings) | env_names(BotSettings)


def assigned(text: str) -> set[str]:
    """Names given a value in env-file text, commented-out examples included."""
    return set(ASSIGNMENT.findall(text))


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def cloud_init() -> dict:
    return yaml.safe_load(CLOUD_INIT.read_text())


def cloud_file(path: str) -> str:
    [entry] = [f for f in cloud_init()["write_files"] if f["path"] == path]
    return entry["content"]


def test_the_settings_are_read_with_the_snapfind_prefix():
    assert "SNAPFIND_BACKBONE" in SETTINGS
    assert "SNAPFIND_BOT_TOKEN" in SETTINGS
    assert "SNAPFIND_NOT_A_SETTING" not in SETTINGS


@pytest.mark.parametrize(
    "path", [COMPOSE, ENV_EXAMPLE, CLOUD_INIT, DOCKERFILE], ids=lambda p: p.name
)
def test_every_snapfind_name_in_a_deployment_file_is_a_setting(path: Path):
    unknown = set(NAME.findall(path.read_text())) - SETTINGS
    assert not unknown, f"{path.name} names settings that do not exist: {sorted(unknown)}"


def test_env_example_documents_every_setting():
    missing = SETTINGS - assigned(ENV_EXAMPLE.read_text())
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_documents_every_compose_variable():
    used = set(INTERPOLATION.findall(COMPOSE.read_text())) | {"COMPOSE_PROFILES"}
    missing = used - assigned(ENV_EXAMPLE.read_text())
    assert not missing, f"compose.yaml reads {sorted(missing)}, which .env.example does not explain"


def test_env_example_sets_no_optional_setting_to_an_empty_value():
    """An empty value is a value: `SNAPFIND_INPUT_SIZE=` fails validation, so leave it commented."""
    active = re.findall(r"^(SNAPFIND_[A-Z0-9_]+)=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    empty = {name for name, value in active if not value.strip()} - {"SNAPFIND_BOT_TOKEN"}
    assert not empty, f"set these or comment them out: {sorted(empty)}"


def test_env_example_shows_the_values_the_image_sets():
    """Its commented lines show defaults; where the image sets a setting, uncommenting the line
    must keep the image's value (`data/runtime` would lose the model exported into it)."""
    image = dict(re.findall(r"\b(SNAPFIND_[A-Z0-9_]+)=(\S+)", DOCKERFILE.read_text()))
    shown = dict(re.findall(r"^#\s*(SNAPFIND_[A-Z0-9_]+)=(.*)$", ENV_EXAMPLE.read_text(), re.M))
    differ = {
        name: (shown.get(name), value) for name, value in image.items() if shown.get(name) != value
    }
    assert not differ, f".env.example shows other values than the image sets: {differ}"


def test_cloud_init_env_file_uses_only_documented_names():
    names = assigned(cloud_file("/etc/snapfind/snapfind.env"))
    undocumented = names - assigned(ENV_EXAMPLE.read_text())
    assert not undocumented, f"cloud-init writes {sorted(undocumented)}, unknown to .env.example"
    assert "SNAPFIND_BOT_TOKEN" in names


def dockerfile_volumes() -> set[str]:
    [line] = [x for x in DOCKERFILE.read_text().splitlines() if x.startswith("VOLUME ")]
    return set(yaml.safe_load(line.removeprefix("VOLUME ")))


def mounts(service: dict) -> dict[str, str]:
    """Container path → volume or host path, from compose's short volume syntax."""
    plain = (INTERPOLATED.sub("$VAR", volume) for volume in service.get("volumes", []))
    pairs = (volume.split(":")[:2] for volume in plain)
    return {target: source for source, target in pairs}


def test_bot_service_restarts_with_limits_env_file_and_the_index():
    bot = compose()["services"]["bot"]
    assert bot["restart"] == "unless-stopped"
    assert bot["env_file"] == ".env"
    assert bot["mem_limit"]
    assert bot["command"] == ["snapfind", "bot"]
    assert bot["healthcheck"]["test"] == ["CMD", "snapfind", "health", "--heartbeat"]
    assert "/data/index" in mounts(bot)
    assert "/data/index:ro" in " ".join(bot["volumes"]), "only index-build writes the index"


def test_index_build_is_a_one_shot_writer_of_the_same_index_volume():
    services = compose()["services"]
    build = services["index-build"]
    assert build["profiles"], "must not start with a plain `docker compose up`"
    assert build["restart"] == "no"
    assert build["entrypoint"][:3] == ["snapfind", "index", "build"]
    assert build["mem_limit"]
    targets = mounts(build)
    assert set(targets) == dockerfile_volumes() == {"/data/index", "/data/catalog"}
    assert targets["/data/index"] == mounts(services["bot"])["/data/index"]
    # .env may name a manifest inside the mounted folder; by default the folder itself
    assert build["environment"]["SNAPFIND_CATALOG"] == "${SNAPFIND_CATALOG:-/data/catalog}"
    assert set(compose()["volumes"]) >= {"index"}


def test_caddy_is_optional_and_forwards_to_the_bot_webhook_port():
    services = compose()["services"]
    caddy = services["caddy"]
    assert caddy["profiles"] == ["webhook"]
    assert caddy["environment"]["BOT_PORT"] == "${SNAPFIND_WEBHOOK_PORT:-8443}"
    assert services["bot"]["environment"]["SNAPFIND_WEBHOOK_LISTEN"] == "0.0.0.0"
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert "dynamic a bot {$BOT_PORT}" in caddyfile  # every replica of `bot`, refreshed


def test_redis_is_bounded_persisted_and_shared_by_the_bot_replicas():
    services = compose()["services"]
    redis, bot = services["redis"], services["bot"]
    command = " ".join(redis["command"])
    assert "--maxmemory-policy allkeys-lru" in command and "--maxmemory $" in command
    assert redis["mem_limit"] and mounts(redis)["/data"] == "redis-data"
    assert bot["environment"]["SNAPFIND_REDIS_URL"].endswith("redis://redis:6379/0}")
    assert "container_name" not in bot and "ports" not in bot, "--scale bot=N needs neither"


def test_compose_bakes_the_configured_backbone():
    args = compose()["x-image"]["build"]["args"]
    assert args["BAKE_WEIGHTS"] == "${SNAPFIND_BACKBONE:-efficientnetb7}"
    assert "ARG BAKE_WEIGHTS" in DOCKERFILE.read_text()


def test_no_variable_is_required_by_a_service_behind_a_profile():
    """Compose interpolates the whole file before it applies profiles (docker/compose#11977):
    a `${VAR:?}` in the milvus services stopped `docker compose build` and `up` of every bot
    whose .env leaves the Milvus password empty, as .env.example and cloud-init do."""
    services = compose()["services"]
    offenders = {
        name: required_variables(service)
        for name, service in services.items()
        if service.get("profiles") and required_variables(service)
    }
    assert not offenders, f"required variables in optional services: {offenders}"


def required_variables(value: object) -> list[str]:
    """`${VAR:?...}` / `${VAR?...}` anywhere in a loaded compose value."""
    if isinstance(value, dict):
        return [v for item in value.values() for v in required_variables(item)]
    if isinstance(value, list):
        return [v for item in value for v in required_variables(item)]
    return re.findall(r"\$\{(\w+):?\?", value) if isinstance(value, str) else []


def test_compose_exports_the_configured_input_size():
    """The serving image has no TensorFlow: it runs only the export its build made, so a
    SNAPFIND_INPUT_SIZE in .env must reach that export or nothing in the image can serve it."""
    args = compose()["x-image"]["build"]["args"]
    assert args["EXPORT_INPUT_SIZE"] == "${SNAPFIND_INPUT_SIZE:-}"
    dockerfile = DOCKERFILE.read_text()
    export = dockerfile[dockerfile.index("AS export") :].split("FROM ")[0]
    assert "ARG EXPORT_INPUT_SIZE" in export
    assert '${EXPORT_INPUT_SIZE:+--input-size "$EXPORT_INPUT_SIZE"}' in export


def test_cloud_init_installs_docker_and_starts_snapfind_at_every_boot():
    text = CLOUD_INIT.read_text()
    assert text.startswith("#cloud-config\n")
    install = cloud_file("/usr/local/sbin/snapfind-install")
    for step in (
        "docker-compose-plugin",
        "ln -sfn /etc/snapfind/snapfind.env /opt/snapfind/deploy/.env",
        "docker compose build",
        "docker compose run --rm index-build",
        "systemctl enable --now snapfind.service",
    ):
        assert step in install
    unit = cloud_file("/etc/systemd/system/snapfind.service")
    assert "WantedBy=multi-user.target" in unit
    assert "WorkingDirectory=/opt/snapfind/deploy" in unit
    assert cloud_init()["runcmd"] == [["/usr/local/sbin/snapfind-install"]]
    modes = {f["path"]: f["permissions"] for f in cloud_init()["write_files"]}
    assert modes["/etc/snapfind/snapfind.env"] == "0600", "it holds the bot token"


def test_the_image_never_receives_secrets_or_local_state():
    rules = [r for r in (ROOT / ".dockerignore").read_text().splitlines() if r and r[0] != "#"]
    assert rules[0] == "*", "an allow-list: everything is excluded first"
    allowed = [r for r in rules if r.startswith("!")]
    assert not [r for r in allowed if ".env" in r or ".venv" in r or "data" in r]
