"""Clue batches for police liaisons: frozen sets of tips exported as signed files."""
