"""The periodic job of the stations package: rolling open periods forward every day."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.core.jobs import jobs, task
from app.extensions import db
from app.stations import hours
from app.stations.models import Station
from app.stations.service import refresh_open_periods

ROLL_BATCH = 1000


@jobs.periodic(cron="5 16 * * *", periodic_id="roll_station_open_periods")  # 00:05 in Beijing
@task(queue="maintenance", name="app.stations.service.roll_open_periods")
def roll_open_periods(timestamp: int) -> int:
    """Daily: rebuild every active station's open periods for the window starting today, in
    batches. Without it "open now" fails closed once the window runs out."""
    session = db.session
    today = dt.datetime.fromtimestamp(timestamp, hours.TIMEZONE).date()
    done = 0
    last_id = None
    while True:
        query = select(Station).where(Station.status == "active").order_by(Station.id)
        if last_id is not None:
            query = query.where(Station.id > last_id)
        # Locked: an edit of the station's hours, committing meanwhile, would otherwise have
        # its fresh periods replaced by ones computed from the hours read here.
        batch = list(session.scalars(query.limit(ROLL_BATCH).with_for_update(skip_locked=True)))
        if not batch:
            return done
        refresh_open_periods(session, batch, today)
        session.flush()
        done += len(batch)
        last_id = batch[-1].id
        session.expunge_all()
