"""Tasks pushed to volunteers, their responses, and volunteers on duty."""
