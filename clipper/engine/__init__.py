"""The FFmpeg engine: read the source (`media/`), plan the cut (`plan/`), run FFmpeg (`ffmpeg/`),
verify and report; `facade.py` is the public entry (`cut`, `probe`, `EngineConfig`)."""

from clipper.engine.facade import (
    AccuracyReport,
    EngineConfig,
    FrameRange,
    MediaInfo,
    ProgressFn,
    cut,
    keyframes_near,
    output_extension,
    probe,
    reencode_video_args,
    resolve_ranges,
)

__all__ = [
    "AccuracyReport",
    "EngineConfig",
    "FrameRange",
    "MediaInfo",
    "ProgressFn",
    "cut",
    "keyframes_near",
    "output_extension",
    "probe",
    "reencode_video_args",
    "resolve_ranges",
]
