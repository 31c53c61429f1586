"""Encoder settings and output formats: pure functions of the probed source and the preset.

`reencode_video_args(media)` is the single place that decides how Clipper re-encodes video;
the benchmark uses it for its full re-encode baseline so both sides encode alike.
"""

from __future__ import annotations

from typing import Any

from clipper.engine.media.model import AudioInfo, MediaInfo
from clipper.spec import Preset

#: x264/x265 speed preset for re-encoded parts: the parts are short, quality comes from CRF.
X264_PRESET = "veryfast"
#: Constant-rate factor close to visually lossless, so re-encoded frames sit next to copied
#: source frames without a visible step (measured ~45-50 dB PSNR on test sources).
X264_CRF = 17
X265_CRF = 19
#: Audio bit rate when the source does not state one.
DEFAULT_AUDIO_BITRATE = 128_000

#: Source codecs Clipper can smart-cut (re-encode the ends, copy the middle).
SMART_CUT_CODECS = frozenset({"h264", "hevc"})

_VIDEO_ENCODERS = {
    "h264": "libx264",
    "hevc": "libx265",
    "mpeg2video": "mpeg2video",
    "mpeg4": "mpeg4",
    "prores": "prores_ks",
}
_AUDIO_ENCODERS = {
    "aac": "aac",
    "mp3": "libmp3lame",
    "ac3": "ac3",
    "eac3": "eac3",
    "mp2": "mp2",
    "opus": "libopus",
    "vorbis": "libvorbis",
    "flac": "flac",
    "pcm_s16le": "pcm_s16le",
    "pcm_s24le": "pcm_s24le",
    "pcm_s16be": "pcm_s16be",
    "pcm_s24be": "pcm_s24be",
}
_H264_PROFILES = {
    "baseline": "baseline",
    "constrained baseline": "baseline",
    "main": "main",
    "high": "high",
    "high 10": "high10",
    "high 4:2:2": "high422",
    "high 4:4:4 predictive": "high444",
}
#: Which audio codecs each container accepts without trouble.
_CONTAINER_AUDIO = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "opus", "flac"},
    ".mov": {"aac", "mp3", "ac3", "eac3", "pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_s24be"},
    ".mkv": set(_AUDIO_ENCODERS),
    ".ts": {"aac", "mp3", "ac3", "eac3", "mp2", "opus"},
}
_MUXERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".ts": "mpegts"}


def output_extension(media: MediaInfo, preset: Preset) -> str:
    """The file extension (and so the container) a cut of `media` with `preset` gets."""
    if preset is Preset.MP4:
        return ".mp4"
    if media.container == "mov":
        return ".mp4" if media.is_mp4 else ".mov"
    if media.container == "matroska":
        return ".mkv"
    if media.container == "mpegts":
        return ".ts"
    return ".mov"  # MXF and the rest: QuickTime carries broadcast codecs and timecode


def muxer(extension: str) -> str:
    """FFmpeg muxer name for an output extension."""
    return _MUXERS[extension]


def _color_args(media: MediaInfo) -> dict[str, Any]:
    v = media.video
    pairs = {
        "color_primaries": v.color_primaries,
        "color_trc": v.color_transfer,
        "colorspace": v.color_space,
        "color_range": v.color_range,
    }
    return {k: val for k, val in pairs.items() if val and val != "unknown"}


#: x264 SEI settings that shape the SPS/PPS (reference count, B-frame reordering, entropy
#: coder, weighted prediction, 8x8 transform, initial QP via CRF, chroma QP offset via
#: psy/trellis). Re-encoded parts that reuse them get parameter sets equal to the source's,
#: so even a decoder that only reads the MP4's stored (head) parameter sets decodes the
#: copied middle correctly. SEI name → x264 option name.
_X264_PARAMETER_SET_OPTIONS = {
    "cabac": "cabac",
    "ref": "ref",
    "bframes": "bframes",
    "b_pyramid": "b-pyramid",
    "weightb": "weightb",
    "weightp": "weightp",
    "8x8dct": "8x8dct",
    "constrained_intra": "constrained-intra",
    "psy": "psy",
    "psy_rd": "psy-rd",
    "trellis": "trellis",
    "crf": "crf",
}


def x264_params(sei_options: str) -> dict[str, str]:
    """The parameter-set-shaping subset of an x264 SEI settings string, as x264 options."""
    found = dict(item.split("=", 1) for item in sei_options.split() if "=" in item)
    # ':' separates options inside -x264-params; x264 takes "1.00,0.00" for "1.00:0.00".
    return {
        name: found[key].replace(":", ",")
        for key, name in _X264_PARAMETER_SET_OPTIONS.items()
        if key in found
    }


def _level_text(level: int | None) -> str | None:
    if not level or level <= 0:
        return None
    return f"{level // 10}.{level % 10}"


def reencode_video_args(media: MediaInfo, preset: Preset = Preset.ORIGINAL) -> dict[str, Any]:
    """ffmpeg-python output options for re-encoding this source's video (parts or whole)."""
    v = media.video
    if preset is Preset.MP4 or v.codec not in _VIDEO_ENCODERS:
        return {
            "c:v": "libx264",
            "preset": X264_PRESET,
            "crf": X264_CRF,
            "profile:v": "high",
            "pix_fmt": "yuv420p",
            **_color_args(media),
        }
    args: dict[str, Any] = {"c:v": _VIDEO_ENCODERS[v.codec], **_color_args(media)}
    if v.pix_fmt:
        args["pix_fmt"] = v.pix_fmt
    top_first = _top_field_first(v.field_order)
    if v.codec == "h264":
        args.update(_x264_args(media, top_first))
    elif v.codec == "hevc":
        args.update(preset=X264_PRESET, crf=X265_CRF, **{"x265-params": "log-level=error"})
    else:
        args["q:v"] = 2
        if top_first is not None and v.codec == "mpeg2video":
            args.update({"flags": "+ildct+ilme", "top": 1 if top_first else 0})
    return args


def _x264_args(media: MediaInfo, top_first: bool | None) -> dict[str, Any]:
    """x264 settings like the source's: the same profile and level keep the head's SPS
    compatible with the copied middle's (the joined MP4 carries the head's parameter sets)."""
    v = media.video
    args: dict[str, Any] = {"preset": X264_PRESET, "crf": X264_CRF}
    params = x264_params(media.x264_options) if media.x264_options else {}
    if "crf" in params:
        # The source's own CRF: the same initial QP in the PPS, similar quality.
        args["crf"] = params.pop("crf")
    if top_first is not None:
        # Interlaced like the source, or the parts would be progressive beside copied
        # interlaced ones (FFMPEG_NOTES: x264 needs interlaced=1 and tff/bff).
        params.update({"interlaced": "1", "tff" if top_first else "bff": "1"})
        args["flags"] = "+ildct+ilme"
    if params:
        args["x264-params"] = ":".join(f"{k}={val}" for k, val in params.items())
    if profile := _H264_PROFILES.get((v.profile or "").lower()):
        args["profile:v"] = profile
    if level := _level_text(v.level):
        args["level:v"] = level
    return args


def _top_field_first(field_order: str | None) -> bool | None:
    """True/False for an interlaced source shown top/bottom field first; None: progressive.

    ffprobe's field orders: tt and bt show the top field first, bb and tb the bottom one.
    """
    return {"tt": True, "bt": True, "bb": False, "tb": False}.get(field_order or "")


def video_codec_written(media: MediaInfo, preset: Preset) -> str:
    """The codec of the output's video: the source's, unless a preset or an encoder Clipper
    does not have for it makes it H.264 (see `reencode_video_args`)."""
    if preset is Preset.MP4 or media.video.codec not in _VIDEO_ENCODERS:
        return "h264"
    return media.video.codec


#: Codec names (as ffprobe reports them) of the audio encoders Clipper uses.
_ENCODED_AUDIO_CODECS = {encoder: codec for codec, encoder in _AUDIO_ENCODERS.items()}


def audio_codec_written(audio: AudioInfo, extension: str, preset: Preset) -> str:
    """The codec of one re-encoded output audio stream."""
    encoder = "aac" if preset is Preset.MP4 else audio_encoder(audio, extension)
    return _ENCODED_AUDIO_CODECS[encoder]


def audio_encoder(audio: AudioInfo, extension: str) -> str:
    """Encoder for one audio stream: the source's codec where the container takes it."""
    allowed = _CONTAINER_AUDIO.get(extension, {"aac"})
    if audio.codec in _AUDIO_ENCODERS and audio.codec in allowed:
        return _AUDIO_ENCODERS[audio.codec]
    return "aac"


def audio_args(media: MediaInfo, extension: str, preset: Preset) -> dict[str, Any]:
    """ffmpeg-python output options re-encoding every audio stream like the source."""
    args: dict[str, Any] = {}
    for j, a in enumerate(media.audio):
        encoder = "aac" if preset is Preset.MP4 else audio_encoder(a, extension)
        args[f"c:a:{j}"] = encoder
        if not encoder.startswith(("pcm_", "flac")):
            args[f"b:a:{j}"] = a.bit_rate or DEFAULT_AUDIO_BITRATE
        args[f"ar:a:{j}"] = a.sample_rate
        args[f"ac:a:{j}"] = a.channels
    return args
