"""A simulated recent week for the demo (`flask demo simulate`): tips with a realistic category
mix and two hotspots, evening patrols with tracks and check-ins, scheduled checkpoints with a few
missed windows, tasks with responses, and a clue batch built by the real job.

Everything is written through the services (accounts, tips, patrols, checkpoints, tasks, clue
batches), so the rows are the ones the API would have made (phones and names encrypted, area
paths resolved, history recorded); only the clock is moved back afterwards, since the services
stamp the present. Every row it makes is flagged `generated` (or hangs off one that is).

Deterministic: the same seed and the same `now` give the same rows (apart from random ids).
Running it again on a database that has a simulation changes nothing. Never in production.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from geoalchemy2.shape import to_shape
from shapely.geometry import Point
from shapely.prepared import prep
from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from app.areas import service as areas
from app.auth import service as accounts
from app.auth.jurisdiction import jurisdiction_of
from app.auth.models import User, phone_lookup
from app.core.auth import VOLUNTEER
from app.core.errors import Unprocessable
from app.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, DISTRICT_CODE, demo_id_number
from app.exports import jobs as export_jobs
from app.exports import service as exports
from app.exports.models import ClueBatch
from app.patrols import checkpoints
from app.patrols import ingest as patrol_ingest
from app.patrols import service as patrols
from app.patrols.models import Checkpoint, Patrol
from app.tasks import service as tasks
from app.tasks.models import Task, TaskRecipient
from app.tips import service as tips
from app.tips.models import Tip, TipEvent
from geo.distance import haversine_m

BEIJING = ZoneInfo("Asia/Shanghai")
JIANWAI = "110105001000"
HOME_COMMUNITIES = ("110105001024", "110105001025", "110105001027")  # 南郎家园, 北郎家园, 光华里
VOLUNTEERS = 15
TIPS_PER_DAY = (70, 110)

# The share of each category among a week's tips (weights; 12345 hotline-like mix: the
# environment and traffic lead, crimes are the few).
CATEGORY_MIX = {
    "environment_sanitation": 25,
    "traffic": 18,
    "neighbour_dispute": 12,
    "suspicious_person_vehicle": 10,
    "fire_hazard": 8,
    "illegal_construction": 7,
    "theft": 7,
    "fraud": 6,
    "other": 5,
    "drugs": 2,
}
DESCRIPTIONS = {
    "environment_sanitation": ("垃圾桶满溢无人清运", "楼道堆放杂物有异味", "路边有建筑垃圾"),
    "traffic": ("路口车辆乱停堵塞消防通道", "电动车逆行较多", "共享单车堆积占用人行道"),
    "neighbour_dispute": ("楼上深夜噪音扰民", "邻居占用公共楼道", "因停车位发生争执"),
    "suspicious_person_vehicle": ("有陌生人反复查看单元门", "一辆无牌车多日停放", "有人挨户推销"),
    "fire_hazard": ("楼道内电动车充电", "消防通道被占用", "灭火器过期"),
    "illegal_construction": ("一层住户私搭棚子", "楼顶加建", "占绿地搭建"),
    "theft": ("车棚电动车电瓶被盗", "自行车被盗", "快递被拿走"),
    "fraud": ("老人接到冒充公检法电话", "有人上门推销保健品", "收到中奖诈骗短信"),
    "other": ("路灯不亮", "井盖松动", "树枝折断悬挂"),
    "drugs": ("疑似有人在楼道吸食", "发现可疑注射器"),
}


@dataclass(frozen=True)
class Hotspot:
    name: str
    lon: float  # WGS-84
    lat: float
    radius_m: float
    categories: tuple[str, ...]
    per_day: int


# Two places that draw more tips than their surroundings, as real ones do: bicycle thefts around
# 南郎家园's bicycle shed, and the bars' street of 三里屯 at night (noise, disputes, traffic).
HOTSPOTS = (
    Hotspot("南郎家园车棚", 116.455619, 39.905178, 120, ("theft", "suspicious_person_vehicle"), 4),
    Hotspot("三里屯酒吧街", 116.4545, 39.9365, 200, ("neighbour_dispute", "traffic", "other"), 5),
)
# Where tips fall besides the hotspots: the demo staff's own community and sub-district get a
# large share, so that each demo account sees a lively queue.
AREA_SHARES = (("110105001024", 0.25), (JIANWAI, 0.25), (DISTRICT_CODE, 0.5))

# Scheduled checkpoints of the simulated patrols: visited on most evenings, missed on a few.
CHECKPOINTS = (
    # name, WGS-84 lon, lat, radius
    ("南郎家园北门（模拟）", 116.4578, 39.9075, 30),
    ("南郎家园南门（模拟）", 116.4570, 39.9050, 30),
    ("南郎家园西侧（模拟）", 116.4566, 39.9062, 30),
)
EVENING = {
    "timezone": "Asia/Shanghai",
    "windows": [
        {
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": "19:00",
            "end": "22:00",
            "expected_visits": 1,
        }
    ],
}
PATROLS_PER_EVENING = 3
# Hours of the day tips come in (Beijing time), drawn uniformly: mornings and evenings busier.
_DAY_HOURS = (7, 8, 9, 10, 10, 11, 12, 14, 15, 16, 17, 18, 19, 19, 20, 21)
FIX_INTERVAL_S = 20
WALK_MPS = 1.1


class AlreadySimulated(Exception):
    """The database holds a simulation already."""


def already_simulated(session: Session) -> bool:
    return bool(session.scalar(select(exists().where(Tip.generated))))


def _demo_user(session: Session, serial: int) -> User:
    """One of the accounts of `flask demo load` (1-based, as DEMO_ACCOUNTS lists them)."""
    phone = DEMO_ACCOUNTS[serial - 1][0]
    return session.scalar(select(User).where(User.phone_hmac == phone_lookup(phone)))


class Simulation:
    def __init__(
        self,
        session: Session,
        *,
        days: int,
        seed: int,
        now: dt.datetime,
        tick: Callable[[int], None],
    ) -> None:
        self.session = session
        self.days = days
        self.rng = random.Random(seed)  # noqa: S311 - repeatable demo data, no secret
        self.now = now
        self.start = now - dt.timedelta(days=days)
        self.tick = tick
        self.admin = _demo_user(session, 1)
        self.manager = _demo_user(session, 2)
        self.staff = _demo_user(session, 3)
        self.liaison = _demo_user(session, 4)
        self.shapes = {
            code: prep(to_shape(areas.get_by_code(session, code).geom))
            for code, _share in AREA_SHARES
        }
        self.bounds = {
            code: to_shape(areas.get_by_code(session, code).geom).bounds
            for code, _share in AREA_SHARES
        }
        self.volunteers: list[User] = []

    # -- helpers ---------------------------------------------------------------------------

    def _point_in(self, code: str) -> tuple[float, float]:
        west, south, east, north = self.bounds[code]
        while True:
            lon, lat = self.rng.uniform(west, east), self.rng.uniform(south, north)
            if self.shapes[code].contains(Point(lon, lat)):
                return round(lon, 6), round(lat, 6)

    def _near(self, lon: float, lat: float, radius_m: float) -> tuple[float, float]:
        dx, dy = self.rng.gauss(0, radius_m / 2), self.rng.gauss(0, radius_m / 2)
        return round(lon + dx / 85_000, 6), round(lat + dy / 111_000, 6)

    def _moment(self, day: int, evening: bool = False) -> dt.datetime:
        """A time of the `day`-th simulated day (0 = oldest), by day and evening as people
        report, never after `now`."""
        date = (self.start + dt.timedelta(days=day)).astimezone(BEIJING).date()
        hour = self.rng.choice((19, 20, 21, 22)) if evening else self.rng.choice(_DAY_HOURS)
        moment = dt.datetime.combine(
            date, dt.time(hour, self.rng.randrange(60), self.rng.randrange(60)), BEIJING
        ).astimezone(dt.UTC)
        return min(moment, self.now - dt.timedelta(minutes=self.rng.randrange(5, 120)))

    def _code(self) -> str:
        return "".join(self.rng.choice(tips._CODE_ALPHABET) for _ in range(10))

    # -- the parts -------------------------------------------------------------------------

    def volunteers_(self) -> None:
        settings = accounts.AuthSettings.from_config(current_app.config)
        for n in range(VOLUNTEERS):
            home = areas.get_by_code(self.session, HOME_COMMUNITIES[n % len(HOME_COMMUNITIES)])
            user = accounts.create_account(
                self.session,
                None,
                {
                    "phone": f"1990000{n:04d}",
                    "password": DEMO_PASSWORD,
                    "real_name": f"模拟志愿者{n + 1:02d}",
                    "id_number": demo_id_number(100 + n),
                    "id_number_consent": True,
                    "roles": [VOLUNTEER],
                    "home_community_id": home.id,
                },
                settings,
            )
            user.generated = True
            user.location_sharing = True
            self.volunteers.append(user)
            self.tick(1)
        self.session.flush()

    def tips_(self) -> list[Tip]:
        categories = list(CATEGORY_MIX)
        weights = list(CATEGORY_MIX.values())
        made = []
        for day in range(self.days):
            planned: list[tuple[str, tuple[float, float], bool]] = []
            for _ in range(self.rng.randint(*TIPS_PER_DAY)):
                code = self.rng.choices([c for c, _s in AREA_SHARES], [s for _c, s in AREA_SHARES])[
                    0
                ]
                planned.append(
                    (self.rng.choices(categories, weights)[0], self._point_in(code), False)
                )
            for spot in HOTSPOTS:
                for _ in range(spot.per_day):
                    point = self._near(spot.lon, spot.lat, spot.radius_m)
                    planned.append((self.rng.choice(spot.categories), point, True))
            for category, (lon, lat), night in planned:
                made.append(self._tip(day, category, lon, lat, night))
                self.tick(1)
        return made

    def _tip(self, day: int, category: str, lon: float, lat: float, night: bool) -> Tip:
        at = self._moment(day, evening=night)
        reporter = self.rng.choice(self.volunteers) if self.rng.random() < 0.6 else None
        tip = tips.submit(
            self.session,
            reporter,
            {
                "category": category,
                "description": self.rng.choice(DESCRIPTIONS[category]),
                "location": {"lon": lon, "lat": lat, "accuracy_m": self.rng.choice((5, 10, 20))},
                "occurred_at": at - dt.timedelta(minutes=self.rng.randrange(5, 90)),
                "police_contact_consent": reporter is not None and self.rng.random() < 0.5,
            },
        )
        tip.code, tip.generated = self._code(), True
        # The tip's own staff act on it: the demo grid staff in 南郎家园, the community admin
        # elsewhere in 建外, the administrator (who assigns nobody) beyond.
        actor = next(
            (u for u in (self.staff, self.manager) if jurisdiction_of(u).covers(tip.path_ids)),
            self.admin,
        )
        moves = self._workflow(at)
        if actor is self.admin:
            moves = [m for m in moves if m != "assigned"]
        for to in moves:
            tips.transition(
                self.session,
                actor,
                tip,
                to,
                note="模拟处置" if to in ("resolved", "rejected") else None,
                public=False,
                assignee_id=actor.id if to == "assigned" else None,
            )
        self._backdate_tip(tip, at, len(moves))
        return tip

    def _workflow(self, at: dt.datetime) -> list[str]:
        """The moves staff made on a tip of this age: the older, the further along."""
        age_h = (self.now - at).total_seconds() / 3600
        roll = self.rng.random()
        if age_h < 6 or roll < 0.15:
            return []
        if roll < 0.08 + min(age_h / 200, 0.6):
            return ["triaged", "assigned", "in_progress", "resolved"]
        if roll < 0.6 and self.rng.random() < 0.3:
            return ["triaged", "in_progress"]
        if roll < 0.85:
            return ["triaged", "assigned"] if self.rng.random() < 0.5 else ["triaged"]
        return ["rejected"]

    def _backdate_tip(self, tip: Tip, at: dt.datetime, moves: int) -> None:
        step = dt.timedelta(minutes=self.rng.randrange(20, 240))
        last = at + step * moves
        self.session.execute(
            update(Tip)
            .where(Tip.id == tip.id)
            .values(created_at=at, updated_at=last, status_changed_at=last)
            .execution_options(synchronize_session=False)
        )
        events = self.session.scalars(
            select(TipEvent).where(TipEvent.tip_id == tip.id).order_by(TipEvent.at)
        ).all()
        for n, event in enumerate(events):
            event.at = at + step * n
        self.session.expire(tip, ["created_at", "updated_at", "status_changed_at", "version"])

    def checkpoints_(self) -> list[Checkpoint]:
        made = []
        for name, lon, lat, radius_m in CHECKPOINTS:
            checkpoint = checkpoints.create(
                self.session,
                self.staff,
                {
                    "name": name,
                    "location": {"lon": lon, "lat": lat, "coord_system": "wgs84"},
                    "radius_m": radius_m,
                    "schedule": EVENING,
                    "min_interval_minutes": 10,
                },
            )
            checkpoint.generated = True
            checkpoint.windows_judged_until = self.start
            made.append(checkpoint)
        self.session.flush()
        return made

    def patrols_(self, stops: list[Checkpoint]) -> list[Patrol]:
        made = []
        points = [(to_shape(c.geom).x, to_shape(c.geom).y) for c in stops]
        for day in range(self.days):
            walkers = self.rng.sample(self.volunteers, PATROLS_PER_EVENING)
            # On about one evening in four, one checkpoint is left out by everyone: a miss.
            skipped = self.rng.randrange(len(points)) if self.rng.random() < 0.3 else None
            for volunteer in walkers:
                route = [p for n, p in enumerate(points) if n != skipped]
                self.rng.shuffle(route)
                made.append(self._patrol(volunteer, day, route))
                self.tick(1)
        return made

    def _patrol(self, volunteer: User, day: int, route: list[tuple[float, float]]) -> Patrol:
        start = self._moment(day, evening=True).replace(second=0)
        start = min(start, self.now - dt.timedelta(hours=2))
        home = self._near(116.4590, 39.9060, 150)
        legs = [home, *route, home]
        fixes: list[dict[str, Any]] = []
        at = start
        for (lon1, lat1), (lon2, lat2) in itertools.pairwise(legs):
            steps = max(1, int(haversine_m(lon1, lat1, lon2, lat2) / (WALK_MPS * FIX_INTERVAL_S)))
            for k in range(steps):
                lon = lon1 + (lon2 - lon1) * k / steps + self.rng.gauss(0, 3) / 85_000
                lat = lat1 + (lat2 - lat1) * k / steps + self.rng.gauss(0, 3) / 111_000
                fixes.append(self._fix(at, lon, lat))
                at += dt.timedelta(seconds=FIX_INTERVAL_S)
            for _ in range(6):  # a couple of minutes at each stop
                fixes.append(self._fix(at, lon2, lat2))
                at += dt.timedelta(seconds=FIX_INTERVAL_S)
        settings = patrols.PatrolSettings.from_config(current_app.config)
        patrol, _new = patrols.start(
            self.session,
            volunteer,
            {
                "id": uuid.UUID(int=self.rng.getrandbits(128), version=4),
                "kind": "checkpoint_tour",
                "started_at": start,
            },
            settings,
        )
        patrol.generated = True
        self.session.flush()
        for first in range(0, len(fixes), 200):
            patrol_ingest.ingest(self.session, patrol, fixes[first : first + 200], settings)
        patrols.end(self.session, patrol, at, settings=settings)
        return patrol

    def _fix(self, at: dt.datetime, lon: float, lat: float) -> dict[str, Any]:
        return {
            "client_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "recorded_at": at.isoformat(),
            "location": {"lon": round(lon, 6), "lat": round(lat, 6), "accuracy_m": 8},
        }

    def judge_(self) -> int:
        return checkpoints.judge_windows(self.session, self.now, dt.timedelta(minutes=30))

    def tasks_(self, made_tips: list[Tip]) -> list[Task]:
        """A few tasks of the demo grid staff for the volunteers of 南郎家园, answered."""
        home = areas.get_by_code(self.session, "110105001024").id
        mine = [v for v in self.volunteers if v.home_community_id == home]
        local = [t for t in made_tips if t.community_id == home]
        made = []
        for n in range(min(self.days, 5)):
            tip = self.rng.choice(local) if local else None
            lon, lat = self._point_in("110105001024")
            task = tasks.create(
                self.session,
                self.staff,
                {
                    "title": ("核实线索", "晚间巡逻", "活动秩序维护")[n % 3],
                    "description": "模拟任务：请到现场查看并反馈。",
                    "kind": ("tip_check", "patrol", "event_support")[n % 3],
                    "ends_at": self.now + dt.timedelta(days=1 + n),
                    "needed": 2,
                    "location": {"lon": lon, "lat": lat, "coord_system": "wgs84"},
                    "radius_m": 500,
                    "targeting": {
                        "mode": "named",
                        "volunteer_ids": [v.id for v in mine],
                        "max_recipients": len(mine),
                    },
                    "tip_id": tip.id if tip is not None and n % 3 == 0 else None,
                },
            )
            task.generated = True
            self.session.flush()
            settings = tasks.TaskSettings.from_config(current_app.config)
            tasks.fan_out(self.session, task.id, 0, dt.datetime.now(dt.UTC), settings)
            asked = set(
                self.session.scalars(
                    select(TaskRecipient.user_id).where(TaskRecipient.task_id == task.id)
                )
            )
            for volunteer in self.rng.sample(mine, len(mine)):
                if volunteer.id in asked:
                    self._respond(volunteer, task)
            created = self.now - dt.timedelta(hours=self.rng.randrange(2, 24 * max(1, n)))
            task.starts_at = created
            task.created_at = created
            made.append(task)
            self.tick(1)
        self.session.flush()
        return made

    def _respond(self, volunteer: User, task: Task) -> None:
        roll = self.rng.random()
        settings = tasks.TaskSettings.from_config(current_app.config)
        if roll < 0.2:
            return  # not answered yet
        if roll < 0.35:
            tasks.respond(self.session, volunteer, task.id, {"action": "decline"}, settings)
            return
        if task.accepted >= task.needed:
            return
        tasks.respond(self.session, volunteer, task.id, {"action": "accept"}, settings)
        if roll > 0.6:
            tasks.respond(
                self.session,
                volunteer,
                task.id,
                {"action": "complete", "note": "已到现场查看，情况已反馈。"},
                settings,
            )

    def batch_(self) -> ClueBatch | None:
        """A clue batch of the liaison of 建外 over the week's theft and drug tips, built by the
        job that builds every batch; none when no such tip was made (a short simulation, a
        quiet seed: a batch must hold at least one tip)."""
        try:
            with self.session.begin_nested():
                return self._batch()
        except Unprocessable:
            return None

    def _batch(self) -> ClueBatch:
        batch = exports.create_batch(
            self.session,
            self.liaison,
            {
                "purpose": "模拟：本周建外街道盗窃、涉毒线索移交",
                "case_reference": "DEMO-" + self.now.astimezone(BEIJING).strftime("%Y%m%d"),
                "filters": {
                    "area_ids": [areas.get_by_code(self.session, JIANWAI).id],
                    "categories": ["theft", "drugs"],
                    "from_": self.start,
                    "to": self.now,
                },
            },
            max_tips=current_app.config["MAX_BATCH_TIPS"],
        )
        batch.generated = True
        self.session.flush()
        # The job's own body, in this transaction: the worker's wrapper would commit half a
        # simulation (and a worker may not be running).
        export_jobs.generate_batch.func.__wrapped__(batch_id=str(batch.id))
        self.tick(1)
        return batch


def steps(days: int) -> int:
    """About how many ticks a simulation of `days` makes (for a progress bar)."""
    return VOLUNTEERS + days * (sum(TIPS_PER_DAY) // 2 + sum(h.per_day for h in HOTSPOTS))


def simulate(
    session: Session,
    *,
    days: int,
    seed: int,
    now: dt.datetime,
    tick: Callable[[int], None] = lambda _n: None,
) -> dict[str, int]:
    """Write a simulated `days` up to `now` (UTC); what was made, counted. Flushes, never
    commits. Raises AlreadySimulated when the database has one."""
    if already_simulated(session):
        raise AlreadySimulated
    run = Simulation(session, days=days, seed=seed, now=now, tick=tick)
    run.volunteers_()
    made_tips = run.tips_()
    stops = run.checkpoints_()
    made_patrols = run.patrols_(stops)
    missed = run.judge_()
    made_tasks = run.tasks_(made_tips)
    batch = run.batch_()
    session.flush()
    return {
        "volunteers": len(run.volunteers),
        "tips": len(made_tips),
        "patrols": len(made_patrols),
        "missed_windows": missed,
        "tasks": len(made_tasks),
        "task_responses": session.scalar(
            select(func.count())
            .select_from(TaskRecipient)
            .where(
                TaskRecipient.task_id.in_([t.id for t in made_tasks]),
                TaskRecipient.response.is_not(None),
            )
        ),
        "batch_rows": batch.row_count if batch is not None else 0,
    }
