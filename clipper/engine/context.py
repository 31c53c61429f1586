"""How one cut runs: the engine's configuration and the run context every stage receives.

The same values used to travel by hand through five layers (FFmpeg paths, cancel, timeout,
work folder, progress); `RunContext` carries them as one object instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

from clipper.settings import Settings

#: Progress callback type: (phase, fraction 0..1); phases: probing, cutting, verifying.
ProgressFn = Callable[[str, float], None]

#: Per-process wall-clock limit when the config sets none: base plus a multiple of the clip.
TIMEOUT_BASE_SECONDS = 120.0
TIMEOUT_PER_CLIP_SECOND = 10.0
#: The stall watchdog's limit when nothing else is configured (CLIPPER_FFMPEG_STALL_SECONDS).
DEFAULT_STALL_SECONDS = 60.0


class CancelFlag(Protocol):
    """Anything with `is_set()`, such as a threading.Event."""

    def is_set(self) -> bool:
        """True once the work must stop."""
        ...


@dataclass(frozen=True)
class EngineConfig:
    """How the engine runs FFmpeg."""

    ffmpeg_path: str = "ffmpeg"
    ffprobe_path: str = "ffprobe"
    threads: int = 0  # 0 = FFmpeg decides
    work_dir: Path | None = None
    timeout_seconds: float | None = None  # None = derived from the clip length
    #: Copy the span a cut needs into a local file first: "auto" for http(s) sources.
    stage: Literal["auto", "always", "never"] = "auto"
    #: Kill an FFmpeg that prints no `-progress` line for this long (None: never).
    stall_seconds: float | None = DEFAULT_STALL_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        """The engine part of the service settings."""
        return cls(
            ffmpeg_path=settings.ffmpeg_path,
            ffprobe_path=settings.ffprobe_path,
            threads=settings.ffmpeg_threads,
            work_dir=settings.work_dir,
            stall_seconds=settings.ffmpeg_stall_seconds or None,
        )

    def timeout_for(self, clip_seconds: float) -> float:
        """The wall-clock limit of each FFmpeg process of a clip this long."""
        if self.timeout_seconds is not None:
            return self.timeout_seconds
        return TIMEOUT_BASE_SECONDS + TIMEOUT_PER_CLIP_SECOND * clip_seconds


DEFAULT_CONFIG = EngineConfig()


@dataclass(frozen=True)
class RunContext:
    """What every stage of one cut runs with: config, cancel, timeout, work dir, progress.

    `timeout_seconds` None means no limit of the cut's own (a probe keeps its own limit);
    `work_dir` is the cut's private scratch folder, None before it exists.
    """

    config: EngineConfig = DEFAULT_CONFIG
    cancel: CancelFlag | None = None
    timeout_seconds: float | None = None
    work_dir: Path | None = None
    progress: ProgressFn | None = None

    @property
    def ffmpeg_path(self) -> str:
        """The ffmpeg binary."""
        return self.config.ffmpeg_path

    @property
    def ffprobe_path(self) -> str:
        """The ffprobe binary."""
        return self.config.ffprobe_path

    def report(self, phase: str, fraction: float) -> None:
        """Tell the caller how far the cut is (no-op without a progress callback)."""
        if self.progress is not None:
            self.progress(phase, fraction)

    @property
    def canceled(self) -> bool:
        """True once the caller asked the cut to stop."""
        return self.cancel is not None and self.cancel.is_set()

    @property
    def scratch(self) -> Path:
        """The cut's scratch folder (set once the cut has made it)."""
        if self.work_dir is None:
            raise RuntimeError("the run context has no work folder yet")
        return self.work_dir

    def with_cancel(self, cancel: CancelFlag | None) -> RunContext:
        """The same context stopped by `cancel` instead."""
        return replace(self, cancel=cancel)

    def with_timeout(self, timeout_seconds: float | None) -> RunContext:
        """The same context with another wall-clock limit per process."""
        return replace(self, timeout_seconds=timeout_seconds)

    def with_progress(self, progress: ProgressFn) -> RunContext:
        """The same context reporting to `progress` instead."""
        return replace(self, progress=progress)


DEFAULT_CONTEXT = RunContext()
