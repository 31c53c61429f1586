"""Read an MP4/MOV file's sample tables in-process (ISO BMFF `moov`), no FFmpeg process.

Verification only needs packet facts (frame count, presentation times, first sample a
sync sample, audio span); for our own MP4/MOV outputs the `moov` box holds all of them, and
reading it here saves an ffprobe start (~0.15 s, as much as a whole stream copy of 10 s).
Times follow FFmpeg's mov demuxer: presentation time = (DTS + composition offset - the
edit list's media time) / timescale, plus any leading empty edit. Anything this reader
does not handle (fragments, several edits, missing tables) returns None: the caller falls
back to ffprobe.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: Boxes whose payload is a list of child boxes (only those on our paths).
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}
#: Refuse absurd tables (a corrupt size must not make us allocate gigabytes).
_MAX_ENTRIES = 50_000_000


#: What the readers parse: a moov box's bytes, or a whole file mapped in memory.
Data = bytes | mmap.mmap


class Unsupported(Exception):
    """The file uses something this reader does not model; use ffprobe."""


@dataclass(frozen=True)
class Track:
    """One track's samples in decode order: presentation seconds, durations, sync flags.

    Audio durations are ffprobe's (the last one within 1 ms); video's are not modelled.
    """

    handler: str  # "vide", "soun", "tmcd", ...
    pts_seconds: list[float]
    durations_seconds: list[float]
    first_is_sync: bool
    timescale: int = 0  # the track's clock: one tick is 1/timescale s


def boxes(data: Data, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise Unsupported("truncated box header")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Unsupported(f"bad size of box {kind!r}")
        yield kind, pos + header, pos + size
        pos += size


def children(data: Data, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    found: dict[bytes, tuple[int, int]] = {}
    for kind, a, b in boxes(data, start, end):
        found.setdefault(kind, (a, b))
    return found


def entries(data: Data, a: int, fmt: str, offset: int = 4) -> Iterator[tuple[int, ...]]:
    """The entry table of a full box: a 32-bit count after version/flags, then records."""
    (count,) = struct.unpack_from(">I", data, a + offset)
    if count > _MAX_ENTRIES:
        raise Unsupported("table too large")
    return struct.iter_unpack(
        fmt, data[a + offset + 4 : a + offset + 4 + count * struct.calcsize(fmt)]
    )


def need(boxes: dict[bytes, tuple[int, int]], kind: bytes) -> tuple[int, int]:
    if kind not in boxes:
        raise Unsupported(f"no {kind!r} box")
    return boxes[kind]


def edit_list(
    data: Data, trak: dict[bytes, tuple[int, int]], movie_scale: int
) -> tuple[int, int, float] | None:
    """The media edit (movie-timescale duration, media time) and the seconds of empty edits
    before it; None without an edit list."""
    elst = children(data, *trak[b"edts"]).get(b"elst") if b"edts" in trak else None
    if elst is None:
        return None
    fmt = ">Qqhh" if data[elst[0]] == 1 else ">Iihh"
    edits = [(duration, time) for duration, time, _rate, _frac in entries(data, elst[0], fmt)]
    empty = [duration for duration, time in edits[:-1] if time == -1]
    if not edits or len(empty) != len(edits) - 1 or edits[-1][1] < 0:
        # FFmpeg's rules for several media edits are intricate: leave those to ffprobe.
        raise Unsupported("several media edits")
    return edits[-1][0], edits[-1][1], sum(empty) / movie_scale


def time_shift(
    cts: list[int], edit: tuple[int, int, float] | None, scale: int, movie_scale: int, audio: bool
) -> float:
    """Seconds to add to each cts / timescale, as FFmpeg's mov demuxer (mov_fix_index) does.

    One media edit at media time m: samples are shown at cts - m, then moved so the earliest
    is at 0 when all are after m; leading empty edits delay everything by their length.
    Samples before m (audio priming) keep negative times; for video
    that only happens for cuts that do not start where a frame does, which we never write.
    """
    if edit is None or not cts:
        return 0.0
    duration, media_time, empty = edit
    first = min(cts)
    if media_time > first and not audio:
        raise Unsupported("edit starts after the first video frame")
    if duration and max(cts) >= media_time + duration * scale // movie_scale:
        raise Unsupported("samples after the edit's end")
    # FFmpeg moves the empty edits (movie timescale) into the track's, rounding.
    return (round(empty * scale) - max(media_time, first)) / scale


def _sample_deltas(data: bytes, stbl: dict[bytes, tuple[int, int]]) -> list[int]:
    """Every sample's duration, from the time-to-sample table."""
    deltas: list[int] = []
    for count, delta in entries(data, need(stbl, b"stts")[0], ">II"):
        if len(deltas) + count > _MAX_ENTRIES:
            raise Unsupported("too many samples")
        deltas.extend([delta] * count)
    return deltas


def _composition_offsets(
    data: bytes, stbl: dict[bytes, tuple[int, int]], samples: int
) -> list[int]:
    """Every sample's composition offset (all zero without a ctts box)."""
    offsets = [0] * samples
    if b"ctts" not in stbl:
        return offsets
    ctts = stbl[b"ctts"][0]
    fmt = ">Ii" if data[ctts] == 1 else ">II"
    i = 0
    for count, offset in entries(data, ctts, fmt):
        if i + count > samples:
            raise Unsupported("ctts longer than the track")
        offsets[i : i + count] = [offset] * count
        i += count
    return offsets


def _composition_times(deltas: list[int], offsets: list[int]) -> list[int]:
    """Presentation times in the track's timescale: decode times plus composition offsets."""
    cts: list[int] = []
    dts = 0
    for delta, offset in zip(deltas, offsets, strict=True):
        cts.append(dts + offset)
        dts += delta
    return cts


def _track(data: bytes, a: int, b: int, movie_scale: int) -> Track:
    trak = children(data, a, b)
    mdia = children(data, *need(trak, b"mdia"))
    mdhd = need(mdia, b"mdhd")[0]
    scale = struct.unpack_from(">I", data, mdhd + (20 if data[mdhd] == 1 else 12))[0]
    hdlr = need(mdia, b"hdlr")[0]
    handler = data[hdlr + 8 : hdlr + 12].decode("latin-1")
    if handler not in ("vide", "soun"):
        return Track(handler, [], [], True, scale)  # timecode/data tracks: not verified
    stbl = children(data, *need(children(data, *need(mdia, b"minf")), b"stbl"))
    if not scale:
        raise Unsupported("zero timescale")
    deltas = _sample_deltas(data, stbl)
    (sample_size, samples) = struct.unpack_from(">II", data, need(stbl, b"stsz")[0] + 4)
    if sample_size and handler == "soun":
        raise Unsupported("constant-size audio samples (PCM): FFmpeg reads them by chunk")
    if samples != len(deltas):
        raise Unsupported("stts and stsz disagree on the sample count")
    offsets = _composition_offsets(data, stbl, samples)
    first_is_sync = True  # no stss: every sample is a sync sample
    if b"stss" in stbl:
        first_is_sync = any(n == 1 for (n,) in entries(data, stbl[b"stss"][0], ">I"))
    cts = _composition_times(deltas, offsets)
    edit = edit_list(data, trak, movie_scale)
    shift = time_shift(cts, edit, scale, movie_scale, handler == "soun")
    pts = [t / scale + shift for t in cts]
    durations = [d / scale for d in deltas]
    if edit is not None and pts and handler == "soun":
        # FFmpeg trims the last audio packet at the edit's end (edit units are coarse, often
        # ms, and FFmpeg's own arithmetic here differs from this by < 1 ms: see the tests).
        durations[-1] = min(durations[-1], edit[0] / movie_scale - pts[-1])
        if durations[-1] <= 0:
            raise Unsupported("the edit ends before the last sample")
    return Track(handler, pts, durations, first_is_sync, scale)


def locate_moov(f: BinaryIO) -> tuple[int, int]:
    """(offset, size) of the moov box, reading only top-level box headers."""
    size_total = f.seek(0, 2)
    pos = 0
    while pos + 8 <= size_total:
        f.seek(pos)
        head = f.read(16)
        size, kind = struct.unpack_from(">I4s", head)
        if size == 1:
            (size,) = struct.unpack_from(">Q", head, 8)
        elif size == 0:
            size = size_total - pos
        if size < 8:
            raise Unsupported("bad top-level box size")
        if pos == 0 and kind != b"ftyp":
            raise Unsupported("not an ISO BMFF file")  # MKV, MPEG-TS: ffprobe reads those
        if kind == b"moof":
            raise Unsupported("fragmented file")
        if kind == b"moov":
            if pos + size > size_total:
                raise Unsupported("truncated moov box")
            return pos, size
        pos += size
    raise Unsupported("no moov box")


def read_moov(path: Path) -> bytes:
    """The moov box's bytes (header included), reading only box headers elsewhere."""
    with path.open("rb") as f:
        pos, size = locate_moov(f)
        f.seek(pos)
        return f.read(size)


def read_tracks(path: Path) -> list[Track] | None:
    """Every track of an MP4/MOV file in stream order; None if the file needs ffprobe."""
    try:
        data = read_moov(path)
        header = 16 if struct.unpack_from(">I", data)[0] == 1 else 8
        moov = list(boxes(data, header, len(data)))
        if any(kind == b"mvex" for kind, _, _ in moov):
            raise Unsupported("fragmented file")
        mvhd = next((a for kind, a, _ in moov if kind == b"mvhd"), None)
        if mvhd is None:
            raise Unsupported("no mvhd box")
        movie_scale = struct.unpack_from(">I", data, mvhd + (20 if data[mvhd] == 1 else 12))[0]
        if not movie_scale:
            raise Unsupported("zero movie timescale")
        return [_track(data, a, b, movie_scale) for kind, a, b in moov if kind == b"trak"]
    except (Unsupported, struct.error, OSError, ValueError):
        return None
