"""What runs only in the worker process: the RQ worker and scheduler, the clip job and what it uses.

`api` never imports this package (tests/core/test_layering.py). `clipper worker` runs
`run_worker` (`process.py`, with `scheduler.py`); RQ reaches the clip job (`clip_job.py`:
`content_lock.py`, `progress.py`, `workdirs.py`) through `workers.jobs.run_clip`, and the
recovery of a clip whose worker died (`recovery.py`) through the work-horse-killed handler
and `workers.jobs.on_clip_failure`.
"""

from __future__ import annotations

from workers.worker.process import ClipWorker, build_worker, run_worker

__all__ = ["ClipWorker", "build_worker", "run_worker"]
