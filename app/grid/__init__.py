"""Clues by grid cell: aggregation, trends, hotspots, risk against coverage."""
