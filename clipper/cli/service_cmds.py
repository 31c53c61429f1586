"""Service commands: `clipper api`, `clipper worker`, `clipper sources add|list`, `clipper clip`.

`api` and `worker` import the `api` and `workers` packages inside their bodies: this module
is the composition root, and `clipper cut` must work without Redis or HTTP.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx

from clipper.cli.options import option_group
from clipper.settings import get_settings

#: How often `clipper clip --wait` polls the clip.
POLL_INTERVAL_SECONDS = 0.5


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to bind")
@click.option("--port", default=8000, show_default=True, type=int, help="TCP port")
@click.option("--workers", "processes", default=1, show_default=True, help="uvicorn processes")
def api(host: str, port: int, processes: int) -> None:
    """Run the HTTP API (uvicorn; N processes each on its own SO_REUSEPORT socket)."""
    import uvicorn

    from api.serve import reuse_port_supported, serve

    get_settings()  # validate the environment before binding the port
    if processes > 1 and reuse_port_supported():
        # See api/serve.py: balanced over the processes.
        if serve(host, port, processes):
            raise SystemExit(1)
        return
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        proxy_headers=True,
        log_level="info",
    )


@click.command()
@click.option(
    "--queues",
    default="interactive,default,bulk",
    show_default=True,
    help="comma-separated queues, served in this order; `webhooks` (deliveries) comes last "
    "unless named",
)
@click.option("--burst", is_flag=True, help="exit once the queues are empty")
def worker(queues: str, burst: bool) -> None:
    """Run an RQ worker for clip jobs and webhook deliveries."""
    from workers.queues import ALL_QUEUE_NAMES
    from workers.worker import run_worker

    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in names if q not in ALL_QUEUE_NAMES]
    if unknown or not names:
        raise click.BadParameter(
            f"queues must be among {', '.join(ALL_QUEUE_NAMES)}", param_hint="--queues"
        )
    from clipper.logs import secrets_from_settings, setup_logging

    settings = get_settings()
    # JSON lines with secrets redacted; installed before RQ so it adds no plain handler.
    setup_logging("INFO", secrets=secrets_from_settings(settings))
    run_worker(settings, names, burst=burst)


@click.group()
def sources() -> None:
    """Manage the source library."""


@sources.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", default=None, help="object key (default: the file name)")
def sources_add(file: Path, key: str | None) -> None:
    """Upload FILE into the source library."""
    from rich.console import Console

    from clipper.storage import open_storage, validate_key

    settings = get_settings()
    storage = open_storage(settings)
    storage.ensure_buckets()
    object_key = validate_key(key or file.name)
    console = Console(stderr=True)
    with console.status(f"uploading {file.name} ({file.stat().st_size / 1e6:.1f} MB)…"):
        info = storage.put_source(object_key, file)
    click.echo(f"{info.key}\t{info.size_bytes}\t{info.etag}")


@sources.command("list")
@click.option("--prefix", default="", help="only keys starting with this")
def sources_list(prefix: str) -> None:
    """List the source library (key, size in bytes, last modified)."""
    from clipper.storage import open_storage

    for info in open_storage(get_settings()).list_sources(prefix):
        click.echo(f"{info.key}\t{info.size_bytes}\t{info.last_modified.isoformat()}")


def _time_value(text: str | None) -> float | str | None:
    """Numbers go as JSON numbers (seconds); timecodes stay strings."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _fail(response: httpx.Response) -> None:
    try:
        problem = response.json()
        message = problem.get("detail") or response.text
        field = problem.get("field")
    except ValueError:
        message, field = response.text, None
    where = f" ({field})" if field else ""
    raise click.ClickException(f"HTTP {response.status_code}{where}: {message}")


def _clip_body(values: dict[str, Any]) -> dict[str, Any]:
    """The `POST /v1/clips` body (without the source) that `clipper clip`'s options describe."""
    body: dict[str, Any] = {
        name: values[name] for name in ("accuracy", "preset", "timecode_origin", "priority")
    }
    for name in ("start", "end"):
        if values[name] is not None:
            body[name] = _time_value(values[name])
    if values["filename"]:
        body["filename"] = values["filename"]
    return body


@dataclass(frozen=True)
class _ApiTarget:
    """Where `clipper clip` sends its request, and with which key."""

    url: str
    key: str | None

    @classmethod
    def from_options(cls, values: dict[str, Any]) -> _ApiTarget:
        # Development convenience: without a key, the first configured one.
        key = values["api_key"] or next(iter(get_settings().api_key_names), None)
        return cls(values["api_url"], key)


@click.command()
@click.argument("source_key")
@option_group(
    "request",
    _clip_body,
    click.option("--start", default=None, help="seconds, HH:MM:SS.mmm or SMPTE HH:MM:SS:FF"),
    click.option("--end", default=None, help="exclusive; same formats as --start"),
    click.option("--accuracy", type=click.Choice(["exact", "fast"]), default="exact"),
    click.option("--preset", type=click.Choice(["original", "mp4"]), default="original"),
    click.option(
        "--timecode-origin", type=click.Choice(["embedded", "zero"]), default="embedded"
    ),
    click.option(
        "--priority", type=click.Choice(["interactive", "default", "bulk"]), default="interactive"
    ),
    click.option("--filename", default=None, help="download file name"),
)
@click.option("--wait", is_flag=True, help="wait until the clip is done")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="download the clip to this file (implies --wait)",
)
@option_group(
    "api",
    _ApiTarget.from_options,
    click.option(
        "--api-url", envvar="CLIPPER_API_URL", default="http://127.0.0.1:8000", show_default=True
    ),
    click.option(
        "--api-key", envvar="CLIPPER_API_KEY", default=None, help="bearer key (env CLIPPER_API_KEY)"
    ),
)
def clip(
    source_key: str, request: dict[str, Any], wait: bool, output: Path | None, api: _ApiTarget
) -> None:
    """Request a clip of SOURCE_KEY through the HTTP API; print its JSON or download it."""
    import json

    body = {"source": source_key, **request}
    headers = {"Authorization": f"Bearer {api.key}"}
    with httpx.Client(base_url=api.url, headers=headers, timeout=30) as client:
        response = client.post("/v1/clips", json=body)
        if response.status_code not in (200, 202):
            _fail(response)
        resource = response.json()
        if wait or output:
            resource = _wait(client, resource)
        if output:
            _download(client, resource["id"], output)
        click.echo(json.dumps(resource, indent=2))
    if resource["status"] in ("failed", "canceled"):
        sys.exit(1)


def _wait(client: httpx.Client, resource: dict[str, Any]) -> dict[str, Any]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(resource["status"], total=100)
        while resource["status"] in ("queued", "running"):
            time.sleep(POLL_INTERVAL_SECONDS)
            response = client.get(f"/v1/clips/{resource['id']}")
            if response.status_code != 200:
                _fail(response)
            resource = response.json()
            progress = resource.get("progress") or {}
            bar.update(
                task,
                completed=progress.get("percent") or 0,
                description=str(progress.get("phase") or resource["status"]),
            )
    return resource


def _download(client: httpx.Client, clip_id: str, output: Path) -> None:
    response = client.get(f"/v1/clips/{clip_id}/download", follow_redirects=False)
    if response.status_code != 307:
        _fail(response)
    link = response.headers["location"]
    part = output.with_name(output.name + ".part")
    with httpx.stream("GET", link, timeout=60, follow_redirects=False) as stream:
        if stream.status_code != 200:
            raise click.ClickException(f"download refused: HTTP {stream.status_code}")
        with part.open("wb") as fh:
            for chunk in stream.iter_bytes():
                fh.write(chunk)
    part.replace(output)
    click.echo(f"saved {output} ({output.stat().st_size} bytes)", err=True)


COMMANDS: list[click.Command] = [api, worker, sources, clip]
