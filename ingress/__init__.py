"""The HTTP ingress: webhooks, payment intake, callbacks, remittance files (FastAPI)."""
