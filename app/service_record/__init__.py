"""Volunteer service hours."""
