"""Tips put where and when a grid test needs them."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from app.tips import service as tips_service
from app.tips.models import Tip


@pytest.fixture
def put(session):
    """put(reporter, place, at, category="traffic", into=None): a tip made at `at` (with `into`,
    merged into that tip); extra keywords set its columns."""

    def make(reporter, place, at, category="traffic", into=None, **columns):
        tip = tips_service.submit(
            session,
            reporter,
            {
                "category": category,
                "description": "测试线索",
                "location": {"lon": place[0], "lat": place[1], "accuracy_m": 5},
            },
        )
        values = {"created_at": at, **columns}
        if into is not None:
            values.update(status="merged", merged_into_id=into.id)
        session.execute(update(Tip).where(Tip.id == tip.id).values(**values))
        session.commit()
        return tip

    return make
