"""What runs only in the worker process: the RQ worker, the clip job, its lock and progress.

`api` never imports this package (tests/core/test_layering.py). `clipper worker` runs
`run_worker`; RQ reaches the clip job through `workers.jobs.run_clip`.
"""

from __future__ import annotations

from workers.worker.process import ClipWorker, build_worker, run_worker

__all__ = ["ClipWorker", "build_worker", "run_worker"]
