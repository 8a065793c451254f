"""The audit trail, read by admins (the recording is app/core/audit.py)."""
