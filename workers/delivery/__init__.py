"""Webhook delivery: per-client signing secrets and their rotation.

- `secrets` each client's Standard Webhooks secret in Redis, rotated with an overlap.

The RQ job that delivers stays `workers.webhooks.deliver` (queued jobs name it).
"""
