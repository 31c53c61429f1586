"""Static checks of the deployment files (Docker cannot run here).

Compose and the Dockerfile must start real `clipper` commands with real options, name only
real settings, and install system packages through the one script CI also uses; the
configuration table in docs/operations.md must list every setting with its true default.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from pydantic import SecretStr

from clipper.cli import main
from clipper.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
README = ROOT / "README.md"
OPERATIONS = ROOT / "docs" / "operations.md"
MARKDOWN = [README, *sorted((ROOT / "docs").glob("*.md"))]
INSTALL_SCRIPT = "scripts/install-system-deps.sh"
VARIABLE = re.compile(r"\bCLIPPER_[A-Z0-9_]+\b")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _clipper_services() -> dict[str, dict[str, Any]]:
    """Compose services that run the Clipper image (built from this repository)."""
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return {
        name: s
        for name, s in services.items()
        if s.get("build") or s.get("image", "").startswith("clipper")
    }


def _dockerfile_instructions(keyword: str) -> list[str]:
    """Arguments of every `keyword` instruction, with backslash continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [
        line.split(None, 1)[1]
        for line in text.splitlines()
        if line.upper().startswith(keyword + " ")
    ]


def _assert_real_command(argv: list[str]) -> None:
    """`argv` is `clipper <subcommand> [options]` and click accepts the options."""
    assert argv[0] == "clipper", argv
    name, args = argv[1], argv[2:]
    assert name in main.commands, f"`clipper {name}` does not exist (have {sorted(main.commands)})"
    command = main.commands[name]
    # make_context parses and validates without running the command.
    with click.Context(main, info_name="clipper") as parent:
        command.make_context(name, list(args), parent=parent)


def test_compose_services_run_real_clipper_commands() -> None:
    services = _clipper_services()
    assert {"api", "worker"} <= set(services)
    for name, service in services.items():
        command = service["command"]
        argv = shlex.split(command) if isinstance(command, str) else command
        try:
            _assert_real_command(argv)
        except click.UsageError as exc:
            pytest.fail(f"compose service {name}: {exc.format_message()}")


def test_dockerfile_default_command_is_the_api() -> None:
    (cmd,) = _dockerfile_instructions("CMD")
    argv = json.loads(cmd)
    _assert_real_command(argv)
    assert argv[:2] == ["clipper", "api"]
    assert "0.0.0.0" in argv and "8000" in argv


def test_worker_and_api_share_one_image() -> None:
    services = _clipper_services()
    assert services["api"]["image"] == services["worker"]["image"]
    assert "build" in services["api"]
    # Scaling with --scale needs no fixed container name or host port on workers.
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]


def _variables_in(text: str) -> set[str]:
    return set(VARIABLE.findall(text))


@pytest.mark.parametrize(
    "path",
    [COMPOSE, DOCKERFILE, ROOT / "deploy" / "env.example", *MARKDOWN],
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_every_clipper_variable_is_a_real_setting(path: Path) -> None:
    fields = {f"CLIPPER_{name.upper()}" for name in Settings.model_fields}
    used = _variables_in(path.read_text())
    if path.suffix != ".md":  # a deployment file that names none is not being read right
        assert used, f"{path.name} names no CLIPPER_ variable at all"
    assert used - fields - _cli_envvars() == set(), f"{path.name} names settings that do not exist"


def _cli_envvars(group: click.Group = main) -> set[str]:
    """Environment variables the command line reads for its own options (client side)."""
    names: set[str] = set()
    for command in group.commands.values():
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            names.update([envvar] if isinstance(envvar, str) else envvar or [])
        if isinstance(command, click.Group):
            names |= _cli_envvars(command)
    return names


def test_cli_envvars_do_not_shadow_settings() -> None:
    # A client option reading CLIPPER_X while the service reads setting X would confuse both.
    fields = {f"CLIPPER_{name.upper()}" for name in Settings.model_fields}
    assert _cli_envvars() & fields == set()


def test_production_compose_sets_every_secret_without_defaults() -> None:
    env = _clipper_services()["api"]["environment"]
    assert env["CLIPPER_ENV"] == "production"
    assert env["CLIPPER_STORAGE"] == "s3"
    assert env["CLIPPER_S3_ENDPOINT"] == "minio:9000"
    for name in (
        "CLIPPER_API_KEYS",
        "CLIPPER_ADMIN_KEYS",
        "CLIPPER_LINK_SECRET",
        "CLIPPER_S3_SECRET_KEY",
    ):
        # ${VAR:?message}: compose refuses to start without it; no placeholder can slip through.
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", env[name]), (name, env[name])


def test_redis_is_persistent_and_never_evicts() -> None:
    redis = _compose()["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_minio_has_console_volume_health_and_buckets() -> None:
    services = _compose()["services"]
    minio = services["minio"]
    assert minio["command"][:2] == ["server", "/data"] and "--console-address" in minio["command"]
    assert "healthcheck" in minio and any(v.endswith(":/data") for v in minio["volumes"])
    buckets = " ".join(services["buckets"]["command"])
    assert "mc mb --ignore-existing" in buckets
    env = services["buckets"]["environment"]
    assert "clipper-sources" in env["SOURCE_BUCKET"] and "clipper-clips" in env["CLIP_BUCKET"]
    assert Settings.model_fields["source_bucket"].default == "clipper-sources"
    assert Settings.model_fields["clip_bucket"].default == "clipper-clips"


def test_dockerfile_shape() -> None:
    froms = _dockerfile_instructions("FROM")
    assert len(froms) >= 2, "multi-stage build expected"
    assert all(f.split()[0] == "python:3.11-slim-bookworm" for f in froms)
    assert any("--from=builder" in c for c in _dockerfile_instructions("COPY"))
    (user,) = _dockerfile_instructions("USER")
    assert user.strip() not in ("root", "0")
    (health,) = _dockerfile_instructions("HEALTHCHECK")
    assert "/healthz" in health and "urllib" in health and "curl" not in health


def test_image_ci_and_make_run_share_the_install_script() -> None:
    runs = " ".join(_dockerfile_instructions("RUN"))
    assert f"{INSTALL_SCRIPT} --image" in runs.replace(
        "/tmp/install-system-deps.sh", INSTALL_SCRIPT
    )
    assert any(INSTALL_SCRIPT in c for c in _dockerfile_instructions("COPY"))
    assert INSTALL_SCRIPT in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert f"bash {INSTALL_SCRIPT}" in makefile
    assert re.search(r"^run:.*system-deps", makefile, re.M)
    assert re.search(r"^\t\$\(VENV\)/bin/clipper up\b", makefile, re.M)


def _running_section() -> str:
    """The run/configure/deploy/scale part of docs/operations.md, between its markers."""
    text = OPERATIONS.read_text()
    start, end = "<!-- section:running -->", "<!-- /section:running -->"
    assert start in text and end in text
    return text.split(start, 1)[1].split(end, 1)[0]


def _config_table() -> dict[str, str]:
    """{setting name: default cell} from the configuration table in docs/operations.md."""
    rows = re.findall(
        r"^\|\s*`CLIPPER_([A-Z0-9_]+)`\s*\|\s*([^|]*?)\s*\|", _running_section(), re.M
    )
    return {name.lower(): cell for name, cell in rows}


def _default_as_text(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_docs_table_lists_every_setting_with_its_real_default() -> None:
    table = _config_table()
    assert set(table) == set(Settings.model_fields), "docs/operations.md table and Settings differ"
    for name, field in Settings.model_fields.items():
        expected = _default_as_text(field.default)
        assert table[name].strip("`") == expected, (
            f"CLIPPER_{name.upper()}: {table[name]} != {expected}"
        )


def test_readme_shows_the_two_commands() -> None:
    head = README.read_text().split("<!--", 1)[0]
    assert "make run" in head and "make test" in head


def test_docs_show_compose_and_scaling() -> None:
    section = _running_section()
    assert "docker compose up" in section and "--scale worker=" in section


def test_dockerignore_keeps_what_the_image_copies() -> None:
    import fnmatch

    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for copy in _dockerfile_instructions("COPY"):
        if "--from=" in copy:
            continue
        sources += copy.split()[:-1]  # the last word is the destination
    assert {"pyproject.toml", "clipper", "workers", "api", INSTALL_SCRIPT} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        hits = [p for p in patterns if fnmatch.fnmatch(source, p) or source.startswith(p + "/")]
        assert hits == [], f".dockerignore drops {source} ({hits})"


RUNTIME_LOCK = "requirements/runtime.lock"


def _lock_pins(path: Path) -> dict[str, str]:
    """{normalized name: pinned version} of a `uv pip compile` lock."""
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        requirement = line.split("#", 1)[0].split(";", 1)[0].strip()
        if requirement:
            name, _, version = requirement.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned"
            pins[canonicalize_name(name)] = version.strip()
    return pins


@pytest.mark.parametrize(
    ("lock", "extras"), [(RUNTIME_LOCK, ()), ("requirements/test.lock", ("test",))]
)
def test_locks_pin_every_declared_dependency_inside_its_range(
    lock: str, extras: tuple[str, ...]
) -> None:
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in extras:
        declared += project["optional-dependencies"][extra]
    pins = _lock_pins(ROOT / lock)
    for text in declared:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} does not pin {name}: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]} outside {requirement.specifier}: run `make lock`"
        )


def test_image_and_production_check_install_from_the_runtime_lock() -> None:
    runs = _dockerfile_instructions("RUN")
    installs = [r for r in runs if "pip install" in r]
    assert installs and all(f"-c {RUNTIME_LOCK}" in r for r in installs), installs
    assert any(RUNTIME_LOCK in c for c in _dockerfile_instructions("COPY"))
    check = (ROOT / "scripts" / "check_production_install.py").read_text()
    assert '"runtime.lock"' in check
    assert "make check-install" in (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^check-install:", (ROOT / "Makefile").read_text(), re.M)
