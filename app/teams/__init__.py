"""Volunteer organisations: association branches, workstations, community organisations, patrols."""
