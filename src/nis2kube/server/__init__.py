"""The intake service (FastAPI): webhooks, incidents API, /metrics."""
