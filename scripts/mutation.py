#!/usr/bin/env python3
"""Mutation testing of the modules that guard people (issue #22), with cosmic-ray.

`make mutation` runs this (it sets TEST_DATABASE_URL & co. as `make test` does). For each module
below, one at a time: copy the tree to var/mutation/<name>/ (the working tree is never mutated),
let cosmic-ray make its mutants there, run only that module's tests against each one, and print
the score (killed / mutants) and the diff of every surviving mutant. Sessions are kept in
var/mutation/<name>.sqlite: re-running resumes where a run stopped.

    scripts/mutation.py                      # every module
    scripts/mutation.py jurisdiction tips    # some of them (the names below)
    ONLY=public_heatmap,_conditions scripts/mutation.py heatmap
                                             # only the mutants inside those functions (a
                                             # large module's rule, when all of it takes hours)

An equivalent mutant (no observable difference) is marked on its line with
`# pragma: no mutate` and a reason; cr-filter-pragma skips those lines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv" / "bin"
OUT = ROOT / "var" / "mutation"
TIMEOUT_S = 300  # one mutant's test run; a mutant that hangs the tests counts as killed

# name: (module, tests that state its rules). Each mutant runs only these.
MODULES: dict[str, tuple[str, list[str]]] = {
    "jurisdiction": (
        "app/auth/jurisdiction.py",
        [
            "tests/auth/test_jurisdiction_covers.py",
            "tests/auth/test_jurisdiction_rule.py",
            "tests/core/test_access.py",
        ],
    ),
    "tips": ("app/tips/service.py", ["tests/tips"]),
    "tasks": ("app/tasks/service.py", ["tests/tasks"]),
    "exports": ("app/exports/service.py", ["tests/exports"]),
    "ingest": ("app/patrols/ingest.py", ["tests/patrols"]),
    "idempotency": (
        "app/core/idempotency.py",
        # The model's columns are held to the migrations by the drift test.
        [
            "tests/core/test_idempotency.py",
            "tests/test_migrations.py::test_models_and_migrations_agree",
        ],
    ),
    "media": (
        "app/media/service.py",
        # Who may attach which upload, and who sees it after: the decoding and the file store
        # have their own modules and tests (test_images.py, test_storage.py).
        [
            "tests/media/test_media_rules.py",
            "tests/media/test_routes.py::test_photo_of_a_named_tip_is_seen_by_its_reporter_and_the_area_staff_only",
            "tests/media/test_routes.py::test_unattached_upload_is_seen_by_its_uploader_only",
            "tests/media/test_routes.py::test_anonymous_photo_belongs_to_no_one_and_area_staff_see_it",
            "tests/media/test_routes.py::test_photo_of_an_anonymous_tip_sent_with_a_token_no_longer_names_its_uploader",
            "tests/media/test_routes.py::test_expired_uploads_and_their_files_are_deleted_attached_ones_kept",
            "tests/media/test_routes.py::test_upload_past_its_expiry_cannot_be_attached",
            "tests/tips/test_submit.py::test_photo_is_attached_once_and_only_by_its_uploader",
            "tests/tasks/test_rules.py::test_a_completion_with_someone_elses_photos_is_422_and_stores_nothing",
            "tests/tasks/test_rules.py::test_a_completion_with_ones_own_photos_stores_them",
            "tests/tasks/test_responses.py::test_completion_photos_are_kept_with_the_task_and_shown_to_its_staff",
        ],
    ),
    "sessions": (
        "app/auth/tokens.py",
        # Sign-in and rotation, the claims refused wherever a token is read, and which lookups
        # the identity cache answers (the warm-cache tests; the listener's own are elsewhere).
        [
            "tests/auth/test_sessions.py",
            "tests/auth/test_sessions_rules.py",
            "tests/auth/test_token_claims.py",
        ],
    ),
    "heatmap": ("app/grid/service.py", ["tests/grid"]),
}

# One mutant per site and rule, not every operator for every operator: a comparison is flipped
# (== / !=) or moved across its boundary (< / <=), `|` and `&` (SQL or/and) swapped, + and -
# swapped; AddNot, True/False, and/or, numbers, removed decorators and emptied loops stay.
EXCLUDED_OPERATORS = [
    r"core/ReplaceBinaryOperator_(?!Add_Sub$|Sub_Add$|BitOr_BitAnd$|BitAnd_BitOr$)",
    r"core/ReplaceComparisonOperator_(?!Eq_NotEq$|NotEq_Eq$|Lt_LtE$|LtE_Lt$|Gt_GtE$|GtE_Gt$"
    r"|Is_IsNot$|IsNot_Is$|In_NotIn$|NotIn_In$)",
]
EXCLUDED = re.compile("|".join(EXCLUDED_OPERATORS))

IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "var", "__pycache__", "node_modules", "*.pyc", ".pytest_cache"
)


def run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True)


def score(session: Path) -> tuple[int, int, int, list[str]]:
    """(mutants, killed, marked equivalent, ids of survivors) from a cosmic-ray session."""
    db = sqlite3.connect(session)
    try:
        rows = db.execute(
            "SELECT w.job_id, r.test_outcome, r.worker_outcome, m.operator_name "
            "FROM work_items w JOIN mutation_specs m ON m.job_id = w.job_id "
            "LEFT JOIN work_results r ON r.job_id = w.job_id"
        ).fetchall()
    finally:
        db.close()
    total = killed = skipped = 0
    survivors = []
    for job_id, test_outcome, worker_outcome, operator in rows:
        if EXCLUDED.match(operator):
            continue  # not one of the operators we run
        if worker_outcome == "SKIPPED":
            skipped += 1
            continue
        total += 1
        if test_outcome in ("KILLED", "INCOMPETENT") or worker_outcome == "ABNORMAL":
            killed += 1
        elif test_outcome == "SURVIVED":
            survivors.append(job_id)
    return total, killed, skipped, survivors


def keep_only(session: Path, definitions: list[str]) -> None:
    """Drop from a new session the mutants outside the functions `definitions`."""
    db = sqlite3.connect(session)
    try:
        specs = db.execute("SELECT job_id, definition_name FROM mutation_specs").fetchall()
        outside = [(job,) for job, definition in specs if definition not in definitions]
        db.executemany("DELETE FROM work_results WHERE job_id = ?", outside)
        db.executemany("DELETE FROM work_items WHERE job_id = ?", outside)
        db.executemany("DELETE FROM mutation_specs WHERE job_id = ?", outside)
        db.commit()
    finally:
        db.close()


def mutate(name: str, only: list[str]) -> tuple[int, int, int]:
    module, tests = MODULES[name]
    work = OUT / name
    label = name + ("-" + "-".join(sorted(only)) if only else "")
    session = OUT / f"{label}.sqlite"
    config = OUT / f"{name}.toml"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(ROOT, work, ignore=IGNORED, symlinks=True)
    (work / ".venv").symlink_to(ROOT / ".venv")
    pytest = f"{VENV}/pytest -x -q -p no:cacheprovider -o addopts= {' '.join(tests)}"
    config.write_text(
        "[cosmic-ray]\n"
        f'module-path = "{module}"\n'
        f"timeout = {TIMEOUT_S}\n"
        "excluded-modules = []\n"
        f'test-command = "{pytest}"\n'
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = {json.dumps(EXCLUDED_OPERATORS)}\n"
    )
    cr = str(VENV / "cosmic-ray")
    if not session.exists():
        run([cr, "init", str(config), str(session)], work)
        run([str(VENV / "cr-filter-operators"), str(session), str(config)], work)
        run([str(VENV / "cr-filter-pragma"), str(session)], work)
        if only:
            keep_only(session, only)
    started = time.monotonic()
    run([cr, "exec", str(config), str(session)], work)
    total, killed, skipped, survivors = score(session)
    if survivors:
        print(f"\n== {name}: surviving mutants of {module} ==", flush=True)
        subprocess.run(
            [str(VENV / "cr-report"), "--surviving-only", "--show-diff", str(session)],
            cwd=work,
            check=False,
        )
    pct = 100 * killed / total if total else 100.0
    minutes = (time.monotonic() - started) / 60
    print(
        f"{label}: {module} {killed}/{total} killed = {pct:.0f}% "
        f"({skipped} marked equivalent, {minutes:.1f} min)",
        flush=True,
    )
    return total, killed, skipped


def main(argv: list[str]) -> int:
    if not os.environ.get("TEST_DATABASE_URL"):
        print("run it with `make mutation` (it starts the private test cluster)", file=sys.stderr)
        return 2
    names = argv or list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        print(f"unknown module(s) {unknown}; known: {list(MODULES)}", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    only = [d for d in os.environ.get("ONLY", "").split(",") if d]
    table = {name: mutate(name, only) for name in names}
    print("\n| module | mutants | killed | score | equivalent |")
    print("| --- | --- | --- | --- | --- |")
    for name, (total, killed, skipped) in table.items():
        pct = 100 * killed / total if total else 100.0
        scope = f" ({', '.join(only)})" if only else ""
        print(f"| {MODULES[name][0]}{scope} | {total} | {killed} | {pct:.0f}% | {skipped} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
