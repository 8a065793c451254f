"""Helpers for the console's tests: a browser-like client that signs in through the form."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page) -> str:
    return CSRF.search(page.get_data(as_text=True)).group(1)


def sign_in(client, user, password: str = PASSWORD):
    """Sign `user` in through the console's form; the answer to the form's POST."""
    token = csrf_of(client.get("/console/login"))
    return client.post(
        "/console/login", data={"phone": user.phone, "password": password, "csrf_token": token}
    )


@pytest.fixture
def console(app, connection):
    """A test client without an Accept-Language (the console's own default, zh-CN)."""
    return app.test_client()


@pytest.fixture
def staff_console(console, create_user):
    """A console client signed in as grid staff of community 110105001024, and the user."""
    user = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    assert sign_in(console, user).status_code == 303
    return console, user
