"""Patrols, check-ins, checkpoints and coverage."""
