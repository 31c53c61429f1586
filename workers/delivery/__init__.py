"""Webhook delivery: per-client signing secrets and their rotation, events, signed headers.

- `secrets` each client's Standard Webhooks secret in Redis, rotated with an overlap;
- `events` event types, ids and the JSON body a receiver gets;
- `signatures` the `webhook-*` headers (Standard Webhooks) and the deprecated `Clipper-*` ones;
- `attempt` one HTTP POST and what counts as delivered.

The RQ job that ties them together stays `workers.webhooks.deliver` (queued jobs name it).
"""
