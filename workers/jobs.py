"""The clip job at the dotted path queued jobs name: `workers.jobs.run_clip`.

RQ stores the function's dotted path in every job, and jobs queued by this and earlier
versions name this one, so it stays here; new jobs name it too (a worker of the previous
version may still take them during an upgrade). The job itself: `workers.worker.clip_job`.
"""

from __future__ import annotations

from workers.worker.clip_job import run_clip

__all__ = ["run_clip"]
