"""Shared machinery: blueprint, errors, auth, jobs, idempotency, logging, docs."""
