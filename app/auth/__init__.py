"""Accounts, authentication (tokens, sessions), roles and jurisdictions."""
