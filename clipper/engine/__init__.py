"""The FFmpeg engine: read the source, plan the cut, run FFmpeg, verify and report.

Stages by folder: `media/` (what the source is), `plan/` (what the output will be),
`ffmpeg/` (running FFmpeg), then `verify.py` and `report.py`; `facade.py` composes them and
is the public entry re-exported here (`cut`, `probe`, `EngineConfig`, `RunContext`).
"""

from clipper.engine.facade import (
    AccuracyReport,
    EngineConfig,
    FrameRange,
    MediaInfo,
    ProgressFn,
    RunContext,
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
    "RunContext",
    "cut",
    "keyframes_near",
    "output_extension",
    "probe",
    "reencode_video_args",
    "resolve_ranges",
]
