"""Turning planned parts into FFmpeg command lines: video parts, the join, the final mux.

Each video part becomes a video-only MPEG-TS file (no edit lists, Annex B with in-band
parameter sets, which the concat demuxer joins cleanly for H.264 and HEVC alike). The
final mux joins the parts with the concat demuxer (explicit durations, so no container
guesswork), takes audio from the source once per segment, and writes the output container.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg as ffmpeg_python

from clipper.engine.context import EngineConfig
from clipper.engine.ffmpeg import inputs
from clipper.engine.ffmpeg.encoders import audio_args, muxer, reencode_video_args
from clipper.engine.media.model import AudioInfo, MediaInfo
from clipper.engine.plan.cutplan import CutPlan
from clipper.engine.plan.cutpoints import floor_seconds
from clipper.engine.plan.parts import Part, SegmentPlan


def seek_seconds(media: MediaInfo, index: int) -> float | None:
    """`-ss` for an input seek that lands on frame `index` (None for the first frame).

    Half a frame early: accurate seek (re-encode) drops frames before it, and copy mode with
    `-copypriorss 0` starts at the first keyframe at or after it. Aiming exactly at the
    frame's timestamp risks rounding to the frame before or after.
    """
    if index <= 0:
        return None
    half = Fraction(1, 2) / media.frame_rate
    return float(max(Fraction(0), media.frame_pts(index) - half))


def direct_copy_argv(
    cut: CutPlan, output: Path, ffmpeg_path: str, metadata: Path | None = None
) -> list[str]:
    """Fast mode in one process: video and audio stream-copied straight into the output.

    The video input's `-t` ends the copy at a packet boundary: copy mode compares each
    packet's DTS with it, so it is set between the DTS of the last packet wanted and the
    first one not wanted (from the packet listing). The audio comes from a second input of
    the same source with its own `-ss`/`-t`, so it ends with the video's last frame.
    The plan's `strip_units` ("7|8|9") removes those NAL unit types from the video packets.
    """
    source, media, plan = cut.source, cut.media, cut.segments[0]
    assert cut.direct_copy is not None, "not a one-process copy"
    video_seconds, strip_units = cut.direct_copy.video_seconds, cut.strip_units
    start = plan.delivered.start
    ss = floor_seconds(media, start) if start > 0 else None
    v_opts: dict[str, Any] = {} if ss is None else {"ss": f"{ss:.6f}"}
    if video_seconds is not None:
        v_opts["t"] = f"{video_seconds:.6f}"
    streams: list[Any] = [inputs.source_input(source, **v_opts)[f"{media.video.index}"]]
    if media.audio:
        seconds = Fraction(plan.delivered.count) / media.frame_rate
        a_opts: dict[str, Any] = {"t": f"{float(seconds):.6f}"}
        if ss is not None:
            a_opts["ss"] = f"{ss:.6f}"
        streams.append(inputs.source_input(source, **a_opts)["a"])
    out: dict[str, Any] = {"c": "copy", "copypriorss": 0, "f": muxer(cut.extension)}
    if strip_units:
        # NAL types the MPEG-TS muxer added (AUD, in-band parameter sets) to a staged copy of
        # an MP4/MKV source: without them the packets are the source's, bit for bit.
        out["bsf:v"] = f"filter_units=remove_types={strip_units}"
    out.update(_container_args(media, cut.extension, cut.start_timecode))
    node = ffmpeg_python.output(*streams, inputs.output_url(output), **out)
    argv = inputs.compile_argv(node, ffmpeg_path=ffmpeg_path, output_args=layout_args(cut))
    # The source's own tags come with it (input 0); chapters only re-timed, from our file.
    return with_metadata_input(argv, metadata, tags=False)


def metadata_text(cut: CutPlan) -> str:
    """An FFMETADATA1 file: the source's descriptive tags and the clip's chapters."""
    def esc(text: str) -> str:
        return "".join("\\" + ch if ch in "=;#\\\n" else ch for ch in text)

    lines = [";FFMETADATA1"]
    lines += [f"{esc(k)}={esc(v)}" for k, v in sorted(cut.media.tags.items())]
    for c in cut.layout.chapters:
        lines += ["[CHAPTER]", "TIMEBASE=1/1000000", f"START={round(c.start_seconds * 1e6)}",
                  f"END={round(c.end_seconds * 1e6)}"]  # fmt: skip
        if c.title:
            lines.append(f"title={esc(c.title)}")
    return "\n".join(lines) + "\n"


def with_metadata_input(argv: list[str], metadata: Path | None, *, tags: bool) -> list[str]:
    """`argv` with our FFMETADATA file as its last input, its chapters (and, with `tags`,
    its global tags) mapped to the output; without one, no chapters at all (a source's own
    would come through un-timed)."""
    at = max(i for i, arg in enumerate(argv) if arg == "-i") + 2
    if metadata is None:
        return [*argv[:at], "-map_chapters", "-1", *argv[at:]]
    index = argv.count("-i")
    extra = ["-f", "ffmetadata", "-protocol_whitelist", "file", "-i", inputs.output_url(metadata)]
    maps = ["-map_chapters", str(index)] + (["-map_metadata", str(index)] if tags else [])
    return [*argv[:at], *extra, *maps, *argv[at:]]


def layout_args(cut: CutPlan) -> list[str]:
    """What the plan's layout says of each stream, written explicitly: the join of parts and
    the concat filter of several segments carry no stream metadata of their own."""
    layout = cut.layout
    args = []
    if layout.video.rotation:
        # The mov muxer turns this tag into the track's display matrix (FFmpeg 5.1 has no
        # -display_rotation); ffprobe reports the matrix as this angle again.
        args += ["-metadata:s:v:0", f"rotate={layout.video.rotation % 360}"]
    for j, a in enumerate(layout.audio):
        args += [f"-metadata:s:a:{j}", f"language={a.language or 'und'}"]
        if a.title:
            args += [f"-metadata:s:a:{j}", f"title={a.title}"]
        if a.disposition is not None:
            args += [f"-disposition:a:{j}", "+".join(a.disposition) or "0"]
    return args


def _container_args(media: MediaInfo, extension: str, start_timecode: str | None) -> dict[str, Any]:
    if extension == ".mkv" and start_timecode:
        # Matroska keeps the timecode as a tag: restamped, not the source's own copied over.
        return {"metadata": f"timecode={start_timecode}"}
    if extension not in (".mp4", ".mov"):
        return {}
    out: dict[str, Any] = {
        "movflags": "+faststart",
        "video_track_timescale": track_timescale(media),
    }
    if start_timecode:
        out["metadata"] = f"timecode={start_timecode}"
    return out


def part_argv(cut: CutPlan, part: Part, path: Path, config: EngineConfig) -> list[str]:
    """Command line for one video-only part written as MPEG-TS.

    MPEG-TS inputs seek by byte position and land anywhere in a GOP (decoding from there
    gives broken frames), so for them the input seek aims just before the keyframe at or
    before the part's start and an output seek skips to the part's first frame; MP4/MOV and
    MKV seek to a keyframe themselves.
    """
    source, media = cut.source, cut.media
    seek_key = max((k for k in cut.keyframes if k <= part.start), default=0)
    in_opts: dict[str, Any] = {}
    out: dict[str, Any] = {"map": f"0:{media.video.index}", "an": None, "sn": None, "dn": None}
    first = part.start
    if media.container == "mpegts" and part.mode == "encode":
        first = min(seek_key, part.start)
        if part.start > first:
            out["ss"] = f"{float(Fraction(part.start - first) / media.frame_rate):.6f}"
    ss = seek_seconds(media, first)
    if ss is not None:
        in_opts["ss"] = f"{ss:.6f}"
    if part.mode == "encode":
        # Frames as stored: decoding would otherwise turn a rotated source's frames upright,
        # and re-encoded parts would not match the copied ones (the mux writes the rotation).
        in_opts["noautorotate"] = None
    stream = inputs.source_input(source, **in_opts)
    if part.mode == "copy":
        # Drop packets before the seek point: the part starts at the keyframe itself.
        out.update({"c:v": "copy", "copypriorss": 0})
        if part.drop_leading and media.video.codec == "hevc":
            # HEVC RASL pictures (NAL types 8, 9) of an open-GOP keyframe reference frames
            # before the clip: undecodable, and mid-stream (a later segment) a source of errors.
            out["bsf:v"] = "filter_units=remove_types=8|9"
        if part.end < media.frame_count:
            # Packet count, not time: copy cuts compare DTS, and with B-frames `-t` keeps
            # extra frames. Whole closed GOPs hold exactly their own frames in decode order.
            out["frames:v"] = part.count if part.packets is None else part.packets
    else:
        out.update(reencode_video_args(media, cut.spec.preset))
        out["vf"] = frame_clock(media.frame_rate)
        out["frames:v"] = part.count
        if config.threads:
            out["threads"] = config.threads
    out["f"] = "mpegts"
    node = stream.output(inputs.output_url(path), **out)
    return inputs.compile_argv(node, ffmpeg_path=config.ffmpeg_path)


def frame_clock(rate: Fraction) -> str:
    """A filter chain that times the decoded frames by their count: frame N at N / rate.

    The accurate seek starts half a frame before the part's first frame, so every source
    frame lies (k + 0.5) frames after it. With exact source timestamps the encoder's 1/rate
    clock rounds all of them alike; Matroska's millisecond timestamps fall a hair either side
    of the half, and the rounding then gave one frame the next one's slot (a hole and a
    doubled timestamp in the part, measured on a 30 fps MKV). Counting frames instead is
    exact, whatever the source's timestamps.
    """
    return f"settb=AVTB,setpts=N*{rate.denominator}/{rate.numerator}/TB"


def track_timescale(media: MediaInfo) -> int:
    """MP4/MOV video timescale: the source's when every frame time fits it exactly."""
    denominator = media.video.time_base.denominator
    numerator = media.frame_rate.numerator
    return denominator if denominator % numerator == 0 else numerator


def concat_list(parts: list[tuple[Path, int, int]], rate: Fraction) -> str:
    """ffconcat text for our own part files (path, frames, lead-in frames), exact durations.

    The concat demuxer places a file by its start time, which MPEG-TS takes from the first
    packet: for a part that opens with a keyframe followed by leading pictures, that is the
    keyframe, `lead_in` frames after the part's first shown frame. Moving those frames'
    duration to the previous entry puts every frame where it belongs.
    """
    frames = [count for _, count, _ in parts]
    for i, (_, _, lead_in) in enumerate(parts):
        if lead_in and i > 0:
            frames[i - 1] += lead_in
            frames[i] -= lead_in
    lines = ["ffconcat version 1.0"]
    for (path, _, _), count in zip(parts, frames, strict=True):
        quoted = str(path.resolve()).replace("'", "'\\''")
        lines.append(f"file 'file:{quoted}'")
        lines.append(f"duration {float(Fraction(count) / rate):.6f}")
    return "\n".join(lines) + "\n"


def mux_argv(
    cut: CutPlan, list_path: Path, output: Path, ffmpeg_path: str, metadata: Path | None = None
) -> list[str]:
    """Final mux: joined video parts + audio cut from the source per segment."""
    media, extension = cut.media, cut.extension
    video = ffmpeg_python.input(
        inputs.output_url(list_path),
        f="concat",
        safe=0,
        protocol_whitelist="file",
        format_whitelist="concat,mpegts",
    )
    streams: list[Any] = [video["v:0"], *_audio_streams(cut)]
    out: dict[str, Any] = {"c:v": "copy", "f": muxer(extension)}
    if media.audio:
        if cut.copies_only and len(cut.segments) == 1:
            # Without it a copy keeps audio from the demuxer's seek point: MKV seeks to the
            # video keyframe (up to a GOP early), MPEG-TS to a byte position.
            out.update({"c:a": "copy", "copypriorss:a": 0})
        else:
            out.update(audio_args(media, extension, cut.spec.preset))
    out.update(_container_args(media, extension, cut.start_timecode))
    if extension in (".mp4", ".mov") and (tag := inband_sample_entry(media, cut.segments)):
        out["tag:v"] = tag
    node = ffmpeg_python.output(*streams, inputs.output_url(output), **out)
    argv = inputs.compile_argv(node, ffmpeg_path=ffmpeg_path, output_args=layout_args(cut))
    # The join's first input is our concat list: the source's tags come from our file.
    return with_metadata_input(argv, metadata, tags=True)


def _audio_streams(cut: CutPlan) -> list[Any]:
    """Every audio track, cut from the source once per segment and joined in order."""
    media = cut.media
    sources, lengths = [], []
    for plan in cut.segments:
        start = Fraction(media.frame_pts(plan.delivered.start))
        seconds = Fraction(plan.delivered.count) / media.frame_rate
        opts: dict[str, Any] = {"t": f"{float(seconds):.6f}"}
        if start > 0:
            opts["ss"] = f"{float(start):.6f}"
        sources.append(inputs.source_input(cut.source, **opts))
        lengths.append(f"{float(seconds):.6f}")
    copy = cut.copies_only and len(sources) == 1
    streams: list[Any] = []
    for j in range(len(media.audio)):
        pieces = [i[f"a:{j}"] for i in sources]
        if not copy:
            # Sources whose audio stops before the video still give a clip whose audio lasts
            # as long as its video: each segment's audio, then silence, cut to its length.
            # (apad cannot pad a segment past the audio's end: it gets no frame to pad.)
            pieces = [
                ffmpeg_python.concat(p, _silence(media.audio[j], d), v=0, a=1).filter(
                    "atrim", duration=d
                )
                for p, d in zip(pieces, lengths, strict=True)
            ]
        streams.append(pieces[0] if len(pieces) == 1 else ffmpeg_python.concat(*pieces, v=0, a=1))
    return streams


#: FFmpeg's default channel layout for each channel count.
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def _silence(audio: AudioInfo, seconds: str) -> Any:
    """Silence shaped like `audio`, `seconds` long (a lavfi source of our own making)."""
    layout = _LAYOUTS.get(audio.channels, f"{int(audio.channels)}c")
    spec = f"anullsrc=r={int(audio.sample_rate)}:cl={layout}"
    return ffmpeg_python.input(spec, f="lavfi", t=seconds)["a"]


def inband_sample_entry(media: MediaInfo, plans: list[SegmentPlan]) -> str | None:
    """ "avc3"/"hev1" when copied and re-encoded parts may carry different parameter sets.

    An avc1/hvc1 track declares that its sample entry holds the parameter sets, and some
    players use only those: right for the first part, wrong for a copied part after a
    re-encoded head. With the source's x264 settings reused the sets are equal (avc1 stays);
    otherwise avc3/hev1 declare the in-band parameter sets every part carries.
    """
    modes = {p.mode for plan in plans for p in plan.parts}
    if modes != {"copy", "encode"}:
        return None
    if media.video.codec == "h264" and not media.x264_options:
        return "avc3"
    if media.video.codec == "hevc":
        return "hev1"
    return None
