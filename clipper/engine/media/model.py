"""What Clipper knows about a source: the typed probe result, built from ffprobe JSON (pure).

`MediaInfo` round-trips through JSON (`to_dict()` / `from_dict()`) so the service can cache
it per source version; `clipper.engine.media.ffprobe` runs ffprobe and fills it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from clipper.errors import InvalidMedia
from clipper.timecode import parse_frame_rate

#: Frames a constant-rate stream may lack against its duration (rounding of the last frame's
#: duration, edit lists) before it counts as variable-rate; 1 % of the count on long files.
VFR_MISSING_FRAMES = 2.0
#: ffprobe format_name (first entry) → short container name.
CONTAINERS = {"mov": "mov", "matroska": "matroska", "mpegts": "mpegts", "mxf": "mxf"}


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream."""

    index: int
    codec: str
    profile: str | None
    level: int | None
    pix_fmt: str | None
    width: int
    height: int
    frame_rate: Fraction
    time_base: Fraction
    has_b_frames: int
    field_order: str | None
    color_range: str | None
    color_space: str | None
    color_transfer: str | None
    color_primaries: str | None
    bit_rate: int | None
    start_seconds: float
    #: Display rotation in degrees as ffprobe reports the display matrix (90, -90, -180);
    #: 0 when the stream has none. Phones store portrait video this way.
    rotation: int = 0
    language: str | None = None
    #: Dispositions set on the stream ("default", "forced", ...), sorted.
    disposition: tuple[str, ...] = ()


@dataclass(frozen=True)
class AudioInfo:
    """One audio stream."""

    index: int
    codec: str
    profile: str | None
    sample_rate: int
    channels: int
    channel_layout: str | None
    bit_rate: int | None
    language: str | None = None
    title: str | None = None
    #: Dispositions set on the stream ("default", "forced", ...), sorted.
    disposition: tuple[str, ...] = ()


@dataclass(frozen=True)
class OtherStream:
    """A stream of the source besides the video and the audio tracks Clipper cuts."""

    index: int
    kind: str  # "video" (a second one, or cover art), "subtitle", "data", "attachment"
    codec: str
    language: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Chapter:
    """A chapter of the source: seconds from the start of the file, and its title."""

    start_seconds: float
    end_seconds: float
    title: str | None = None


#: Container tags that describe the file's encoding, not its content: not carried over.
TECHNICAL_TAGS = frozenset(
    {"major_brand", "minor_version", "compatible_brands", "encoder", "timecode", "duration"}
)


@dataclass(frozen=True)
class MediaInfo:
    """What Clipper knows about a source after one probe."""

    container: str  # "mov" (MP4/MOV family), "matroska", "mpegts", "mxf", …
    format_name: str
    major_brand: str | None
    duration_seconds: float
    size_bytes: int | None
    format_start_seconds: float
    video: VideoInfo
    audio: tuple[AudioInfo, ...] = ()
    start_timecode: str | None = None
    frame_count: int = 0
    encoder: str | None = None
    #: The x264 settings the source carries in its SEI ("cabac=1 ref=3 …"); "" when it has
    #: none, None when not read (only re-encoding needs them).
    x264_options: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: The container holds clearly fewer frames than its duration at the nominal rate takes:
    #: frames are missing or timed irregularly, and times cannot be mapped to frames.
    variable_frame_rate: bool = False
    #: Every other stream, in order: what a clip has to carry or name as dropped.
    others: tuple[OtherStream, ...] = ()
    chapters: tuple[Chapter, ...] = ()
    #: The file's descriptive tags (title, copyright, creation_time, …), lower-case names.
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def frame_rate(self) -> Fraction:
        """The video frame rate (exact)."""
        return self.video.frame_rate

    @property
    def is_mp4(self) -> bool:
        """True for the ISO/MP4 side of the mov demuxer (as opposed to QuickTime .mov)."""
        return self.container == "mov" and (self.major_brand or "").strip() != "qt"

    def frame_pts(self, index: int) -> Fraction:
        """Seconds from the start of the file (as `-ss` counts) to frame `index` (CFR model)."""
        offset = Fraction(self.video.start_seconds) - Fraction(self.format_start_seconds)
        return offset + Fraction(index) / self.video.frame_rate

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (rationals as "num/den")."""
        data = asdict(self)
        for key in ("frame_rate", "time_base"):
            data["video"][key] = _rational_text(data["video"][key])
        data["audio"] = [dict(a) for a in data["audio"]]
        data["others"] = [dict(o) for o in data["others"]]
        data["chapters"] = [dict(c) for c in data["chapters"]]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaInfo:
        """Rebuild from `to_dict()` output."""
        video = dict(data["video"])
        video["frame_rate"] = Fraction(video["frame_rate"])
        video["time_base"] = Fraction(video["time_base"])
        nested = ("video", "audio", "others", "chapters")
        rest = {k: v for k, v in data.items() if k not in nested}
        video["disposition"] = tuple(video.get("disposition", ()))
        audio = [
            dict(a, disposition=tuple(a.get("disposition", ()))) for a in data.get("audio", [])
        ]
        return cls(
            video=VideoInfo(**video),
            audio=tuple(AudioInfo(**a) for a in audio),
            others=tuple(OtherStream(**o) for o in data.get("others", ())),
            chapters=tuple(Chapter(**c) for c in data.get("chapters", ())),
            **rest,
        )


@dataclass(frozen=True)
class Packet:
    """One video packet, in decode order."""

    pts: float
    dts: float | None
    keyframe: bool


def _rational_text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def int_or_none(value: Any) -> int | None:
    """int(value), or None when it is missing or not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any, default: float = 0.0) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return default
    return result if math.isfinite(result) else default


#: Dispositions Clipper keeps and checks (the ones players act on).
KEPT_DISPOSITIONS = ("default", "forced")


def _disposition(stream: dict[str, Any]) -> tuple[str, ...]:
    flags = stream.get("disposition") or {}
    return tuple(sorted(name for name in KEPT_DISPOSITIONS if flags.get(name)))


def _tag(stream: dict[str, Any], name: str) -> str | None:
    """A stream tag, whatever its case (Matroska tags come upper-case)."""
    for key, value in (stream.get("tags") or {}).items():
        if str(key).lower() == name:
            return str(value)
    return None


def _codec_name(stream: dict[str, Any]) -> str:
    """ffprobe's codec name, or the sample entry's tag where it knows none (`tmcd`)."""
    name = stream.get("codec_name")
    if name in (None, "", "unknown"):
        name = stream.get("codec_tag_string") or "unknown"
    return str(name)


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list") or []:
        if side.get("side_data_type") == "Display Matrix" and "rotation" in side:
            return round(float(side["rotation"]))
    return 0


def parse_media_info(data: dict[str, Any]) -> MediaInfo:
    """Build MediaInfo from `ffprobe -show_format -show_streams` JSON (pure)."""
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    if not fmt:
        raise InvalidMedia("not a media file")
    videos = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    if not videos:
        raise InvalidMedia("the file has no video stream")
    v = videos[0]
    rate_text = v.get("r_frame_rate") or "0/0"
    if rate_text in ("0/0", "") or Fraction(*map(int, rate_text.split("/"))) > 240:
        rate_text = v.get("avg_frame_rate") or "0/0"
    if rate_text in ("0/0", ""):
        raise InvalidMedia("the video stream has no frame rate")
    rate = parse_frame_rate(rate_text)
    width, height = int_or_none(v.get("width")) or 0, int_or_none(v.get("height")) or 0
    if width <= 0 or height <= 0:
        raise InvalidMedia("the video stream has no picture size")
    tags = {str(k).lower(): str(val) for k, val in (fmt.get("tags") or {}).items()}
    timecode = (v.get("tags") or {}).get("timecode")
    for s in streams:  # mov/mp4 carry it on the tmcd data stream
        timecode = timecode or (s.get("tags") or {}).get("timecode")
    timecode = timecode or tags.get("timecode")
    video = VideoInfo(
        index=int(v.get("index", 0)),
        codec=str(v.get("codec_name") or "unknown"),
        profile=v.get("profile"),
        level=int_or_none(v.get("level")),
        pix_fmt=v.get("pix_fmt"),
        width=width,
        height=height,
        frame_rate=rate,
        time_base=Fraction(v.get("time_base") or "1/90000"),
        has_b_frames=int_or_none(v.get("has_b_frames")) or 0,
        field_order=v.get("field_order"),
        color_range=v.get("color_range"),
        color_space=v.get("color_space"),
        color_transfer=v.get("color_transfer"),
        color_primaries=v.get("color_primaries"),
        bit_rate=int_or_none(v.get("bit_rate")),
        start_seconds=_float(v.get("start_time"), _float(fmt.get("start_time"))),
        rotation=_rotation(v),
        language=_tag(v, "language"),
        disposition=_disposition(v),
    )
    audio = tuple(
        AudioInfo(
            index=int(s.get("index", 0)),
            codec=str(s.get("codec_name") or "unknown"),
            profile=s.get("profile"),
            sample_rate=int_or_none(s.get("sample_rate")) or 48000,
            channels=int_or_none(s.get("channels")) or 2,
            channel_layout=s.get("channel_layout"),
            bit_rate=int_or_none(s.get("bit_rate")),
            language=_tag(s, "language"),
            title=_tag(s, "title"),
            disposition=_disposition(s),
        )
        for s in streams
        if s.get("codec_type") == "audio"
    )
    others = tuple(
        OtherStream(
            index=int(s.get("index", 0)),
            kind="attachment" if (s.get("disposition") or {}).get("attached_pic")
            else str(s.get("codec_type") or "unknown"),
            codec=_codec_name(s),
            language=_tag(s, "language"),
            title=_tag(s, "title"),
        )
        for s in streams
        if s is not v and s.get("codec_type") != "audio"
    )  # fmt: skip
    duration = _float(v.get("duration")) or _float(fmt.get("duration"))
    frames = int_or_none(v.get("nb_frames")) or 0
    expected = _float(v.get("duration")) * float(rate)
    variable = bool(frames) and frames < expected - max(VFR_MISSING_FRAMES, 0.01 * expected)
    if frames <= 0:
        frames = max(1, round(duration * float(rate)))
    format_name = str(fmt.get("format_name") or "")
    return MediaInfo(
        container=CONTAINERS.get(format_name.split(",")[0], format_name.split(",")[0]),
        format_name=format_name,
        major_brand=tags.get("major_brand"),
        duration_seconds=frames / float(rate),
        size_bytes=int_or_none(fmt.get("size")),
        format_start_seconds=_float(fmt.get("start_time")),
        video=video,
        audio=audio,
        start_timecode=timecode,
        frame_count=frames,
        encoder=(v.get("tags") or {}).get("encoder") or tags.get("encoder"),
        variable_frame_rate=variable,
        others=others,
        chapters=_chapters(data, _float(fmt.get("start_time"))),
        tags={k: v for k, v in tags.items() if k not in TECHNICAL_TAGS},
    )


def _chapters(data: dict[str, Any], file_start: float) -> tuple[Chapter, ...]:
    """ffprobe's chapters, as seconds from the start of the file (what `-ss` counts)."""
    return tuple(
        Chapter(
            start_seconds=_float(c.get("start_time")) - file_start,
            end_seconds=_float(c.get("end_time")) - file_start,
            title=_tag(c, "title"),
        )
        for c in data.get("chapters") or []
    )
