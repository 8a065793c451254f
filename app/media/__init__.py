"""Photos: upload, re-encoding, storage."""
