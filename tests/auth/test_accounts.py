"""Own profile, staff administration, and the jurisdiction rule."""

from __future__ import annotations

import pytest

from app.auth.models import User

NANLANG = "110105001024"  # 南郎家园, in Jianwai
BEILANG = "110105001025"  # 北郎家园, in Jianwai
JIANWAI = "110105001000"
CHAOWAI_COMMUNITY = "110105002024"  # a community of another sub-district (朝外)


def stored(session, user):
    """The account as the database holds it now."""
    session.expire_all()
    return session.get(User, user.id)


def refused(response, status):
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"


def test_a_volunteer_sees_and_changes_only_their_own_account(
    client, create_user, token_for, session
):
    alice, bob = create_user(home=NANLANG), create_user(home=NANLANG)
    headers = token_for(alice)
    me = client.get("/api/v1/me", headers=headers).get_json()
    assert me["id"] == str(alice.id)
    assert client.get(f"/api/v1/users/{bob.id}", headers=headers).status_code == 403
    assert client.get("/api/v1/users", headers=headers).status_code == 403
    patched = client.patch(f"/api/v1/users/{bob.id}", json={"status": "disabled"}, headers=headers)
    assert patched.status_code == 403
    assert patched.mimetype == "application/problem+json"
    assert stored(session, bob).status == "active"


@pytest.mark.parametrize(
    "field, value",
    [
        ("roles", ["admin"]),
        ("verified_at", "2026-01-01T00:00:00Z"),
        ("status", "active"),
        ("id_number_masked", "000***********0000"),
        ("phone", "13900000000"),
        ("id", "00000000-0000-4000-8000-000000000000"),
    ],
)
def test_patch_me_refuses_what_a_volunteer_may_not_change(
    client, create_user, token_for, field, value
):
    alice = create_user(home=NANLANG)
    response = client.patch("/api/v1/me", json={field: value}, headers=token_for(alice))
    assert response.status_code == 422
    assert f"/{field}" in {e["pointer"] for e in response.get_json()["errors"]}
    assert alice.roles == ["volunteer"]
    assert alice.verified_at is None


def test_patch_me_changes_the_allowed_fields(client, create_user, token_for, area):
    alice = create_user(home=NANLANG)
    response = client.patch(
        "/api/v1/me",
        json={
            "skills": ["first_aid", "sign_language"],
            "volunteer_types": ["traffic_guide"],
            "location_sharing": True,
        },
        headers=token_for(alice),
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["skills"] == ["first_aid", "sign_language"]
    assert body["consents"]["location_sharing"] is True
    assert body["consents"]["location_sharing_changed_at"]


def test_moving_community_withdraws_the_verification(client, create_user, token_for, area):
    staff = create_user(roles=["grid_staff"], jurisdiction=[NANLANG])
    alice = create_user(home=NANLANG)
    assert (
        client.post(f"/api/v1/users/{alice.id}/verify", headers=token_for(staff)).status_code == 200
    )
    assert alice.verified_at is not None
    moved = client.patch(
        "/api/v1/me", json={"home_community_id": str(area(BEILANG).id)}, headers=token_for(alice)
    )
    assert moved.status_code == 200
    assert moved.get_json()["verified_at"] is None


def test_grid_staff_see_only_the_volunteers_of_their_jurisdiction(client, create_user, token_for):
    staff = create_user(roles=["grid_staff"], jurisdiction=[NANLANG])
    mine = create_user(home=NANLANG)
    theirs = create_user(home=CHAOWAI_COMMUNITY)
    headers = token_for(staff)
    listed = client.get("/api/v1/users?role=volunteer&page_size=100", headers=headers).get_json()
    ids = {u["id"] for u in listed["items"]}
    assert str(mine.id) in ids
    assert str(theirs.id) not in ids
    assert client.get(f"/api/v1/users/{mine.id}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/users/{theirs.id}", headers=headers).status_code == 404
    assert client.post(f"/api/v1/users/{theirs.id}/verify", headers=headers).status_code == 404
    assert theirs.verified_at is None


def test_a_subdistrict_grant_covers_its_communities(client, create_user, token_for):
    admin = create_user(roles=["community_admin"], jurisdiction=[JIANWAI])
    in_nanlang, in_beilang = create_user(home=NANLANG), create_user(home=BEILANG)
    in_chaowai = create_user(home=CHAOWAI_COMMUNITY)
    headers = token_for(admin)
    for user in (in_nanlang, in_beilang):
        answer = client.get(f"/api/v1/users/{user.id}", headers=headers)
        assert answer.status_code == 200
        assert answer.get_json()["id"] == str(user.id)
    refused(client.get(f"/api/v1/users/{in_chaowai.id}", headers=headers), 404)
    listed = client.get("/api/v1/users?role=volunteer&page_size=100", headers=headers).get_json()
    ids = {u["id"] for u in listed["items"]}
    assert {str(in_nanlang.id), str(in_beilang.id)} <= ids
    assert str(in_chaowai.id) not in ids


def test_a_community_admin_creates_staff_inside_their_jurisdiction(
    client, area, create_user, token_for
):
    admin = create_user(roles=["community_admin"], jurisdiction=[JIANWAI])
    body = {
        "phone": "13600000001",
        "password": "Grid-Staff-Pass-2026",
        "real_name": "王芳",
        "roles": ["grid_staff"],
        "jurisdiction": [str(area(NANLANG).id)],
    }
    response = client.post("/api/v1/users", json=body, headers=token_for(admin))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["jurisdiction"] == [str(area(NANLANG).id)]


@pytest.mark.parametrize(
    "roles, jurisdiction, status",
    [
        (["admin"], [NANLANG], 403),  # a role above their own
        (["grid_staff"], [CHAOWAI_COMMUNITY], 403),  # an area outside their jurisdiction
        (["grid_staff"], [], 422),  # staff without an area
    ],
)
def test_a_community_admin_cannot_grant_beyond_their_own_rights(
    client, area, create_user, token_for, ledger, roles, jurisdiction, status
):
    admin = create_user(roles=["community_admin"], jurisdiction=[JIANWAI])
    body = {
        "phone": "13600000002",
        "password": "Grid-Staff-Pass-2026",
        "real_name": "王芳",
        "roles": roles,
        "jurisdiction": [str(area(code).id) for code in jurisdiction],
    }
    headers = token_for(admin)
    ledger.mark()
    refused(client.post("/api/v1/users", json=body, headers=headers), status)
    assert ledger.changes() == []  # no account, no grant


def test_nobody_changes_their_own_roles(client, create_user, token_for):
    admin = create_user(roles=["community_admin"], jurisdiction=[JIANWAI])
    response = client.patch(
        f"/api/v1/users/{admin.id}", json={"roles": ["admin"]}, headers=token_for(admin)
    )
    assert response.status_code == 403
    assert admin.roles == ["community_admin"]


def test_a_role_change_applies_to_existing_tokens_at_once(client, create_user, token_for):
    staff = create_user(roles=["grid_staff"], jurisdiction=[NANLANG])
    headers = token_for(staff)
    assert client.get("/api/v1/users", headers=headers).status_code == 200
    admin = token_for("admin")
    demoted = client.patch(
        f"/api/v1/users/{staff.id}", json={"roles": ["volunteer"]}, headers=admin
    )
    assert demoted.status_code == 200
    assert client.get("/api/v1/users", headers=headers).status_code == 403


def test_users_are_paginated_with_a_capped_page_size(client, token_for):
    headers = token_for("admin")
    assert client.get("/api/v1/users?page_size=101", headers=headers).status_code == 422
    response = client.get("/api/v1/users?page_size=2", headers=headers)
    assert response.status_code == 200, response.get_json()
    page = response.get_json()
    assert len(page["items"]) <= 2
    assert page["total"] >= 5  # the demo accounts


def test_listing_users_costs_a_fixed_number_of_queries(
    client, create_user, token_for, count_queries
):
    headers = token_for("admin")
    client.get("/api/v1/users?page_size=5", headers=headers)
    with count_queries() as few:
        client.get("/api/v1/users?page_size=5", headers=headers)
    for _ in range(10):
        create_user(home=NANLANG)
    with count_queries() as more:
        client.get("/api/v1/users?page_size=20", headers=headers)
    assert len(more) == len(few)


def test_a_community_admin_cannot_touch_an_admins_account(client, create_user, token_for):
    admin = create_user(roles=["admin"], home=NANLANG)
    local_admin = token_for(create_user(roles=["community_admin"], jurisdiction=[NANLANG]))
    response = client.patch(
        f"/api/v1/users/{admin.id}",
        json={"status": "disabled", "real_name": "x"},
        headers=local_admin,
    )
    assert response.status_code == 403
    assert (admin.status, admin.real_name) != ("disabled", "x")


def test_an_admin_of_a_community_cannot_demote_staff_of_the_whole_subdistrict(
    client, create_user, token_for
):
    subdistrict_admin = create_user(roles=["community_admin"], jurisdiction=[JIANWAI], home=NANLANG)
    local_admin = token_for(create_user(roles=["community_admin"], jurisdiction=[NANLANG]))
    response = client.patch(
        f"/api/v1/users/{subdistrict_admin.id}",
        json={"roles": ["volunteer"], "jurisdiction": []},
        headers=local_admin,
    )
    assert response.status_code == 403
    assert subdistrict_admin.roles == ["community_admin"]


def test_grants_outside_the_admins_jurisdiction_cannot_be_stripped(
    client, area, create_user, token_for
):
    staff = create_user(roles=["grid_staff"], jurisdiction=[NANLANG, CHAOWAI_COMMUNITY])
    local_admin = token_for(create_user(roles=["community_admin"], jurisdiction=[NANLANG]))
    response = client.patch(
        f"/api/v1/users/{staff.id}",
        json={"jurisdiction": [str(area(NANLANG).id)]},
        headers=local_admin,
    )
    assert response.status_code == 403
    assert len(staff.jurisdiction) == 2


def test_a_community_admin_cannot_appoint_police_liaisons(
    client, area, create_user, token_for, ledger
):
    local_admin = token_for(create_user(roles=["community_admin"], jurisdiction=[JIANWAI]))
    body = {
        "phone": "13600000003",
        "password": "Liaison-Pass-2026",
        "real_name": "周军",
        "roles": ["police_liaison"],
        "jurisdiction": [str(area(NANLANG).id)],
    }
    ledger.mark()
    refused(client.post("/api/v1/users", json=body, headers=local_admin), 403)
    assert ledger.changes() == []


@pytest.mark.parametrize(
    "change",
    [
        {"status": "disabled"},
        {"real_name": "改名"},
        {"jurisdiction": [NANLANG]},
        {"roles": ["volunteer"], "jurisdiction": []},
    ],
    ids=["disable", "rename", "move", "demote"],
)
def test_only_admins_change_police_liaison_accounts(
    client, area, create_user, token_for, session, change
):
    """Issue 14.2: admins appoint liaisons, so only admins change or disable them, even where
    the liaison's areas lie inside a community admin's jurisdiction."""
    liaison = create_user(roles=["police_liaison"], jurisdiction=[JIANWAI])
    liaison_headers = token_for(liaison)

    def state():
        session.expire_all()
        user = session.get(User, liaison.id)
        return user.status, user.real_name, list(user.roles), [a.code for a in user.jurisdiction]

    before = state()
    body = dict(change)
    if "jurisdiction" in body:
        body["jurisdiction"] = [str(area(code).id) for code in body["jurisdiction"]]
    local_admin = token_for(create_user(roles=["community_admin"], jurisdiction=[JIANWAI]))
    response = client.patch(f"/api/v1/users/{liaison.id}", json=body, headers=local_admin)
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert "police_liaison" in response.json["detail"]
    assert state() == before
    assert client.get("/api/v1/me", headers=liaison_headers).status_code == 200  # not signed out
    admin = token_for(create_user(roles=["admin"]))
    response = client.patch(f"/api/v1/users/{liaison.id}", json=body, headers=admin)
    assert response.status_code == 200
    assert state() != before


def test_a_liaison_cannot_also_be_staff(client, area, token_for):
    body = {
        "phone": "13600000004",
        "password": "Liaison-Pass-2026",
        "real_name": "周军",
        "roles": ["police_liaison", "grid_staff"],
        "jurisdiction": [str(area(NANLANG).id)],
    }
    response = client.post("/api/v1/users", json=body, headers=token_for("admin"))
    assert response.status_code == 422
    assert "/roles" in {e["pointer"] for e in response.get_json()["errors"]}


def test_accounts_are_created_only_with_a_home_inside_the_jurisdiction(
    client, area, create_user, token_for, ledger
):
    local_admin = token_for(create_user(roles=["community_admin"], jurisdiction=[NANLANG]))
    body = {
        "phone": "13600000005",
        "password": "Volunteer-Pass-2026",
        "real_name": "孙丽",
        "roles": ["volunteer"],
        "home_community_id": str(area(CHAOWAI_COMMUNITY).id),
    }
    ledger.mark()
    refused(client.post("/api/v1/users", json=body, headers=local_admin), 403)
    assert ledger.changes() == []
    at_home = {**body, "home_community_id": str(area(NANLANG).id)}
    created = client.post("/api/v1/users", json=at_home, headers=local_admin)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["home_community_id"] == str(area(NANLANG).id)


def test_staff_cannot_verify_themselves(client, create_user, token_for):
    staff = create_user(roles=["volunteer", "grid_staff"], jurisdiction=[NANLANG], home=NANLANG)
    response = client.post(f"/api/v1/users/{staff.id}/verify", headers=token_for(staff))
    assert response.status_code == 403
    assert staff.verified_at is None


def test_only_staff_of_the_home_community_verify(client, create_user, token_for, session):
    # visible to Nanlang's staff through a granted area, but living in Chaowai
    volunteer = create_user(
        roles=["volunteer", "grid_staff"], jurisdiction=[NANLANG], home=CHAOWAI_COMMUNITY
    )
    nanlang_staff = token_for(create_user(roles=["grid_staff"], jurisdiction=[NANLANG]))
    assert client.get(f"/api/v1/users/{volunteer.id}", headers=nanlang_staff).status_code == 200
    response = client.post(f"/api/v1/users/{volunteer.id}/verify", headers=nanlang_staff)
    refused(response, 403)
    assert stored(session, volunteer).verified_at is None
    home_staff = token_for(create_user(roles=["grid_staff"], jurisdiction=[CHAOWAI_COMMUNITY]))
    verified = client.post(f"/api/v1/users/{volunteer.id}/verify", headers=home_staff)
    assert verified.status_code == 200, verified.get_json()
    assert stored(session, volunteer).verified_at is not None


def test_every_page_tells_the_same_total_past_the_end_included(client, create_user, token_for):
    """The total comes with the page from the same statement; a page past the end, which
    has no row to carry it, still tells it."""
    headers = token_for("admin")
    for _ in range(3):
        create_user(home=NANLANG)
    first = client.get("/api/v1/users?page_size=2", headers=headers).get_json()
    total = first["total"]
    last_page = -(-total // 2)
    pages = [
        client.get(f"/api/v1/users?page_size=2&page={n}", headers=headers).get_json()
        for n in (2, last_page, last_page + 1, last_page + 50)
    ]
    assert {page["total"] for page in pages} == {total}
    assert len(pages[1]["items"]) == total - 2 * (last_page - 1)
    assert pages[2]["items"] == pages[3]["items"] == []
    seen = [
        u["id"]
        for n in range(1, last_page + 1)
        for u in client.get(f"/api/v1/users?page_size=2&page={n}", headers=headers).get_json()[
            "items"
        ]
    ]
    assert len(seen) == len(set(seen)) == total
