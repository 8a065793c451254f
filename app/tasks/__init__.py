"""Tasks pushed to volunteers, and their responses (who is on duty: app/duty)."""
