"""WGS-84 ⇄ GCJ-02 ⇄ BD-09, the coordinate systems phones in China send.

GCJ-02 ("Mars coordinates") is the obfuscated system mandated for maps published in mainland
China and used by the AMap and Tencent SDKs; BD-09 is Baidu's further offset of GCJ-02. The
forward transforms are the widely published formulas; the inverses are solved by fixed-point
iteration to well under a millimetre (the one-step inverses often quoted are off by up to a few
metres). Outside mainland China no offset is applied, so points there pass through unchanged.

Everything is in degrees, `lon` before `lat`.
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

_A = 6378245.0  # Krasovsky 1940 semi-major axis, as GCJ-02 uses
_EE = 0.00669342162296594323  # its eccentricity squared
_X_PI = math.pi * 3000.0 / 180.0
_ITERATION_TOLERANCE_DEG = 1e-10  # ~0.01 mm
_MAX_ITERATIONS = 30


class CoordSystem(StrEnum):
    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


# Mainland China, coarsely, as rectangles (north lat, west lon, south lat, east lon) minus
# exclusions (Taiwan, parts of Vietnam, Laos, Mongolia, Russia and Korea inside the outer boxes).
_CHINA = (
    (49.220400, 79.446200, 42.889900, 96.330000),
    (54.141500, 109.687200, 39.374200, 135.000200),
    (42.889900, 73.124600, 29.529700, 124.143255),
    (29.529700, 82.968400, 26.718600, 97.035200),
    (29.529700, 97.025300, 20.414096, 124.367395),
    (20.414096, 107.975793, 17.871542, 111.744104),
)
_NOT_CHINA = (
    (25.398623, 119.921265, 21.785006, 122.497559),
    (22.284000, 101.865200, 20.098800, 106.665000),
    (21.542200, 106.452500, 20.487800, 108.051000),
    (55.817500, 109.032300, 50.325700, 119.127000),
    (55.817500, 127.456800, 49.557400, 137.022700),
    (44.892200, 131.266200, 42.569200, 137.022700),
)


def _in_box(lon: float, lat: float, box: tuple[float, float, float, float]) -> bool:
    north, west, south, east = box
    return south <= lat <= north and west <= lon <= east


def in_china(lon: float, lat: float) -> bool:
    """True where Chinese map SDKs apply the GCJ-02 offset (mainland China, coarsely)."""
    # Judged at ~0.1 mm, so that a solver's last bits cannot move a point across the region's edge.
    lon, lat = round(lon, 9), round(lat, 9)
    return any(_in_box(lon, lat, b) for b in _CHINA) and not any(
        _in_box(lon, lat, b) for b in _NOT_CHINA
    )


def _near_china(lon: float, lat: float) -> bool:
    """Within the region's outer box plus a margin wider than any offset (the solver is only
    defined where the offset formulas are: far away, e.g. at the poles, it diverges)."""
    return 72.9 <= lon <= 137.2 and 17.7 <= lat <= 55.9


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def _gcj02_offset(lon: float, lat: float) -> tuple[float, float]:
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    rad_lat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lon + dlon, lat + dlat


def _bd09_offset(lon: float, lat: float) -> tuple[float, float]:
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def _bd09_offset_approx_inverse(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 0.0065, lat - 0.006
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def _invert(forward, lon: float, lat: float, start: tuple[float, float]) -> tuple[float, float]:
    """Solve forward(x) = (lon, lat) for x by fixed-point iteration from `start`."""
    guess_lon, guess_lat = start
    for _ in range(_MAX_ITERATIONS):
        got_lon, got_lat = forward(guess_lon, guess_lat)
        err_lon, err_lat = got_lon - lon, got_lat - lat
        if abs(err_lon) < _ITERATION_TOLERANCE_DEG and abs(err_lat) < _ITERATION_TOLERANCE_DEG:
            break
        guess_lon, guess_lat = guess_lon - err_lon, guess_lat - err_lat
    return guess_lon, guess_lat


def _raw_from_wgs84(lon: float, lat: float, system: CoordSystem) -> tuple[float, float]:
    if system is CoordSystem.WGS84:
        return lon, lat
    gcj = _gcj02_offset(lon, lat)
    return gcj if system is CoordSystem.GCJ02 else _bd09_offset(*gcj)


# Whether a point is shifted is decided once, on its WGS-84 position: forward transforms shift
# points in China; inverse transforms return their solution only when it lies in China (else the
# point was never shifted). So round trips hold even within metres of the region's edge.


def from_wgs84(lon: float, lat: float, system: CoordSystem | str) -> tuple[float, float]:
    """A stored WGS-84 point in the system a client asked for (`?crs=gcj02`)."""
    system = CoordSystem(system)
    if system is CoordSystem.WGS84 or not in_china(lon, lat):
        return lon, lat
    return _raw_from_wgs84(lon, lat, system)


def to_wgs84(lon: float, lat: float, system: CoordSystem | str) -> tuple[float, float]:
    """A point as sent by a phone in `system`, in WGS-84 (what we store)."""
    system = CoordSystem(system)
    if system is CoordSystem.WGS84 or not _near_china(lon, lat):
        return lon, lat
    start = (lon, lat) if system is CoordSystem.GCJ02 else _bd09_offset_approx_inverse(lon, lat)
    solution = _invert(lambda x, y: _raw_from_wgs84(x, y, system), lon, lat, start)
    return solution if in_china(*solution) else (lon, lat)


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    return from_wgs84(lon, lat, CoordSystem.GCJ02)


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    return to_wgs84(lon, lat, CoordSystem.GCJ02)


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    return from_wgs84(lon, lat, CoordSystem.BD09)


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    return to_wgs84(lon, lat, CoordSystem.BD09)


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    return from_wgs84(*gcj02_to_wgs84(lon, lat), CoordSystem.BD09)


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    return from_wgs84(*bd09_to_wgs84(lon, lat), CoordSystem.GCJ02)


def geometry_to_wgs84(geom: BaseGeometry, system: CoordSystem | str) -> BaseGeometry:
    """Every vertex of a shapely geometry from `system` to WGS-84."""
    system = CoordSystem(system)
    if system is CoordSystem.WGS84:
        return geom
    return shapely.transform(geom, lambda xy: np.array([to_wgs84(x, y, system) for x, y in xy]))


def geometry_from_wgs84(geom: BaseGeometry, system: CoordSystem | str) -> BaseGeometry:
    """Every vertex of a WGS-84 shapely geometry in `system` (for `?crs=` answers)."""
    system = CoordSystem(system)
    if system is CoordSystem.WGS84:
        return geom
    return shapely.transform(geom, lambda xy: np.array([from_wgs84(x, y, system) for x, y in xy]))
