"""The output's stream layout: which streams a cut writes, in which order, with what shape.

Planned from the source and the request, before any FFmpeg runs; the mux writes what it
says (languages, titles, dispositions, rotation) and verification reads the written file
back against it. A value the output container cannot carry is left out (None) and listed
in `not_kept`, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from clipper.engine.ffmpeg.encoders import audio_codec_written, video_codec_written
from clipper.engine.media.model import AudioInfo, Chapter, MediaInfo
from clipper.spec import Preset

#: What each output container carries, of the stream facts Clipper keeps (FFmpeg 5.1).
ROTATION_CONTAINERS = frozenset({".mp4", ".mov"})  # the display matrix of the tkhd box
TITLE_CONTAINERS = frozenset({".mkv"})  # the mov muxer writes no track names, MPEG-TS none
DISPOSITION_CONTAINERS = frozenset({".mp4", ".mov", ".mkv"})  # MPEG-TS has no flags
#: The mov muxer (QuickTime mode) keeps `default` (the tkhd enabled flag) but not `forced`.
FORCED_CONTAINERS = frozenset({".mp4", ".mkv"})

#: ffprobe's name for the codec of the timecode track of MP4/MOV outputs.
TIMECODE_TRACK = "tmcd"


@dataclass(frozen=True)
class VideoLayout:
    """The output's one video stream. None: not promised (the source does not say)."""

    codec: str
    width: int
    height: int
    rotation: int
    profile: str | None
    pix_fmt: str | None
    field_order: str | None
    color_primaries: str | None
    color_transfer: str | None
    color_space: str | None


@dataclass(frozen=True)
class AudioLayout:
    """One output audio stream, and the source stream it comes from."""

    source_index: int
    codec: str
    sample_rate: int
    channels: int
    channel_layout: str | None
    language: str | None
    title: str | None
    disposition: tuple[str, ...] | None  # None: the container has no dispositions


@dataclass(frozen=True)
class DroppedStream:
    """A source stream the output does not carry, and why."""

    index: int
    kind: str
    codec: str
    reason: str


def _drop_reason(
    kind: str, codec: str, extension: str, *, timecode_track: bool, has_chapters: bool
) -> str | None:
    """Why a stream other than the cut video and audio is not in the output (None: it is)."""
    if kind == "data" and codec == "bin_data" and has_chapters:
        return None  # an MP4/MOV chapter track: its chapters are re-timed into the clip
    if kind == "data" and codec == "tmcd":
        if timecode_track:
            return None  # written anew, restamped to the clip's first frame
        if extension in (".mp4", ".mov"):
            return "a one-frame MP4/MOV clip gets no timecode track (FFmpeg cannot tell its rate)"
        return f"a {extension} clip has no timecode track"
    reasons = {
        "subtitle": "subtitle tracks are not carried into clips yet",
        "attachment": "attachments (fonts, cover art) are not carried into clips",
        "video": "only the first video stream is cut",
    }
    return reasons.get(kind, f"{kind} streams are not carried into clips")


def dropped_streams(
    media: MediaInfo, extension: str, *, timecode_track: bool
) -> tuple[DroppedStream, ...]:
    """Every source stream the output will not hold, with the reason (none dropped silently)."""
    dropped = []
    for o in media.others:
        reason = _drop_reason(
            o.kind, o.codec, extension,
            timecode_track=timecode_track, has_chapters=bool(media.chapters),
        )  # fmt: skip
        if reason is not None:
            dropped.append(DroppedStream(o.index, o.kind, o.codec, reason))
    return tuple(dropped)


@dataclass(frozen=True)
class OutputLayout:
    """Every stream of the output in order: video, the audio tracks, the timecode track."""

    video: VideoLayout
    audio: tuple[AudioLayout, ...]
    timecode_track: bool
    extension: str = ".mp4"
    #: What the source has that this output cannot carry ("audio 1 title: …").
    not_kept: tuple[str, ...] = ()
    #: Source streams the output does not hold, each with its reason.
    dropped: tuple[DroppedStream, ...] = ()
    #: The clip's chapters, re-timed (set by the plan once the segments are known).
    chapters: tuple[Chapter, ...] = ()

    @property
    def chapter_track(self) -> bool:
        """MP4/MOV keep chapters in a text track of their own (listed as a data stream)."""
        return bool(self.chapters) and self.extension in (".mp4", ".mov")

    @property
    def kinds(self) -> list[str]:
        """The codec types of the output's streams, in order (the mov muxer writes the
        chapter track before the timecode track)."""
        extra = ["data"] * (int(self.chapter_track) + int(self.timecode_track))
        return ["video"] + ["audio"] * len(self.audio) + extra


def _known(value: str | None) -> str | None:
    return None if value in (None, "", "unknown") else value


def _video(media: MediaInfo, preset: Preset, extension: str) -> VideoLayout:
    v = media.video
    codec = video_codec_written(media, preset)
    # The source's own codec keeps its profile and pixel format; anything else is H.264 High.
    same = codec == v.codec and preset is Preset.ORIGINAL
    return VideoLayout(
        codec=codec,
        width=v.width,
        height=v.height,
        rotation=v.rotation if extension in ROTATION_CONTAINERS else 0,
        profile=v.profile if same else "High",
        pix_fmt=v.pix_fmt if same else "yuv420p",
        # A preset's re-encode is progressive whatever the source (no field order promised).
        field_order=_known(v.field_order) if same else None,
        color_primaries=_known(v.color_primaries),
        color_transfer=_known(v.color_transfer),
        color_space=_known(v.color_space),
    )


def _dispositions(media: MediaInfo, extension: str) -> list[tuple[str, ...] | None]:
    """Each audio track's dispositions as the output container will hold them (measured):
    MP4/MOV enable the first track of a kind when no track of it is default."""
    if extension not in DISPOSITION_CONTAINERS:
        return [None for _ in media.audio]
    flags = [
        tuple(f for f in a.disposition if f != "forced" or extension in FORCED_CONTAINERS)
        for a in media.audio
    ]
    if extension in (".mp4", ".mov") and flags and not any("default" in f for f in flags):
        flags[0] = tuple(sorted({*flags[0], "default"}))
    return list(flags)


#: The layout an encoder picks for a channel count (FFmpeg's default layouts).
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo"}


def _channel_layout(a: AudioInfo, copied: bool) -> str | None:
    """The layout the output keeps: the source's when copied or when it is the default for
    its channel count (what `-ac N` gives); otherwise not promised (see `plan_layout`)."""
    layout = _known(a.channel_layout)
    return layout if copied or layout == DEFAULT_LAYOUTS.get(a.channels) else None


def _audio(a: AudioInfo, codec: str, extension: str, *, copied: bool) -> AudioLayout:
    return AudioLayout(
        source_index=a.index,
        codec=codec,
        sample_rate=a.sample_rate,
        channels=a.channels,
        channel_layout=_channel_layout(a, copied),
        language=_known(a.language),
        title=a.title if extension in TITLE_CONTAINERS else None,
        disposition=None,
    )


def _not_kept(media: MediaInfo, extension: str) -> tuple[str, ...]:
    lost = []
    if media.video.rotation and extension not in ROTATION_CONTAINERS:
        lost.append(f"video rotation {media.video.rotation}: {extension} has no display matrix")
    for j, a in enumerate(media.audio):
        if a.title and extension not in TITLE_CONTAINERS:
            lost.append(f"audio {j} title {a.title!r}: {extension} has no track titles")
        if a.disposition and extension not in DISPOSITION_CONTAINERS:
            lost.append(f"audio {j} disposition {','.join(a.disposition)}: {extension} has none")
        elif "forced" in a.disposition and extension not in FORCED_CONTAINERS:
            lost.append(f"audio {j} forced flag: {extension} has none")
    return tuple(lost)


def plan_layout(
    media: MediaInfo, preset: Preset, extension: str, *, copies_audio: bool, frames: int = 2
) -> OutputLayout:
    """The layout a cut of `media` with `preset` into `extension` writes (pure).

    `frames` is the clip's length: the mov muxer writes no timecode track for a one-frame
    clip (it takes the track's rate from the video's average frame rate, which one frame
    does not give: "Valid timecode frame rate must be specified").
    """
    lost = list(_not_kept(media, extension))
    lost += [
        f"audio {j} channel layout {a.channel_layout}: re-encoded with the default layout "
        f"for {a.channels} channels"
        for j, a in enumerate(media.audio)
        if not copies_audio and _known(a.channel_layout) and _channel_layout(a, False) is None
    ]
    timecode = bool(media.start_timecode) and extension in (".mp4", ".mov")
    if timecode and frames < 2:
        timecode = False
        lost.append("timecode track: FFmpeg writes none for a one-frame MP4/MOV clip")
    audio = tuple(
        replace(
            _audio(
                a,
                a.codec if copies_audio else audio_codec_written(a, extension, preset),
                extension,
                copied=copies_audio,
            ),
            disposition=flags,
        )
        for a, flags in zip(media.audio, _dispositions(media, extension), strict=True)
    )
    return OutputLayout(
        video=_video(media, preset, extension),
        audio=audio,
        timecode_track=timecode,
        extension=extension,
        not_kept=tuple(lost),
        dropped=dropped_streams(media, extension, timecode_track=timecode),
    )
