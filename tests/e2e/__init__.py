"""The whole stack as users run it: API, workers, webhooks, `clipper up`, the dashboard."""
