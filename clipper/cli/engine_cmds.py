"""`clipper cut` and `clipper probe`: the engine on local files, no Redis, no HTTP."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from clipper import engine
from clipper.cli.options import option_group
from clipper.errors import BadRequest, ClipperError
from clipper.spec import Accuracy, CutSpec, Preset, Segment, TimecodeOrigin


def _fail(exc: ClipperError) -> None:
    field = f" ({exc.field})" if exc.field else ""
    click.echo(f"error: {exc.message}{field}", err=True)
    sys.exit(2 if isinstance(exc, BadRequest) else 1)


def _check_source(source: str) -> None:
    if not source.startswith(("http://", "https://")) and not Path(source).is_file():
        click.echo(f"error: no such file: {source}", err=True)
        sys.exit(2)


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[str, float], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("probing", total=1.0)

        def update(phase: str, fraction: float) -> None:
            bar.update(task, description=phase, completed=fraction)

        yield update


def _spec_from_options(values: dict[str, Any]) -> CutSpec:
    """The CutSpec `clipper cut`'s range and mode options describe."""
    segments, start, end = values["segments"], values["start"], values["end"]
    if segments and (start is not None or end is not None):
        click.echo("error: use either --start/--end or --segment, not both", err=True)
        sys.exit(2)
    return CutSpec(
        segments=tuple(Segment(a, b) for a, b in segments) or (Segment(start, end),),
        accuracy=Accuracy(values["accuracy"]),
        preset=Preset(values["preset"]),
        timecode_origin=TimecodeOrigin(values["timecode_origin"]),
    )


@click.command()
@click.argument("source")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@option_group(
    "spec",
    _spec_from_options,
    click.option("--start", help="In-point: seconds, HH:MM:SS.mmm or SMPTE HH:MM:SS:FF / ;FF."),
    click.option("--end", help="Out-point (exclusive), same forms as --start."),
    click.option(
        "--segment",
        "segments",
        nargs=2,
        multiple=True,
        metavar="START END",
        help="A range; repeat to join several ranges in order.",
    ),
    click.option(
        "--accuracy", type=click.Choice([a.value for a in Accuracy]), default=Accuracy.EXACT.value
    ),
    click.option("--preset", type=click.Choice([p.value for p in Preset]), default="original"),
    click.option(
        "--timecode-origin",
        type=click.Choice([o.value for o in TimecodeOrigin]),
        default=TimecodeOrigin.EMBEDDED.value,
    ),
)
@click.option("--json", "as_json", is_flag=True, help="Print the accuracy report as JSON.")
def cut(source: str, output: Path, spec: CutSpec, as_json: bool) -> None:
    """Cut SOURCE into OUTPUT, frame-exact by default, and report what was delivered."""
    _check_source(source)
    try:
        with _progress_bar(sys.stderr.isatty() and not as_json) as progress:
            report = engine.cut(source, output, spec, context=engine.RunContext(progress=progress))
    except ClipperError as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    for i, seg in enumerate(report.segments):
        first, last = seg.delivered_first, seg.delivered_last
        click.echo(
            f"segment {i}: frames {first.frame}-{last.frame} "
            f"({first.timecode} - {last.timecode}), {seg.frame_count} frames, {seg.strategy}"
            + (f" ({seg.fallback_reason})" if seg.fallback_reason else "")
        )
    v = report.verification
    click.echo(
        f"{output}: {report.frame_count} frames, {report.duration_seconds:.3f} s, "
        f"{report.frames_copied} copied, {report.frames_reencoded} re-encoded, "
        f"verified ({v.decode_errors} decode errors)"
    )


def _probe_summary(data: dict[str, Any]) -> str:
    v = data["video"]
    lines = [
        f"container   {data['container']} ({data['format_name']})",
        f"duration    {data['duration_seconds']:.3f} s, {data['frame_count']} frames",
        f"video       {v['codec']} {v['profile'] or ''} {v['width']}x{v['height']} "
        f"{v['pix_fmt']} @ {v['frame_rate']} fps",
        f"timecode    {data['start_timecode'] or '-'}",
    ]
    if data.get("variable_frame_rate"):
        lines.append(
            "warning     variable frame rate: fewer frames than the duration takes; "
            "Clipper refuses to cut it (convert with ffmpeg -fps_mode cfr)"
        )
    for a in data["audio"]:
        lines.append(f"audio       {a['codec']} {a['sample_rate']} Hz, {a['channels']} ch")
    if "keyframes_near" in data:
        times = ", ".join(f"{t:.3f}" for t in data["keyframes_near"])
        lines.append(f"keyframes   {times}")
    return "\n".join(lines)


@click.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print the probe as JSON.")
@click.option("--near", type=float, multiple=True, help="List keyframes near this time (s).")
def probe(source: str, as_json: bool, near: tuple[float, ...]) -> None:
    """Show what Clipper knows about SOURCE (streams, frame rate, timecode, keyframes)."""
    _check_source(source)
    try:
        media = engine.probe(source)
        data = media.to_dict()
        if near:
            data["keyframes_near"] = engine.keyframes_near(source, media, near)
    except ClipperError as exc:
        _fail(exc)
        return
    click.echo(json.dumps(data, indent=2) if as_json else _probe_summary(data))


COMMANDS: list[click.Command] = [cut, probe]
