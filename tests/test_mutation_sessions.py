"""`make mutation`'s sessions fit only the code they were made from (scripts/mutation.py): a
cosmic-ray session holds its mutants as line and column positions, so resuming it, or running
its survivors again, after the module's code changed would mutate other code than it reports.
Made here with cosmic-ray itself (requirements-dev.txt) on a module of three lines."""

from __future__ import annotations

import importlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
MODULE = "def allowed(age):\n    return age >= 18\n"


@pytest.fixture
def mutation(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module("mutation")


@pytest.fixture
def session(tmp_path, mutation) -> Path:
    """A cosmic-ray session of `MODULE` as scripts/mutation.py makes one (its code recorded)."""
    (tmp_path / "rule.py").write_text(MODULE)
    config = tmp_path / "rule.toml"
    config.write_text(
        "[cosmic-ray]\n"
        'module-path = "rule.py"\n'
        "timeout = 10\n"
        "excluded-modules = []\n"
        'test-command = "true"\n'
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )
    made = tmp_path / "rule.sqlite"
    cosmic_ray = Path(sys.executable).parent / "cosmic-ray"
    init = [str(cosmic_ray), "init", str(config), str(made)]
    subprocess.run(init, cwd=tmp_path, check=True)  # noqa: S603 - our venv's cosmic-ray
    mutation.record_fingerprint(made, MODULE)
    return made


def mutants(session: Path) -> int:
    with sqlite3.connect(session) as db:
        return db.execute("SELECT count(*) FROM work_items").fetchone()[0]


@pytest.mark.parametrize("rerun", [False, True])
def test_a_session_goes_on_while_only_comments_changed(mutation, session, rerun):
    marked = MODULE.replace(">= 18", ">= 18  # pragma: no mutate - the age of majority")
    assert mutation.keep_session(session, marked, "rule", rerun)
    assert mutation.keep_session(session, MODULE + "# the end\n", "rule", rerun)
    assert mutants(session) > 0  # kept whole


@pytest.mark.parametrize(
    "changed",
    [
        MODULE.replace(">=", ">"),  # the rule itself
        "\n" + MODULE,  # every position moved down a line
        MODULE.replace("age", "years"),
    ],
)
def test_a_run_on_changed_code_starts_a_new_session(mutation, session, changed, capsys):
    before = session.read_bytes()
    assert not mutation.keep_session(session, changed, "rule", rerun=False)
    assert not session.exists()
    assert session.with_suffix(".stale.sqlite").read_bytes() == before  # set aside, not lost
    assert "code changed or moved since its session was made" in capsys.readouterr().out


def test_survivors_are_not_run_again_on_changed_code(mutation, session):
    before = session.read_bytes()
    with pytest.raises(SystemExit, match="survivors are those of other code"):
        mutation.keep_session(session, MODULE.replace("18", "16"), "rule", rerun=True)
    assert session.read_bytes() == before  # nothing lost: a plain run decides


def test_survivors_need_a_session(mutation, tmp_path):
    with pytest.raises(SystemExit, match="no session"):
        mutation.keep_session(tmp_path / "none.sqlite", MODULE, "rule", rerun=True)
    empty = tmp_path / "empty.sqlite"
    empty.touch()  # left by a run stopped before cosmic-ray made its session
    assert not mutation.keep_session(empty, MODULE, "rule", rerun=False)
    assert not empty.exists()


def test_a_session_that_does_not_say_its_code_is_not_resumed(mutation, session):
    """Sessions made before fingerprints were kept: nothing tells which code they fit."""
    with sqlite3.connect(session) as db:
        db.execute("DROP TABLE qunfang_module")
    assert mutation.made_from(session) is None
    with pytest.raises(SystemExit, match="survivors are those of other code"):
        mutation.keep_session(session, MODULE, "rule", rerun=True)
    assert not mutation.keep_session(session, MODULE, "rule", rerun=False)
    assert not session.exists()
