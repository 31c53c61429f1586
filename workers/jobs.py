"""The clip job at the dotted path queued jobs name: `workers.jobs.run_clip`, and its failure
callback `workers.jobs.on_clip_failure`.

RQ stores the function's dotted path in every job, and jobs queued by this and earlier
versions name this one, so it stays here; new jobs name it too (a worker of the previous
version may still take them during an upgrade). The job itself: `workers.worker.clip_job`;
the callback (a clip whose worker died): `workers.worker.recovery`.
"""

from __future__ import annotations

from workers.worker.clip_job import run_clip
from workers.worker.recovery import on_clip_failure

__all__ = ["on_clip_failure", "run_clip"]
