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


# H3 index layout (https://h3geo.org/docs/core-library/h3Indexing): bits 52-55 hold the
# resolution, then 15 digits of 3 bits, digit 1 highest; digits past the resolution are all 7.
_RES_SHIFT = 52
_RES_MASK = 0xF << _RES_SHIFT


def _signed(value: int) -> int:
    return value - 2**64 if value >= 2**63 else value


def parent_constants(res: int) -> tuple[int, int]:
    """(AND mask, OR bits) that turn any finer H3 index into its parent at `res`, as signed
    64-bit integers: `(cell & mask) | bits`. Lets SQL aggregate a stored fine cell at any
    coarser resolution without an H3 extension in the database."""
    if not 0 <= res <= 15:
        raise ValueError("H3 resolutions are 0..15")
    unused_digits = (1 << (3 * (15 - res))) - 1
    mask = ~_RES_MASK & (2**64 - 1)
    return _signed(mask), (res << _RES_SHIFT) | unused_digits


def parent_of(value: int, res: int) -> int:
    """The parent of a bigint H3 index at `res`, by the same arithmetic SQL uses."""
    mask, bits = parent_constants(res)
    return (value & mask) | bits


def cells_covering(polygon, res: int) -> list[int]:
    """H3 cells (bigints) whose centres lie in a shapely (Multi)Polygon of lon/lat."""
    return sorted(to_bigint(c) for c in h3.geo_to_cells(polygon, res))


def cell_geojson(value: int, convert=None, precision: int = 7) -> dict:
    """A cell's hexagon as a GeoJSON Polygon, each vertex through `convert(lon, lat)` when
    given (another coordinate system), rounded: built straight from H3, no shapely on the way
    (answers with thousands of cells)."""
    ring = cell_polygon(value)
    if convert is not None:
        ring = [convert(lon, lat) for lon, lat in ring]
    return {
        "type": "Polygon",
        "coordinates": [[[round(lon, precision), round(lat, precision)] for lon, lat in ring]],
    }
