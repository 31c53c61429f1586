"""Independent ground truth for judging clips: what the source's own frames say.

Nothing here imports `clipper`: expected frames are computed from timestamps that ffprobe
reads from the source, so a bug in the engine or in clipper.timecode cannot hide itself.
Results are cached per (path, size, mtime) because tests ask about the same source often.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
from bisect import bisect_left
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
_TIMEOUT_S = 120


def _file_arg(path: Path | str) -> str:
    """Prefix local paths with `file:` so a name starting with '-' is never an option."""
    return f"file:{Path(path).resolve()}"


def _key(path: Path | str) -> tuple[str, int, int]:
    """Cache key that changes when the file is rewritten."""
    st = Path(path).stat()
    return (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def ffprobe_json(path: Path | str, *args: str) -> dict[str, Any]:
    """Run ffprobe with JSON output and return the parsed document."""
    cmd = [FFPROBE, "-v", "error", "-of", "json", *args, _file_arg(path)]
    out = subprocess.run(cmd, capture_output=True, check=True, timeout=_TIMEOUT_S)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _ffmpeg(
    path: Path | str,
    args: str,
    *extra: str,
    level: str = "error",
    xerror: bool = False,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg on one input; `args` (space-separated) and then `extra` follow the input.

    Frames are decoded as stored (`-noautorotate`): a rotated phone video's frames keep the
    stored size, as ffprobe reports it, and are judged as they are in the file.
    """
    strict = ["-xerror"] if xerror else []
    cmd = [FFMPEG, "-nostdin", "-v", level, *strict, "-noautorotate", "-i", _file_arg(path),
           *args.split(), *extra]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, check=check, timeout=_TIMEOUT_S)


@dataclass(frozen=True)
class VideoFrames:
    """Decoded video frames of stream v:0, in presentation (output) order."""

    timestamps: tuple[Fraction, ...]  # seconds, pts x time_base, absolute (not shifted to 0)
    keyframes: tuple[int, ...]  # indices of frames the decoder flagged key_frame=1
    pict_types: tuple[str, ...]
    time_base: Fraction
    width: int
    height: int

    @property
    def count(self) -> int:
        """Number of decoded frames."""
        return len(self.timestamps)

    def relative(self) -> list[Fraction]:
        """Timestamps shifted so the first decoded frame is at 0 s."""
        t0 = self.timestamps[0]
        return [t - t0 for t in self.timestamps]


@dataclass(frozen=True)
class _Facts:
    """Everything one ffprobe call tells about a file (streams, format, all frames)."""

    format_name: str
    codecs: dict[str, str]  # codec_type -> codec_name of the first stream of that type
    video: VideoFrames
    audio_rate: int | None
    audio_start_s: Fraction | None
    audio_samples: tuple[int, ...]  # nb_samples of each decoded audio frame
    frame_duration: Fraction  # 1 / avg_frame_rate (r_frame_rate if unknown)


def _rate(text: str | None) -> Fraction:
    """ffprobe's rational rate; '0/0' (unknown, e.g. a one-frame stream) becomes 0."""
    num, _, den = (text or "0/1").partition("/")
    return Fraction(int(num), int(den)) if den and int(den) else Fraction(0)


@lru_cache(maxsize=256)
def _facts(key: tuple[str, int, int]) -> _Facts:
    path = key[0]
    data = ffprobe_json(
        path,
        "-show_format",
        "-show_streams",
        "-show_frames",
        "-show_entries",
        "frame=stream_index,best_effort_timestamp,pts,key_frame,pict_type,nb_samples:"
        "stream=index,codec_type,codec_name,time_base,width,height,sample_rate,avg_frame_rate,"
        "r_frame_rate:"
        "format=format_name",
    )
    codecs: dict[str, str] = {}
    first: dict[str, dict[str, Any]] = {}
    for st in data.get("streams", []):
        kind = str(st.get("codec_type"))
        codecs.setdefault(kind, str(st.get("codec_name")))
        first.setdefault(kind, st)
    if "video" not in first:
        raise AssertionError(f"{path}: no video stream")
    v, a = first["video"], first.get("audio")
    vtb = Fraction(v["time_base"])
    stamps: list[Fraction] = []
    keys: list[int] = []
    types: list[str] = []
    samples: list[int] = []
    audio_start: Fraction | None = None
    for fr in data.get("frames", []):
        pts = fr.get("best_effort_timestamp", fr.get("pts"))
        if fr.get("stream_index") == v["index"]:
            if pts is None:
                raise AssertionError(f"{path}: video frame {len(stamps)} has no timestamp")
            if int(fr.get("key_frame", 0)) == 1:
                keys.append(len(stamps))
            stamps.append(int(pts) * vtb)
            types.append(str(fr.get("pict_type", "?")))
        elif a is not None and fr.get("stream_index") == a["index"]:
            if audio_start is None and pts is not None:
                audio_start = int(pts) * Fraction(a["time_base"])
            samples.append(int(fr.get("nb_samples", 0)))
    video = VideoFrames(
        tuple(stamps), tuple(keys), tuple(types), vtb, int(v["width"]), int(v["height"])
    )
    rate = _rate(v.get("avg_frame_rate")) or _rate(v.get("r_frame_rate"))
    return _Facts(
        str(data["format"]["format_name"]),
        codecs,
        video,
        int(a["sample_rate"]) if a else None,
        audio_start,
        tuple(samples),
        1 / rate if rate else Fraction(0),
    )


def video_frames(path: Path | str) -> VideoFrames:
    """Timestamps, keyframe flags and size of the decoded video frames (cached)."""
    return _facts(_key(path)).video


def frame_timestamps(path: Path | str) -> list[Fraction]:
    """Decoded video frames' presentation times in seconds, in presentation order."""
    return list(video_frames(path).timestamps)


def as_fraction(seconds: Fraction | float | int | str) -> Fraction:
    """Exact value of a time as a person wrote it: 0.4 means 2/5, not the nearest double."""
    if isinstance(seconds, float):
        return Fraction(repr(seconds))
    return Fraction(seconds)


def expected_range(
    timestamps: list[Fraction],
    start_s: Fraction | float | str | None,
    end_s: Fraction | float | str | None,
    *,
    origin: Fraction | None = None,
) -> tuple[int, int]:
    """Frames [first, end) selected by the product rule.

    A time selects the first frame whose timestamp is at or after it; `end` is exclusive, so
    the last frame is the last one before `end` (FFmpeg's `trim` rule). Times count from
    `origin` (default: the first frame's timestamp). `None` means the start / the end.
    """
    t0 = timestamps[0] if origin is None else origin
    rel = sorted(t - t0 for t in timestamps)
    first = 0 if start_s is None else bisect_left(rel, as_fraction(start_s))
    end = len(rel) if end_s is None else bisect_left(rel, as_fraction(end_s))
    return first, end


def smpte_frame_number(label: str, rate: Fraction) -> int:
    """Frames counted from 00:00:00:00 to an SMPTE label; ';' means drop-frame counting.

    Written independently of clipper.timecode: drop-frame skips labels ;00 and ;01 (;00-;03 at
    59.94) at the start of every minute except minutes divisible by ten.
    """
    m = re.fullmatch(r"(\d{2}):(\d{2}):(\d{2})([:;.])(\d{2})", label)
    if not m:
        raise ValueError(f"not an SMPTE label: {label!r}")
    hh, mm, ss, sep, ff = (int(m[1]), int(m[2]), int(m[3]), m[4], int(m[5]))
    nominal = round(rate)
    count = ((hh * 60 + mm) * 60 + ss) * nominal + ff
    if sep == ";":
        if rate not in (Fraction(30000, 1001), Fraction(60000, 1001)):
            raise ValueError("drop-frame only exists at 29.97 and 59.94")
        drop = 2 if nominal == 30 else 4
        minutes = hh * 60 + mm
        count -= drop * (minutes - minutes // 10)
    return count


def smpte_label(frame_number: int, rate: Fraction, drop: bool) -> str:
    """SMPTE label of a frame count since 00:00:00:00 (inverse of smpte_frame_number)."""
    nominal = round(rate)
    if drop:
        d = 2 if nominal == 30 else 4
        per_10min = nominal * 600 - d * 9
        per_min = nominal * 60 - d
        tens, rem = divmod(frame_number, per_10min)
        extra = 0 if rem < d else d * ((rem - d) // per_min)
        frame_number += d * 9 * tens + extra
    ff = frame_number % nominal
    s = frame_number // nominal
    sep = ";" if drop else ":"
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{sep}{ff:02d}"


@dataclass(frozen=True)
class _Decoded:
    """One strict decode of the whole file: raw video planes, per-frame MD5s, errors."""

    luma: NDArray[np.uint8]  # (frames, height, width)
    hashes: tuple[str, ...]
    errors: str


@lru_cache(maxsize=48)
def _decode(key: tuple[str, int, int]) -> _Decoded:
    # One pass serves three checks: raw yuv420p frames go to stdout (hashed here, so equal
    # MD5 means bit-identical decoded pictures), audio is decoded to null, and -xerror makes
    # any decode error end the run with a message on stderr.
    vf = video_frames(key[0])
    out = _ffmpeg(
        key[0],
        "-map 0:v:0 -fps_mode passthrough -pix_fmt yuv420p -f rawvideo pipe:1 -map 0:a? -f null -",
        xerror=True,
        check=False,
    )
    errors = out.stderr.decode(errors="replace").strip()
    if out.returncode != 0 and not errors:
        errors = f"ffmpeg exited with {out.returncode}"
    w, h = vf.width, vf.height
    frame_bytes = w * h + 2 * ((w + 1) // 2) * ((h + 1) // 2)
    raw = out.stdout[: len(out.stdout) - len(out.stdout) % frame_bytes]
    frames = np.frombuffer(raw, dtype=np.uint8).reshape(-1, frame_bytes)
    hashes = tuple(hashlib.md5(f.tobytes()).hexdigest() for f in frames)
    luma = frames[:, : w * h].reshape(-1, h, w)
    luma.setflags(write=False)
    return _Decoded(luma, hashes, errors)


def decoded_frame_hashes(path: Path | str) -> list[str]:
    """MD5 of every decoded video frame (yuv420p), in output order: equal = bit-identical."""
    return list(_decode(_key(path)).hashes)


def gray_frames(path: Path | str) -> NDArray[np.uint8]:
    """All decoded video frames' 8-bit luma planes, shape (frames, height, width) (cached)."""
    return _decode(_key(path)).luma


def psnr(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    """PSNR in dB of two 8-bit images; inf when identical."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.int32) - b.astype(np.int32)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def frame_psnr(a_path: Path | str, a_index: int, b_path: Path | str, b_index: int) -> float:
    """PSNR between frame a_index of one file and frame b_index of another (luma)."""
    return psnr(gray_frames(a_path)[a_index], gray_frames(b_path)[b_index])


def best_match(
    out_frame: NDArray[np.uint8], src: NDArray[np.uint8], around: int, radius: int = 2
) -> tuple[int, float, float]:
    """Source frame nearest `around` that matches best: (index, its PSNR, best neighbour's)."""
    lo, hi = max(0, around - radius), min(len(src), around + radius + 1)
    scores = sorted(((psnr(out_frame, src[i]), i) for i in range(lo, hi)), reverse=True)
    runner_up = scores[1][0] if len(scores) > 1 else -math.inf
    return scores[0][1], scores[0][0], runner_up


def decode_errors(path: Path | str) -> str:
    """What a strict full decode (`-v error -xerror`, video and audio) prints; empty = clean."""
    try:
        return _decode(_key(path)).errors
    except (AssertionError, subprocess.CalledProcessError):
        # Not even probeable: run the plain decode to show FFmpeg's own complaint.
        out = _ffmpeg(path, "-f null -", xerror=True, check=False)
        return out.stderr.decode(errors="replace").strip() or f"exit {out.returncode}"


@dataclass(frozen=True)
class StreamDurations:
    """Decoded extent of the first video and audio streams, in seconds."""

    video_start_s: Fraction
    video_s: Fraction  # last frame end - first frame start
    audio_start_s: Fraction | None
    audio_s: Fraction | None  # decoded samples / sample rate
    audio_frame_s: Fraction | None  # longest decoded audio frame


def stream_durations(path: Path | str) -> StreamDurations:
    """Video and audio durations as a decoder sees them (frames and samples actually output)."""
    facts = _facts(_key(path))
    ts = facts.video.timestamps
    step = (ts[-1] - ts[0]) / (len(ts) - 1) if len(ts) > 1 else facts.frame_duration
    video_s = ts[-1] - ts[0] + step
    if facts.audio_rate is None or not facts.audio_samples:
        return StreamDurations(ts[0], video_s, None, None, None)
    rate = facts.audio_rate
    return StreamDurations(
        ts[0],
        video_s,
        facts.audio_start_s,
        Fraction(sum(facts.audio_samples), rate),
        Fraction(max(facts.audio_samples), rate),
    )


def container_format(path: Path | str) -> str:
    """ffprobe's format_name, e.g. 'mov,mp4,m4a,3gp,3g2,mj2', 'matroska,webm', 'mpegts'."""
    return _facts(_key(path)).format_name


def stream_codecs(path: Path | str) -> dict[str, str]:
    """codec_type -> codec_name of the first stream of each type."""
    return dict(_facts(_key(path)).codecs)


def hevc_nal_types(path: Path | str) -> dict[str, int]:
    """Count of each HEVC NAL unit type in v:0 (via trace_headers), e.g. {'CRA_NUT': 3}."""
    out = _ffmpeg(
        path, "-map 0:v:0 -c copy -bsf:v trace_headers -f null -", level="trace", check=False
    )
    counts: dict[str, int] = {}
    for line in out.stderr.decode(errors="replace").splitlines():
        if "trace_headers" not in line:
            continue
        m = re.search(r"nal_unit_type: \d+\((\w+)\)", line)
        if m:
            counts[m[1]] = counts.get(m[1], 0) + 1
    return counts


#: NAL unit types of in-band parameter sets: H.264 SPS/PPS, HEVC VPS/SPS/PPS.
_PARAMETER_SET_NALS = {"h264": "7|8", "hevc": "32|33|34"}


def strip_inband_parameter_sets(path: Path | str, out: Path) -> None:
    """Remux v:0 without in-band parameter sets, so only the sample entry's (avcC/hvcC) remain.

    A decoder that ignores in-band headers (as some players do for avc1/hvc1 tracks) sees
    what this file decodes to.
    """
    codec = stream_codecs(path)["video"]
    _ffmpeg(
        path,
        "-y -map 0:v:0 -c copy -bsf:v",
        f"filter_units=remove_types={_PARAMETER_SET_NALS[codec]}",
        _file_arg(out),
    )


def video_codec_tag(path: Path | str) -> str:
    """The video sample entry / FourCC, e.g. 'avc1', 'avc3', 'hvc1', 'hev1'."""
    streams = ffprobe_json(
        path, "-select_streams", "v:0", "-show_entries", "stream=codec_tag_string"
    )["streams"]
    return str(streams[0]["codec_tag_string"])


#: Test media audio: a 440 Hz tone with a 40 ms beep at BEEP_HZ at every whole second
#: (lavfi `sine=frequency=440:beep_factor=4`), so audio position is measurable.
BEEP_HZ = 1760
_WINDOW_S = Fraction(1, 400)  # 2.5 ms analysis step


@lru_cache(maxsize=48)
def _beeps(key: tuple[str, int, int]) -> tuple[Fraction, ...]:
    facts = _facts(key)
    if facts.audio_rate is None or facts.audio_start_s is None:
        return ()
    rate = facts.audio_rate
    out = _ffmpeg(key[0], "-map 0:a:0 -ac 1 -f f32le pipe:1")
    x = np.frombuffer(out.stdout, dtype=np.float32).astype(np.float64)
    if len(x) == 0:
        return ()
    # Demodulate at the beep frequency and average over one window: the beep's amplitude.
    t = np.arange(len(x)) / rate
    win = int(rate * _WINDOW_S)
    mag = np.abs(np.convolve(x * np.exp(-2j * np.pi * BEEP_HZ * t), np.ones(win) / win, "same"))
    on = mag > 0.5 * max(float(mag.max()), 0.02)
    onsets = np.flatnonzero(on[1:] & ~on[:-1]) + 1
    if on[0]:
        onsets = np.concatenate(([0], onsets))
    # The window is centred, so the half-amplitude crossing sits at the onset itself. Lossy
    # codecs can dip inside a beep: a rise within 100 ms of the last onset is the same beep.
    origin = facts.audio_start_s - facts.video.timestamps[0]
    kept: list[int] = []
    for i in onsets.tolist():
        if not kept or i - kept[-1] > rate // 10:
            kept.append(int(i))
    return tuple(origin + Fraction(i, rate) for i in kept)


def beep_onsets(path: Path | str) -> list[Fraction]:
    """Times of the audio beeps' starts, in seconds from the first video frame (cached)."""
    return list(_beeps(_key(path)))


def expected_beeps(
    source: Path | str, ranges: list[tuple[int, int]], *, margin_s: Fraction = Fraction(1, 20)
) -> list[Fraction]:
    """Where the source's beeps must land in a clip of source frames `ranges`, joined in order.

    Output time runs on with the video: a segment starts where the previous one's frames end.
    Beeps within `margin_s` of a segment edge are left out (they may be cut in half).
    """
    rel = video_frames(source).relative()
    step = rel[1] - rel[0]
    out: list[Fraction] = []
    offset = Fraction(0)
    for a, b in ranges:
        start = rel[a]
        end = rel[b - 1] + step
        for t in beep_onsets(source):
            if start + margin_s <= t <= end - margin_s:
                out.append(offset + t - start)
        offset += end - start
    return out
