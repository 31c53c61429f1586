"""`clipper up`: the whole service on embedded defaults, in one command (what `make run` runs)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import click
import httpx
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from clipper.cli.options import option_group
from clipper.cli.private_redis import PrivateRedis, load_password
from clipper.cli.sample import SAMPLE_KEY, SAMPLE_TIMECODE, SampleSpec, generate_sample
from clipper.cli.supervise import (
    Child,
    Supervisor,
    free_port,
    lock_dir,
    port_is_free,
    redis_server_argv,
)
from clipper.errors import ClipperError, NotFound
from clipper.logs import redact
from clipper.settings import Settings

#: Port of the private Redis; a system Redis usually holds 6379.
EMBEDDED_REDIS_PORT = 6390

#: How long the API and Redis get to answer after they start.
STARTUP_TIMEOUT_SECONDS = 60.0

#: Settings that, when given without CLIPPER_STORAGE, make `clipper up` use S3.
S3_CONNECTION_FIELDS = frozenset({"s3_endpoint", "s3_access_key", "s3_secret_key"})

#: Prefix of the one machine-readable line printed once everything answers (tests parse it).
READY_MARKER = "clipper-up ready"

console = Console(soft_wrap=True, highlight=False)


def _child_overrides(settings: Settings, host: str, port: int) -> dict[str, str]:
    """Settings the children need but the user left at their defaults: all under state_dir."""
    state_dir = settings.state_dir.resolve()
    given = settings.model_fields_set
    overrides = {"state_dir": str(state_dir)}
    if "storage" not in given and given & S3_CONNECTION_FIELDS:
        overrides["storage"] = "s3"  # S3 settings given: the user means S3
    if "local_storage_dir" not in given:
        overrides["local_storage_dir"] = str(state_dir / "storage")
    if "work_dir" not in given:
        overrides["work_dir"] = str(state_dir / "work")
    if "public_base_url" not in given:
        overrides["public_base_url"] = f"http://{_connect_host(host)}:{port}"
    if "redis_url" not in given:
        redis_port = free_port(preferred=EMBEDDED_REDIS_PORT)
        private = PrivateRedis(state_dir, redis_port, load_password(state_dir))
        overrides["redis_url"] = private.url
    return overrides


def _connect_host(host: str) -> str:
    """Where a local client reaches a server bound to `host`."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 (compared, not bound)


def _redis_answers(url: str) -> bool:
    import redis  # the composition root may import the edges; the core may not

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _api_answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=1.0).status_code < 500
    except httpx.HTTPError:
        return False


def _ensure_sample(settings: Settings, spec: SampleSpec, cancel: threading.Event) -> str:
    """Put the generated sample into the library unless it is already there."""
    from clipper.storage import open_storage

    storage = open_storage(settings)
    storage.ensure_buckets()
    try:
        storage.stat_source(SAMPLE_KEY)
        return f"{SAMPLE_KEY} (already in the library)"
    except NotFound:
        pass
    console.print("[dim]generating the sample video (first run only)…[/]")
    path = settings.state_dir / "sample" / Path(SAMPLE_KEY).name
    generate_sample(path, spec, settings.ffmpeg_path, cancel=cancel)
    try:
        storage.put_source(SAMPLE_KEY, path)
    finally:
        path.unlink(missing_ok=True)
    return f"{SAMPLE_KEY} (generated: {spec.seconds:g} s {spec.width}x{spec.height})"


def _remove_stale_work(work_dir: Path) -> None:
    """Scratch folders of jobs killed mid-cut (a SIGKILLed work-horse cannot clean up); no
    worker of ours runs yet, so none of them is in use."""
    stale = [p for p in work_dir.glob("clipper-*") if p.is_dir()] if work_dir.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    if stale:
        console.print(f"[dim]removed {len(stale)} stale work folder(s) from {work_dir}[/]")


def _clip_request(spec: SampleSpec) -> dict[str, Any]:
    """A clip of the sample named by SMPTE timecode (minute 0 drops no frames: ;00 is exact)."""
    start = min(10, int(spec.seconds / 3))
    end = min(15, start + max(1, int(spec.seconds / 6)))
    hhmm = SAMPLE_TIMECODE[:6]
    return {
        "source": SAMPLE_KEY,
        "start": f"{hhmm}{start:02d};00",
        "end": f"{hhmm}{end:02d};00",
        "timecode_origin": "embedded",
        "accuracy": "exact",
    }


def _redis_rows(settings: Settings, private: PrivateRedis | None) -> list[tuple[str, str]]:
    """The banner's Redis lines: our own shows where its password is and how to connect."""
    if private is None:
        return [("Redis", redact(settings.redis_url))]
    where = f"{private.shown_url}   (password in {private.password_file})"
    return [("Redis", where), ("redis-cli", private.cli_command())]


def _print_ready(
    settings: Settings,
    api: str,
    api_key: str,
    sample: str,
    body: dict[str, Any],
    private: PrivateRedis | None,
) -> None:
    admin_key = next(iter(settings.admin_key_names), "")
    auth = f"Authorization: Bearer {api_key}"
    storage = f"{settings.storage} ({settings.local_storage_dir})"
    if settings.storage == "s3":
        buckets = f"{settings.source_bucket}, {settings.clip_bucket}"
        storage = f"s3 ({settings.s3_endpoint}, buckets {buckets})"
    console.print("\n[bold green]Clipper is ready[/]")
    for label, value in [
        ("API", api),
        ("API docs", f"{api}/docs"),
        ("Dashboard", f"{api}/dashboard   (admin key: {admin_key})"),
        ("Metrics", f"{api}/metrics"),
        *_redis_rows(settings, private),
        ("Storage", storage),
        ("API key", f"{api_key}   (client {settings.api_key_names.get(api_key, '?')!r})"),
        ("Sample", sample),
    ]:
        console.print(f"  [bold]{label:<10}[/] {escape(value)}")
    post = ["curl", "-s", "-X", "POST", f"{api}/v1/clips", "-H", auth]
    post += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    console.print(f"\nMake a clip of the sample ({body['start']} to {body['end']}, exclusive):")
    console.print(f"  {shlex.join(post)}", markup=False)
    console.print("Poll it with the returned id until status is succeeded:")
    console.print(f"  curl -s -H {shlex.quote(auth)} {api}/v1/clips/<id>", markup=False)
    console.print("Download it (a 307 redirect to a signed, expiring link):")
    console.print(
        f"  curl -L -OJ -H {shlex.quote(auth)} {api}/v1/clips/<id>/download", markup=False
    )
    console.print("\nPress Ctrl-C to stop everything.")
    ready = {"api_url": api, "api_key": api_key, "sample_key": SAMPLE_KEY, "clip_request": body}
    print(f"{READY_MARKER} {json.dumps(ready)}", flush=True)


def _parse_size(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, int]:
    width, sep, height = value.partition("x")
    if not (
        sep and width.isdigit() and height.isdigit() and int(width) % 2 == 0 == int(height) % 2
    ):
        raise click.BadParameter("expected WIDTHxHEIGHT with even numbers, e.g. 320x180")
    return int(width), int(height)


def _died(child: Child) -> None:
    code = child.process.returncode
    console.print(f"[bold red]{child.name} exited unexpectedly (code {code}): stopping the rest[/]")


def _sample_spec(values: dict[str, Any]) -> SampleSpec:
    width, height = values["sample_size"]
    return SampleSpec(seconds=values["sample_seconds"], width=width, height=height)


@dataclass
class _Up:
    """One `clipper up` run: its settings, the supervisor and the sample being generated."""

    settings: Settings
    overrides: dict[str, str]
    host: str
    port: int
    grace_seconds: float
    stop: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)
    sample_result: list[str] = field(default_factory=list)
    sampler: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.api = f"http://{_connect_host(self.host)}:{self.port}"
        own = self.overrides.get("redis_url")
        #: Our own Redis, when no CLIPPER_REDIS_URL was given.
        self.private = PrivateRedis.from_url(self.settings.state_dir, own) if own else None
        self.sup = Supervisor(
            grace_seconds=self.grace_seconds,
            say=lambda m: console.print(f"[dim]{m}[/]"),
            reap_orphans=True,
        )

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop.is_set():
            self.sup.hurry.set()  # a second Ctrl-C: no more waiting
        self.stop.set()
        self.cancel.set()

    def _env(self) -> dict[str, str]:
        return dict(os.environ) | {f"CLIPPER_{k.upper()}": v for k, v in self.overrides.items()}

    def _start_sample(self, spec: SampleSpec | None) -> None:
        if spec is None:
            self.sample_result.append("skipped (--no-sample)")
            return

        def sample() -> None:
            try:
                self.sample_result.append(_ensure_sample(self.settings, spec, self.cancel))
            except (ClipperError, OSError) as exc:
                console.print(f"[bold red]could not add the sample video: {exc}[/]")
                self.sample_result.append(f"not added ({exc}): the example below will not work")

        self.sampler = threading.Thread(target=sample, name="sample", daemon=True)
        self.sampler.start()

    def _start_service(self, worker_count: int, sample: SampleSpec | None) -> Child | None:
        """The API, the workers and the sample; the child that died while they started."""
        cli, env = [sys.executable, "-m", "clipper.cli"], self._env()
        self.sup.start("api", [*cli, "api", "--host", self.host, "--port", str(self.port)], env=env)
        for n in range(1, worker_count + 1):
            self.sup.start(f"worker-{n}", [*cli, "worker"], env=env)
        self._start_sample(sample)
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        failed = self.sup.wait(
            self.stop, until=lambda: _api_answers(self.api) or time.monotonic() > deadline
        )
        if failed is None and not self.stop.is_set() and not _api_answers(self.api):
            raise click.ClickException(f"the API did not answer at {self.api}/healthz")
        return failed or self.sup.wait(self.stop, until=lambda: bool(self.sample_result))

    def run(self, worker_count: int, spec: SampleSpec, *, add_sample: bool) -> Child | None:
        """Start everything and serve until stopped; the child that died, if one did."""
        failed = None
        if self.private is not None:  # no CLIPPER_REDIS_URL given: run our own
            failed = _start_redis(self.sup, self.settings, self.private, self.stop)
        elif not _redis_answers(self.settings.redis_url):
            shown = redact(self.settings.redis_url)
            raise click.ClickException(f"Redis at {shown} does not answer")
        if failed is None and not self.stop.is_set():
            failed = self._start_service(worker_count, spec if add_sample else None)
        if failed is None and not self.stop.is_set():
            api_key = next(iter(self.settings.api_key_names), "")
            example = _clip_request(spec)
            sample = self.sample_result[0]
            _print_ready(self.settings, self.api, api_key, sample, example, self.private)
            failed = self.sup.wait(self.stop)
        return failed

    def shut_down(self) -> None:
        """Stop the sample's FFmpeg, then every child in order."""
        self.cancel.set()
        if self.sampler is not None:  # its FFmpeg is our child: gone before orphans are reaped
            self.sampler.join(timeout=self.grace_seconds)
        self.sup.stop_all()


def _settings_for(host: str, port: int) -> tuple[Settings, dict[str, str]]:
    """The children's settings: the user's, with what they left at the defaults filled in."""
    try:
        settings = Settings()
        overrides = _child_overrides(settings, host, port)
        return Settings(**overrides), overrides  # type: ignore[arg-type]  # strings, validated
    except ValidationError as exc:
        raise click.ClickException(f"invalid settings:\n{exc}") from exc


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the API binds.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", "worker_count", default=1, show_default=True, type=click.IntRange(1))
@click.option("--no-sample", is_flag=True, help="Do not put the sample video into the library.")
@option_group(
    "sample",
    _sample_spec,
    click.option("--sample-seconds", default=30.0, hidden=True, type=click.FloatRange(1, 59)),
    click.option("--sample-size", default="1280x720", hidden=True, callback=_parse_size),
)
@click.option("--grace-seconds", default=10.0, hidden=True, type=click.FloatRange(0))
def up(
    host: str, port: int, worker_count: int, no_sample: bool, sample: SampleSpec,
    grace_seconds: float,
) -> None:  # fmt: skip
    """Run the whole service on embedded defaults: Redis, the API, workers and a sample."""
    settings, overrides = _settings_for(host, port)
    lock = lock_dir(settings.state_dir)
    if lock is None:
        raise click.ClickException(f"another `clipper up` is using {settings.state_dir}")
    if not port_is_free(host, port):
        raise click.ClickException(f"{host}:{port} is in use: pick another with --port")
    if "work_dir" in overrides:
        _remove_stale_work(Path(overrides["work_dir"]))
    run = _Up(settings, overrides, host, port, grace_seconds)
    previous = {s: signal.signal(s, run.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    failed: Child | None = None
    try:
        failed = run.run(worker_count, sample, add_sample=not no_sample)
        if failed is not None:
            _died(failed)
    finally:
        run.shut_down()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    console.print("[bold]Clipper stopped.[/]")
    if failed is not None:
        sys.exit(1)


def _start_redis(
    sup: Supervisor, settings: Settings, private: PrivateRedis, stop: threading.Event
) -> Child | None:
    """Start the private Redis and wait for it; returns the child if it died instead."""
    server = shutil.which("redis-server")
    if server is None:
        raise click.ClickException(
            "redis-server is not installed: run `sudo bash scripts/install-system-deps.sh` "
            "or set CLIPPER_REDIS_URL to an existing Redis"
        )
    port = private.port
    config = private.write_config()
    argv = redis_server_argv(private.data_dir, port, server, config_file=config)
    sup.start("redis", argv, tier=0, log_path=settings.state_dir / "logs" / "redis.log")
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    dead = sup.wait(
        stop, until=lambda: _redis_answers(settings.redis_url) or time.monotonic() > deadline
    )
    if dead is None and not stop.is_set() and not _redis_answers(settings.redis_url):
        raise click.ClickException(f"the private Redis did not answer on port {port}")
    return dead


COMMANDS: list[click.Command] = [up]
