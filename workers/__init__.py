"""Clipper's service layer: what the API and the RQ worker share, and what only the worker runs.

Shared (imported by the API and by the worker):

- `keys` every Redis key; `records` clip records; `queues` connections, queue names, enqueueing;
  `metrics` cluster metrics in Redis; `presenter` a clip as clients see it; `cancel` cancel
  requests (and the watcher a running job polls); `webhooks` callback-URL checks, queueing
  and the delivery job; `probe_cache` probes by source version;
- `submit/` the submit path: the request model, hashing, dedup, claiming and queueing;
- `delivery/` what a webhook delivery is made of: per-client secrets and their rotation, the
  event body, the signed headers, one HTTP attempt.

Worker-only (never imported by `api`; tests/core/test_layering.py holds both rules):

- `worker/` the worker process and its scheduler, the clip job, the one-cut-per-content lock,
  progress, job work folders, and the recovery of clips whose worker died;
- `jobs` the clip job's RQ entry points. Queued jobs name their functions by dotted path, so
  `workers.jobs.run_clip`, `workers.jobs.on_clip_failure` and `workers.webhooks.deliver`
  stay where they are.
"""
