"""What a stream copy needs to know about a local MP4/MOV, read in-process from its `moov`.

A `fast` cut is a stream copy: a raw `ffmpeg -ss … -c copy` of 10 s takes about 0.1 s, and
an ffprobe start costs as much again. For a local MP4/MOV source the `moov` box already
holds what a copy needs: the tracks, the frame rate and count, the start timecode (`tmcd`),
and every video sample's timestamps and sync flag. This module builds `MediaInfo` and the
packets near the cut points from it, with the timestamp rules of FFmpeg's mov demuxer
(clipper/engine/media/mp4index.py explains them), reading only the sample tables near the cut
points.

The `MediaInfo` leaves out what only re-encoding uses (profile, level, pixel format,
colours, bit rates), so the engine takes it only for cuts that copy every packet; its
`has_b_frames` is the reordering seen in the first samples, not the decoder's guess. Whatever
this reader does not model (several video tracks, variable frame rate, fragments, codecs
other than H.264/HEVC, negative composition offsets, unknown track kinds, timecodes kept
outside a `tmcd` track) gives None: the caller runs ffprobe.
tests/engine/media/test_mp4probe.py holds it to ffprobe's answers.
"""

from __future__ import annotations

import bisect
import itertools
import math
import mmap
import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from clipper.engine.media.model import AudioInfo, MediaInfo, OtherStream, Packet, VideoInfo
from clipper.engine.media.mp4entries import audio_info, sample_entry, start_timecode, timecode_tag
from clipper.engine.media.mp4index import (
    Data,
    Unsupported,
    boxes,
    children,
    edit_list,
    locate_moov,
    need,
    time_shift,
)

__all__ = ["Movie", "open_movie"]

#: What ffprobe calls the mov demuxer.
FORMAT_NAME = "mov,mp4,m4a,3gp,3g2,mj2"
#: Samples looked at for the first picture time and the reordering depth (a GOP's
#: reordering spans a few frames; this is far more).
HEAD_SAMPLES = 256
_MAX_ENTRIES = 50_000_000

_VIDEO_CODECS = {b"avc1": "h264", b"avc3": "h264", b"hvc1": "hevc", b"hev1": "hevc"}


def _table(data: Data, a: int, width: int, signed: bool = False) -> array[int]:
    """A full box's table of `width` 32-bit big-endian fields per entry, as one flat array."""
    (count,) = struct.unpack_from(">I", data, a + 4)
    if count > _MAX_ENTRIES:
        raise Unsupported("table too large")
    raw = data[a + 8 : a + 8 + count * 4 * width]
    if len(raw) != count * 4 * width:
        raise Unsupported("truncated table")
    table = array("i" if signed else "I", raw)
    if table.itemsize != 4:
        raise Unsupported("no 32-bit array type")
    if sys.byteorder == "little":
        table.byteswap()
    return table


@dataclass(frozen=True)
class _VideoTrack:
    """A constant-frame-rate video track's sample tables, timestamps computed on demand."""

    index: int
    codec: str
    width: int
    height: int
    scale: int
    delta: int  # every sample lasts this long (the last one may differ)
    count: int
    runs: list[int]  # cumulative sample counts of the composition-offset runs
    offsets: array[int]  # composition offset of each run
    sync: array[int] | None  # 1-based sync sample numbers; None = every sample
    shift: float  # seconds added to every timestamp (edit list)

    def offset(self, i: int) -> int:
        return self.offsets[bisect.bisect_right(self.runs, i)] if self.runs else 0

    def pts(self, i: int) -> float:
        # Microseconds, as ffprobe prints them: the same listing either way.
        return round((i * self.delta + self.offset(i)) / self.scale + self.shift, 6)

    def dts(self, i: int) -> float:
        return round(i * self.delta / self.scale + self.shift, 6)

    def is_sync(self, i: int) -> bool:
        if self.sync is None:
            return True
        j = bisect.bisect_left(self.sync, i + 1)
        return j < len(self.sync) and self.sync[j] == i + 1

    def reorder_depth(self) -> int:
        """How many frames decoding runs ahead of display (ffprobe's has_b_frames)."""
        head = range(min(self.count, HEAD_SAMPLES))
        order = sorted(head, key=self.pts)
        rank = {i: r for r, i in enumerate(order)}
        return max((i - rank[i] for i in head), default=0)


@dataclass(frozen=True)
class Movie:
    """A local MP4/MOV file's `MediaInfo` and access to its video packets."""

    media: MediaInfo
    video: _VideoTrack

    def packets(self, intervals: Sequence[tuple[float, float | None]]) -> list[Packet]:
        """Video packets in decode order for read intervals (absolute seconds, end or None),
        as `ffprobe -read_intervals` lists them: each interval from the sync sample at or
        before its start, up to the last packet decoded at or before its end."""
        v = self.video
        spans: list[tuple[int, int]] = []
        for a, b in intervals:
            spans.append((self._sync_at_or_before(a), self._last_decoded_by(b)))
        packets: list[Packet] = []
        done = -1
        for first, last in sorted(spans):
            for i in range(max(first, done + 1), last + 1):
                packets.append(Packet(pts=v.pts(i), dts=v.dts(i), keyframe=v.is_sync(i)))
            done = max(done, last)
        return packets

    def _sync_at_or_before(self, t: float) -> int:
        v = self.video
        guess = min(v.count - 1, max(0, self._last_decoded_by(t)))
        if v.sync is None:
            while guess > 0 and v.pts(guess) > t + 1e-9:
                guess -= 1
            return guess
        j = bisect.bisect_right(v.sync, guess + 1) - 1
        while j > 0 and v.pts(v.sync[j] - 1) > t + 1e-9:
            j -= 1
        return v.sync[j] - 1 if j >= 0 else 0

    def _last_decoded_by(self, t: float | None) -> int:
        v = self.video
        if t is None:
            return v.count - 1
        i = int((t - v.shift) * v.scale / v.delta + 1e-9)
        return max(-1, min(v.count - 1, i))


def open_movie(path: Path) -> Movie | None:
    """The `Movie` of a local MP4/MOV file; None when ffprobe has to read it."""
    try:
        return _open(path)
    except (Unsupported, struct.error, OSError, ValueError, IndexError, ZeroDivisionError):
        return None


def _open(path: Path) -> Movie:
    # Mapped, not read: of an hour's 4.8 MB moov only the video's timing tables are touched.
    with path.open("rb") as f:
        pos, size = locate_moov(f)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _parse(path, data, pos, size)


@dataclass
class _Tracks:
    """What the tracks of one moov hold, gathered track by track."""

    path: Path
    data: Data
    movie_scale: int
    video: _VideoTrack | None = None
    video_tags: tuple[int, str | None, tuple[str, ...]] = (0, None, ())
    audio: list[AudioInfo] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    timecode: str | None = None
    others: list[OtherStream] = field(default_factory=list)

    def add(self, index: int, a: int, b: int) -> None:
        data = self.data
        trak = children(data, a, b)
        mdia = children(data, *need(trak, b"mdia"))
        mdhd = need(mdia, b"mdhd")[0]
        scale = struct.unpack_from(">I", data, mdhd + (20 if data[mdhd] == 1 else 12))[0]
        hdlr = need(mdia, b"hdlr")[0]
        handler = data[hdlr + 8 : hdlr + 12]
        rotation, enabled = track_header(data, need(trak, b"tkhd")[0])
        disposition = ("default",) if enabled else ()
        stbl = children(data, *need(children(data, *need(mdia, b"minf")), b"stbl"))
        entry = sample_entry(data, stbl)
        edit = edit_list(data, trak, self.movie_scale)
        if handler == b"vide":
            if self.video is not None:
                raise Unsupported("several video tracks")
            self.video = _video(data, index, stbl, entry, _Timing(scale, edit, self.movie_scale))
            self.video_tags = (rotation, track_language(data, mdhd), disposition)
            self.starts.append(min(self.video.pts(i) for i in range(_head(self.video))))
        elif handler == b"soun":
            if rotation:
                raise Unsupported("a rotated audio track")
            found = audio_info(data, index, mdia, entry, scale)
            language = track_language(data, mdhd)
            self.audio.append(replace(found, language=language, disposition=disposition))
            self.starts.append(_empty(edit, scale) if edit else _first_offset(data, stbl) / scale)
        elif handler == b"tmcd":
            if self.timecode is not None:
                raise Unsupported("several timecode tracks")  # which one ffprobe reports varies
            self.timecode = start_timecode(self.path, data, stbl, entry) or ""
            self.starts.append(_empty(edit, scale) if edit else 0.0)
            self.others.append(OtherStream(index, "data", "tmcd"))
        else:
            raise Unsupported(f"a {handler!r} track")


def _parse(path: Path, data: Data, pos: int, size: int) -> Movie:
    """The movie from the moov box at data[pos:pos + size] (offsets are absolute)."""
    brand = data[8:12].decode("latin-1")
    header = 16 if struct.unpack_from(">I", data, pos)[0] == 1 else 8
    end = pos + size
    top = children(data, pos + header, end)
    if b"mvex" in top:
        raise Unsupported("fragmented file")
    if timecode_tag(data, pos + header, end):
        raise Unsupported("a timecode outside a tmcd track")  # ffprobe knows those tags
    if b"udta" in top and b"chpl" in children(data, *top[b"udta"]):
        raise Unsupported("Nero chapters")  # ffprobe reads them; a clip re-times them
    mvhd = need(top, b"mvhd")[0]
    movie_scale = struct.unpack_from(">I", data, mvhd + (20 if data[mvhd] == 1 else 12))[0]
    matrix = struct.unpack_from(">9i", data, mvhd + (48 if data[mvhd] == 1 else 36))
    if matrix != (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000):
        raise Unsupported("a movie matrix")  # FFmpeg combines it with each track's
    tracks = _Tracks(path, data, movie_scale)
    traks = [(a, b) for kind, a, b in boxes(data, pos + header, end) if kind == b"trak"]
    for index, (a, b) in enumerate(traks):
        tracks.add(index, a, b)
    video, video_tags, starts = tracks.video, tracks.video_tags, tracks.starts
    audio, timecode, others = tracks.audio, tracks.timecode, tuple(tracks.others)
    if video is None:
        raise Unsupported("no video track")
    rate = Fraction(video.scale, video.delta)
    media = MediaInfo(
        container="mov",
        format_name=FORMAT_NAME,
        major_brand=brand,
        duration_seconds=video.count / float(rate),
        size_bytes=path.stat().st_size,
        format_start_seconds=min(starts),
        video=VideoInfo(
            index=video.index,
            codec=video.codec,
            profile=None,
            level=None,
            pix_fmt=None,
            width=video.width,
            height=video.height,
            frame_rate=rate,
            time_base=Fraction(1, video.scale),
            has_b_frames=video.reorder_depth(),
            field_order=None,
            color_range=None,
            color_space=None,
            color_transfer=None,
            color_primaries=None,
            bit_rate=None,
            start_seconds=min(video.pts(i) for i in range(_head(video))),
            rotation=video_tags[0],
            language=video_tags[1],
            disposition=video_tags[2],
        ),
        audio=tuple(audio),
        start_timecode=timecode or None,
        frame_count=video.count,
        others=others,
    )
    return Movie(media=media, video=video)


def track_language(data: Data, mdhd: int) -> str | None:
    """The mdhd language as ffprobe reports it: an ISO 639-2 code, or None for QuickTime's
    "unspecified"; Macintosh language codes decline (ffprobe maps them with a table)."""
    offset = mdhd + (32 if data[mdhd] == 1 else 20)
    code = struct.unpack_from(">H", data, offset)[0]
    if code == 0x7FFF:
        return None
    if code == 0:
        return "eng"  # the first of FFmpeg's Macintosh codes, and the usual one
    if code < 0x400:
        raise Unsupported("a Macintosh language code")
    return "".join(chr(((code >> shift) & 0x1F) + 0x60) for shift in (10, 5, 0))


def track_header(data: Data, tkhd: int) -> tuple[int, bool]:
    """(rotation, enabled) from a tkhd box: the display matrix's rotation as ffprobe reports
    it (FFmpeg's av_display_rotation_get), and the enabled flag ffprobe shows as `default`."""
    version, flags = data[tkhd], int.from_bytes(data[tkhd + 1 : tkhd + 4], "big")
    a, b, _, c, d = struct.unpack_from(">iiiii", data, tkhd + (52 if version == 1 else 40))
    if (a, b, c, d) == (0x10000, 0, 0, 0x10000):
        return 0, bool(flags & 1)
    scale_x, scale_y = math.hypot(a, c), math.hypot(b, d)
    if not scale_x or not scale_y:
        raise Unsupported("a degenerate display matrix")
    degrees = -math.degrees(math.atan2(b / scale_y, a / scale_x))
    if abs(degrees - round(degrees)) > 1e-6 or round(degrees) % 90:
        raise Unsupported("a display matrix that is not a quarter turn")
    return round(degrees), bool(flags & 1)


def _empty(edit: tuple[int, int, float], scale: int) -> float:
    """Where a track with an edit list starts: its empty edits, in its own timescale."""
    return round(edit[2] * scale) / scale


def _head(video: _VideoTrack) -> int:
    return min(video.count, HEAD_SAMPLES)


@dataclass(frozen=True)
class _Timing:
    """A track's clock: its timescale, its edit list (if any) and the movie's timescale."""

    scale: int
    edit: tuple[int, int, float] | None
    movie_scale: int


def _video(
    data: Data,
    index: int,
    stbl: dict[bytes, tuple[int, int]],
    entry: tuple[bytes, int, int],
    timing: _Timing,
) -> _VideoTrack:
    kind, start, _ = entry
    scale = timing.scale
    if kind not in _VIDEO_CODECS:
        raise Unsupported(f"video codec {kind!r}")
    width, height = struct.unpack_from(">HH", data, start + 32)
    stts = _table(data, need(stbl, b"stts")[0], 2)
    counts, deltas = stts[0::2], stts[1::2]
    if not deltas or len(deltas) > 2 or (len(deltas) == 2 and counts[1] != 1):
        raise Unsupported("variable frame rate")
    delta, count = deltas[0], sum(counts)
    size_count = struct.unpack_from(">I", data, need(stbl, b"stsz")[0] + 8)[0]
    if not scale or not delta or count != size_count or count < 1:
        raise Unsupported("inconsistent sample tables")
    runs: list[int] = []
    offsets = array("i")
    if b"ctts" in stbl:
        a = stbl[b"ctts"][0]
        signed = data[a] == 1  # version 1: signed offsets
        ctts = _table(data, a, 2, signed=signed)
        offsets = ctts[1::2]
        if signed and offsets and min(offsets) < 0:
            raise Unsupported("negative composition offsets")
        runs = list(itertools.accumulate(ctts[0::2]))
        if runs and runs[-1] != count:
            raise Unsupported("ctts and stts disagree")
    sync = _table(data, stbl[b"stss"][0], 1) if b"stss" in stbl else None
    if sync is not None and (not sync or list(sync[:1]) != [1]):
        raise Unsupported("the first sample is not a sync sample")
    track = _VideoTrack(
        index, _VIDEO_CODECS[kind], width, height, scale, delta, count, runs, offsets, sync, 0.0
    )
    head = [i * delta + track.offset(i) for i in range(_head(track))]
    tail = [i * delta + track.offset(i) for i in range(max(0, count - HEAD_SAMPLES), count)]
    shift = time_shift([min(head), max(tail)], timing.edit, scale, timing.movie_scale, audio=False)
    return replace(track, shift=shift)


def _first_offset(data: Data, stbl: dict[bytes, tuple[int, int]]) -> int:
    if b"ctts" not in stbl:
        return 0
    a = stbl[b"ctts"][0]
    if struct.unpack_from(">I", data, a + 4)[0] == 0:
        return 0
    return int(struct.unpack_from(">i" if data[a] == 1 else ">I", data, a + 12)[0])
