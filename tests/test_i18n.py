"""Chinese first: problems, field errors, pushes and CSV headers follow Accept-Language, zh-CN
when it is absent, from the gettext catalogs (app/translations)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from app.core import errors
from app.core.i18n import force_locale, translated
from app.exports.service import csv_header
from notifications.service import push_texts

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "app/translations/zh_Hans_CN/LC_MESSAGES/messages.po"
HAN = re.compile(r"[\u4e00-\u9fff]")
PROBLEM = "application/problem+json"


def _slugs_in_code() -> set[str]:
    """Every problem slug the code can answer: `slug = "..."` on error classes and
    `slug="..."` where a problem is built."""
    found = set()
    for path in [*(ROOT / "app").rglob("*.py"), *(ROOT / "notifications").rglob("*.py")]:
        found.update(re.findall(r"""\bslug\s*=\s*["']([a-z0-9-]+)["']""", path.read_text()))
    return found


def test_the_code_has_problem_slugs_to_check():
    assert {"not-found", "validation-error", "authentication-failed"} <= _slugs_in_code()


@pytest.mark.parametrize("slug", sorted(_slugs_in_code()))
def test_every_problem_type_has_a_title_in_both_languages(app, slug):
    assert slug in errors.PROBLEM_TITLES, f"{slug}: add its title to PROBLEM_TITLES"
    with app.app_context():
        with force_locale("en"):
            english = translated(errors.PROBLEM_TITLES[slug])
        with force_locale("zh_CN"):
            chinese = translated(errors.PROBLEM_TITLES[slug])
    assert english and not HAN.search(english)
    assert HAN.search(chinese), f"{slug}: {english!r} has no zh-CN translation"


def test_every_marked_string_is_in_the_chinese_catalog():
    """What `make translations` would extract is all translated (run it after adding text)."""
    with CATALOG.open("rb") as file:
        catalog = read_po(file)
    translated_ids = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    marked = set()
    for folder in ("app", "notifications"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder,
            method_map=[("**.py", "python")],
            keywords={"_": None, "gettext": None, "_l": None, "N_": None},
        ):
            marked.add(message)
    missing = sorted(marked - translated_ids)
    assert not missing, f"not in {CATALOG.relative_to(ROOT)} (run `make translations`): {missing}"


def test_placeholders_survive_translation():
    with CATALOG.open("rb") as file:
        catalog = read_po(file)
    placeholder = re.compile(r"%\(\w+\)[sr]|\{[^}]*\}")
    for message in catalog:
        if message.id and message.string:
            assert sorted(placeholder.findall(message.id)) == sorted(
                placeholder.findall(message.string)
            ), message.id


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def reader(app, connection):
    """A client that sends no Accept-Language (the suite's usual client reads English)."""
    return app.test_client()


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    assert "Accept-Language" in response.headers.get("Vary", "")
    return response.get_json(force=True)


def test_a_404_is_chinese_without_accept_language(reader, token_for):
    response = reader.get(f"/api/v1/tips/{uuid.uuid4()}", headers=token_for("grid_staff"))
    body = _problem(response, 404)
    assert body["type"] == "urn:qunfang:problem:not-found"
    assert (body["title"], body["detail"]) == ("未找到", "该线索不存在。")
    assert response.headers["Content-Language"] == "zh-CN"


def test_a_404_is_english_when_asked(reader, token_for):
    response = reader.get(
        f"/api/v1/tips/{uuid.uuid4()}",
        headers={**token_for("grid_staff"), "Accept-Language": "en-US,en;q=0.9"},
    )
    body = _problem(response, 404)
    assert body["type"] == "urn:qunfang:problem:not-found"
    assert (body["title"], body["detail"]) == ("Not found", "No such tip.")
    assert response.headers["Content-Language"] == "en"


@pytest.mark.parametrize("language", ["zh-Hans-CN", "zh", "zh-TW", "fr, zh;q=0.5", "de"])
def test_chinese_tags_and_unknown_languages_answer_zh_cn(reader, language):
    response = reader.get("/api/v1/no-such-thing", headers={"Accept-Language": language})
    assert _problem(response, 404)["title"] == "未找到"
    assert response.headers["Content-Language"] == "zh-CN"


def test_a_401_follows_the_language(reader):
    chinese = _problem(reader.get("/api/v1/me"), 401)
    english = _problem(reader.get("/api/v1/me", headers={"Accept-Language": "en"}), 401)
    assert chinese["type"] == english["type"]
    assert chinese["title"] == "未认证" and english["title"] == "Unauthorized"
    assert chinese["detail"].startswith("需要有效的访问令牌")
    assert english["detail"].startswith("A valid bearer token is required")


def test_field_errors_are_translated(reader):
    body = {"phone": 13800000000, "unexpected": True}
    chinese = _problem(reader.post("/api/v1/auth/login", json=body), 422)
    english = _problem(
        reader.post("/api/v1/auth/login", json=body, headers={"Accept-Language": "en"}), 422
    )
    assert chinese["type"] == english["type"] == "urn:qunfang:problem:validation-error"
    assert (chinese["title"], english["title"]) == ("校验失败", "Validation failed")

    def by_pointer(problem):
        return {e["pointer"]: e["detail"] for e in problem["errors"]}

    assert by_pointer(chinese) == {
        "/phone": "不是有效的字符串。",
        "/password": "缺少必填字段。",
        "/unexpected": "未知字段。",
    }
    assert by_pointer(english) == {
        "/phone": "Not a valid string.",
        "/password": "Missing data for required field.",
        "/unexpected": "Unknown field.",
    }


# -- pushes and exports ------------------------------------------------------------------------


def test_push_texts_are_chinese_by_default_and_english_on_request(app):
    data = {"title": "夜间巡逻", "reason": "天气", "to_status": "in_progress"}
    with app.app_context():
        assert push_texts("task_cancelled", data) == ("任务已取消: 夜间巡逻", "天气")
        assert push_texts("task_cancelled", data, "en") == ("Task cancelled: 夜间巡逻", "天气")
        assert push_texts("tip_status", data) == ("线索进展", "状态: 处理中")
        assert push_texts("tip_status", data, "en") == ("Tip update", "Status: in progress")
        assert push_texts("task_offered", {}) == ("新任务", "")


def test_csv_headers_in_both_languages(app):
    with app.app_context():
        chinese, english = csv_header("zh_CN"), csv_header("en")
    assert chinese[:3] == ["线索ID", "线索编码", "类别编码"]
    assert english[:3] == ["Tip ID", "Tip code", "Category key"]
    assert all(HAN.search(heading) for heading in chinese)
