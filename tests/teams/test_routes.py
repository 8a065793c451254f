"""Teams, membership, and community organisations counted against the city's targets."""

from __future__ import annotations

import pytest

NANLANG, BEILANG, JIANWAI = "110105001024", "110105001025", "110105001000"
CHAOWAI_COMMUNITY = "110105002024"


@pytest.fixture
def admin_of_jianwai(create_user, token_for):
    return token_for(create_user(roles=["community_admin"], jurisdiction=[JIANWAI]))


def new_team(client, headers, area_id, **overrides):
    body = {
        "name": "测试社会组织",
        "kind": "community_organisation",
        "service_type": "mutual_aid",
        "area_id": str(area_id),
        **overrides,
    }
    return client.post("/api/v1/teams", json=body, headers=headers)


def targets(client, headers, area_id):
    response = client.get(f"/api/v1/teams/targets?area_id={area_id}&page_size=100", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_targets_count_organisations_per_community(client, area, admin_of_jianwai):
    community = area(BEILANG)  # the demo has 1 organisation here (brand, filed)
    before = {t["code"]: t for t in targets(client, admin_of_jianwai, community.id)["items"]}[
        BEILANG
    ]
    assert (before["organisations"], before["brand_organisations"]) == (1, 1)
    for n in range(3):
        assert new_team(client, admin_of_jianwai, community.id, name=f"组织{n}").status_code == 201
    new_team(client, admin_of_jianwai, community.id, name="品牌", brand=True)
    new_team(
        client, admin_of_jianwai, community.id, name="已撤销", brand=True, filing_status="revoked"
    )
    new_team(
        client, admin_of_jianwai, community.id, name="巡逻队", kind="patrol_team", service_type=None
    )
    report = targets(client, admin_of_jianwai, community.id)
    (row,) = report["items"]
    assert row["urban_rural"] == "urban"
    assert row["target"] == 15
    assert row["organisations"] == 5  # the revoked one and the patrol team do not count
    assert row["short_by"] == 10
    assert (row["brand_organisations"], row["brand_short_by"]) == (2, 0)
    assert report["summary"] == {
        "communities": 1,
        "communities_short": 1,
        "communities_short_of_brand": 0,
        "organisations": 5,
    }


def test_targets_cover_a_subdistricts_communities_and_rural_targets_are_8(
    client, area, session, admin_of_jianwai
):
    community = area(BEILANG)
    community.urban_rural = "rural"
    session.commit()
    report = targets(client, admin_of_jianwai, area(JIANWAI).id)
    rows = {r["code"]: r for r in report["items"]}
    assert rows[BEILANG]["target"] == 8
    # demo: mediation (brand, filed), elderly care (filed), mutual aid (unfiled: counts too)
    assert rows[NANLANG]["organisations"] == 3
    assert report["summary"]["communities"] == len(rows) == report["total"]
    assert all(r["code"].startswith("110105001") for r in rows.values())


def test_targets_stay_inside_the_callers_jurisdiction(client, area, create_user, token_for):
    staff = token_for(create_user(roles=["grid_staff"], jurisdiction=[NANLANG]))
    report = targets(client, staff, area(JIANWAI).id)
    assert [r["code"] for r in report["items"]] == [NANLANG]


def test_teams_are_created_inside_the_jurisdiction_only(client, area, admin_of_jianwai):
    assert new_team(client, admin_of_jianwai, area(NANLANG).id).status_code == 201
    outside = new_team(client, admin_of_jianwai, area(CHAOWAI_COMMUNITY).id)
    assert outside.status_code == 404


@pytest.mark.parametrize(
    "overrides",
    [
        {"service_type": None},  # a community organisation needs a service type
        {"kind": "patrol_team"},  # ... and only it has one
        {"kind": "club"},
        {"leader_id": "00000000-0000-4000-8000-000000000000"},  # not an allowed field
    ],
)
def test_bad_teams_are_refused(client, area, admin_of_jianwai, overrides):
    response = new_team(client, admin_of_jianwai, area(NANLANG).id, **overrides)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_a_team_must_belong_to_a_community_or_subdistrict(client, area, create_user, token_for):
    admin = token_for("admin")
    response = new_team(client, admin, area("110105000000").id)
    assert response.status_code == 422


def test_members_join_and_leave_with_their_history_kept(
    client, area, admin_of_jianwai, create_user
):
    team = new_team(client, admin_of_jianwai, area(NANLANG).id).get_json()
    alice = create_user(home=NANLANG)
    url = f"/api/v1/teams/{team['id']}/members"
    joined = client.post(
        url, json={"user_id": str(alice.id), "role": "leader"}, headers=admin_of_jianwai
    )
    assert joined.status_code == 201
    again = client.post(url, json={"user_id": str(alice.id)}, headers=admin_of_jianwai)
    assert again.status_code == 409
    assert client.get(f"/api/v1/teams/{team['id']}", headers=admin_of_jianwai).get_json()[
        "leader_id"
    ] == str(alice.id)
    members = client.get(url, headers=admin_of_jianwai).get_json()
    assert [m["user_id"] for m in members["items"]] == [str(alice.id)]
    left = client.delete(f"{url}/{alice.id}", headers=admin_of_jianwai)
    assert left.status_code == 204
    assert client.get(url, headers=admin_of_jianwai).get_json()["items"] == []
    assert (
        client.get(f"/api/v1/teams/{team['id']}", headers=admin_of_jianwai).get_json()["leader_id"]
        is None
    )
    rejoined = client.post(url, json={"user_id": str(alice.id)}, headers=admin_of_jianwai)
    assert rejoined.status_code == 201


def test_only_people_the_admin_may_see_can_be_added(client, area, admin_of_jianwai, create_user):
    team = new_team(client, admin_of_jianwai, area(NANLANG).id).get_json()
    stranger = create_user(home=CHAOWAI_COMMUNITY)
    response = client.post(
        f"/api/v1/teams/{team['id']}/members",
        json={"user_id": str(stranger.id)},
        headers=admin_of_jianwai,
    )
    assert response.status_code == 404


def test_filing_a_team_records_the_date_and_revoking_it_too(client, area, admin_of_jianwai):
    team = new_team(client, admin_of_jianwai, area(NANLANG).id).get_json()
    filed = client.patch(
        f"/api/v1/teams/{team['id']}", json={"filing_status": "filed"}, headers=admin_of_jianwai
    )
    assert filed.get_json()["filed_on"]
    revoked = client.patch(
        f"/api/v1/teams/{team['id']}", json={"filing_status": "revoked"}, headers=admin_of_jianwai
    )
    assert revoked.get_json()["revoked_on"]


def test_volunteers_can_browse_teams_but_not_manage_them(client, area, token_for):
    volunteer = token_for("volunteer")
    listed = client.get(f"/api/v1/teams?area_id={area(JIANWAI).id}", headers=volunteer)
    assert listed.status_code == 200
    assert listed.get_json()["total"] >= 7  # the demo's teams in Jianwai
    assert new_team(client, volunteer, area(NANLANG).id).status_code == 403
    assert (
        client.get(
            f"/api/v1/teams/targets?area_id={area(JIANWAI).id}", headers=volunteer
        ).status_code
        == 403
    )


def test_a_new_leader_replaces_the_old_one(client, area, admin_of_jianwai, create_user):
    team = new_team(client, admin_of_jianwai, area(NANLANG).id).get_json()
    url = f"/api/v1/teams/{team['id']}/members"
    first, second = create_user(home=NANLANG), create_user(home=NANLANG)
    client.post(url, json={"user_id": str(first.id), "role": "leader"}, headers=admin_of_jianwai)
    client.post(url, json={"user_id": str(second.id), "role": "leader"}, headers=admin_of_jianwai)
    roles = {
        m["user_id"]: m["role"]
        for m in client.get(url, headers=admin_of_jianwai).get_json()["items"]
    }
    assert roles == {str(first.id): "member", str(second.id): "leader"}
    client.delete(f"{url}/{first.id}", headers=admin_of_jianwai)
    assert client.get(f"/api/v1/teams/{team['id']}", headers=admin_of_jianwai).get_json()[
        "leader_id"
    ] == str(second.id)


def test_unfiling_a_team_clears_its_dates(client, area, admin_of_jianwai):
    team = new_team(client, admin_of_jianwai, area(NANLANG).id, filing_status="revoked").get_json()
    assert team["revoked_on"]
    unfiled = client.patch(
        f"/api/v1/teams/{team['id']}", json={"filing_status": "unfiled"}, headers=admin_of_jianwai
    )
    assert (unfiled.get_json()["filed_on"], unfiled.get_json()["revoked_on"]) == (None, None)
