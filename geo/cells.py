"""Hexagonal cells (H3) precomputed at write time, so that aggregation is a GROUP BY on an
indexed integer instead of a spatial join against a grid built per request (ARCHITECTURE §3)."""

from __future__ import annotations

import h3

# Resolutions kept on every located row, with their mean cell edge: 7 ≈ 1.4 km (a
# sub-district's view), 8 ≈ 530 m (a community), 9 ≈ 200 m (a few blocks).
H3_RESOLUTIONS = (7, 8, 9)


def h3_cells(lon: float, lat: float) -> dict[str, int]:
    """`{"h3_r7": ..., "h3_r8": ..., "h3_r9": ...}` as signed 64-bit integers (bigint columns)."""
    return {f"h3_r{res}": to_bigint(h3.latlng_to_cell(lat, lon, res)) for res in H3_RESOLUTIONS}


def to_bigint(cell: str) -> int:
    """An H3 index as PostgreSQL's signed bigint (H3 indexes use the low 63 bits, so this is the
    integer itself; the check guards the assumption)."""
    value = h3.str_to_int(cell)
    if value >= 2**63:
        raise ValueError(f"H3 index {cell} does not fit a bigint")
    return value


def from_bigint(value: int) -> str:
    return h3.int_to_str(value)


def cell_polygon(value: int) -> list[tuple[float, float]]:
    """The cell's boundary as a closed ring of (lon, lat)."""
    ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(from_bigint(value))]
    return [*ring, ring[0]]
