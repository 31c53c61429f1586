"""Markdown rendering of benchmark results: medians, ratios, targets, frame counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.frames import offset_text


@dataclass(frozen=True)
class Row:
    """One method on one clip, ready to print."""

    clip: str
    method: str
    median: float | None  # seconds; None when the method did not run
    runs: int
    ratio: float | None  # median / baseline median
    baseline: str  # what the ratio is relative to
    target: float | None  # the product's upper bound for `ratio`, if any
    frames: int | None  # decoded frames in the output (ffprobe -count_frames)
    wanted_frames: int  # frames the product rule selects for the requested range
    note: str = ""
    cpu_median: float | None = None  # CPU seconds (user + sys), median
    cpu_ratio: float | None = None  # cpu_median / the baseline's
    first_offset: int | None = None  # first picture vs requested first frame (0 = right)
    last_offset: int | None = None


def verdict(ratio: float | None, target: float | None) -> str:
    """'yes' / 'NO' when the row has a target and a ratio, else empty."""
    if target is None or ratio is None:
        return ""
    return "yes" if ratio <= target else "NO"


def frames_cell(frames: int | None, wanted: int) -> str:
    """'300 (exact)' or '302 (+2)' against the requested count."""
    if frames is None:
        return "—"
    delta = frames - wanted
    return f"{frames} (exact)" if delta == 0 else f"{frames} ({delta:+d})"


def render(header: Sequence[str], rows: Sequence[Row]) -> str:
    """The whole report: header lines, then one Markdown table."""
    lines = [*header, ""]
    lines.append(
        "| clip | method | median s | ratio | vs | target | met | CPU s | CPU ratio "
        "| frames (requested) | first / last frame | note |"
    )
    lines.append("|---|---|---:|---:|---|---:|:---:|---:|---:|---|---|---|")
    for r in rows:
        median = f"{r.median:.2f}" if r.median is not None else "—"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        target = f"≤ {r.target:g}x" if r.target is not None else ""
        frames = f"{frames_cell(r.frames, r.wanted_frames)} of {r.wanted_frames}"
        if r.frames is None:
            frames = f"— of {r.wanted_frames}"
        note = r.note.replace("|", "/").replace("\n", " ")
        cpu = f"{r.cpu_median:.2f}" if r.cpu_median is not None else "—"
        cpu_ratio = f"{r.cpu_ratio:.2f}x" if r.cpu_ratio is not None else ""
        ends = ""
        if r.frames is not None:
            ends = f"{offset_text(r.first_offset)} / {offset_text(r.last_offset)}"
        lines.append(
            f"| {r.clip} | {r.method} | {median} | {ratio} | {r.baseline if ratio else ''} | "
            f"{target} | {verdict(r.ratio, r.target)} | {cpu} | {cpu_ratio} | {frames} | {ends} "
            f"| {note} |"
        )
    lines.append("")
    lines.append(
        "frames: decoded by `ffprobe -count_frames`; requested = frames whose timestamp is in "
        "[start, end) (PRODUCT.md rule). `fast` starts at the keyframe before the in-point, "
        "so it carries extra frames by design; raw `-c copy` keeps pre-roll frames too."
    )
    lines.append("")
    lines.append(
        "first / last frame: the clip's first and last pictures matched (PSNR, 320x180 grey) "
        "against the source frames around the requested first and last frame: `ok` = the "
        "right frame, `-1` = one frame early, `+2` = two frames late, `?` = no clear match."
    )
    return "\n".join(lines) + "\n"
