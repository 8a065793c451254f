"""Tips: submission (named or anonymous), follow-up by code, staff triage."""
