"""Tips per grid cell (H3 resolution 8) among 1,000,000 tips, 30 days: p50/p99, API vs raw SQL.

(draft)
"""

from __future__ import annotations

import sys
import time

from bench.bench_tips_list import TIPS
from bench.bench_tips_list import _fill as fill_tips

CHUNK = 50_000  # rows per server-side cursor fetch and COPY

H3_TABLE_SQL = """
CREATE TEMP TABLE bench_cells (
    id uuid, h3_r7 bigint, h3_r8 bigint, h3_r9 bigint, grid_cell_id uuid
) ON COMMIT DROP
"""

# Tips of the three communities with grid cells: the grid cell of their community that holds
# the point (the lowest code on a shared edge, as app.areas.service resolves it).
GRID_SQL = """
UPDATE bench_cells c SET grid_cell_id = g.grid_cell_id
FROM (
    SELECT DISTINCT ON (t.id) t.id, a.id AS grid_cell_id
    FROM areas a
    JOIN area_pieces pc ON pc.area_id = a.id
    JOIN tips t ON t.community_id = a.community_id AND ST_Intersects(pc.geom, t.geom)
    WHERE a.level = 'grid_cell'
    ORDER BY t.id, a.code
) g
WHERE c.id = g.id
"""

UPDATE_SQL = """
UPDATE tips t
SET h3_r7 = c.h3_r7, h3_r8 = c.h3_r8, h3_r9 = c.h3_r9, grid_cell_id = c.grid_cell_id
FROM bench_cells c
WHERE t.id = c.id
"""


def _log(line: str) -> None:
    print(f"   {line}", file=sys.stderr, flush=True)


def _fill_cells(app) -> dict[str, float]:
    """The H3 cells (7, 8, 9) of every tip, computed in Python by geo.cells.h3_cells, and the
    grid cell of those inside one; seconds per step."""
    from app.extensions import db
    from geo.cells import h3_cells

    times = {}
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            conn = raw.driver_connection
            started = time.perf_counter()
            with conn.cursor() as cursor, conn.cursor(name="bench_points") as points:
                cursor.execute(H3_TABLE_SQL)
                points.execute("SELECT id, ST_X(geom), ST_Y(geom) FROM tips")
                while rows := points.fetchmany(CHUNK):
                    with cursor.copy(
                        "COPY bench_cells (id, h3_r7, h3_r8, h3_r9) FROM STDIN"
                    ) as copy:
                        for tip_id, lon, lat in rows:
                            cells = h3_cells(lon, lat)
                            copy.write_row(
                                (tip_id, cells["h3_r7"], cells["h3_r8"], cells["h3_r9"])
                            )
                times["h3 cells (Python) + COPY"] = time.perf_counter() - started
                step = time.perf_counter()
                cursor.execute("ANALYZE bench_cells")
                cursor.execute(GRID_SQL)
                times["grid cells"] = time.perf_counter() - step
                step = time.perf_counter()
                cursor.execute(UPDATE_SQL)
                times["UPDATE tips"] = time.perf_counter() - step
            conn.commit()
            step = time.perf_counter()
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE tips")
            times["VACUUM ANALYZE"] = time.perf_counter() - step
        finally:
            raw.close()
        db.engine.dispose()
    return times


def fill(app) -> dict[str, float]:
    insert_s, vacuum_s = fill_tips(app)
    _log(f"filled {TIPS:,} tips in {insert_s:.1f} s, VACUUM ANALYZE {vacuum_s:.1f} s")
    times = {"INSERT tips": insert_s, "VACUUM ANALYZE after INSERT": vacuum_s}
    for name, seconds in _fill_cells(app).items():
        _log(f"{name}: {seconds:.1f} s")
        times[name] = seconds
    return times
