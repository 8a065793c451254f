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

Two things keep a mutant's run short without running fewer of the tests that could catch it:
- Before the mutants, the module's tests run once with coverage contexts (pytest-cov), which
  gives for each line of the module the tests that executed it (var/mutation/<label>.map.json).
  A mutant then runs only the tests that executed its lines (scripts/mutation_tests.py); a
  mutant on lines no test executes survives without running anything, and one on lines run at
  import (a decorator, a default, a constant) runs every test, as before.
- The sessions copy a database migrated once for the run (scripts/mutation_template.py,
  QF_TEST_TEMPLATE_DATABASE in tests/conftest.py) instead of each migrating its own: a mutant
  changes the module, never a migration. Not when the module runs while the database is built
  (then each session builds its own, as before).

    RERUN=survivors scripts/mutation.py tips # only the session's survivors again (after adding
                                             # tests), not the mutants killed or not run yet

A session holds its mutants as positions in the module's text, so it fits only the code it was
made from: it records the code's fingerprint (code_fingerprint: a pragma or any comment leaves
it alone), a run on changed code starts a new session, and RERUN=survivors on changed code is
refused (those survivors were another code's).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import coverage
from mutation_tests import in_annotation

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
    "tips": (
        "app/tips/service.py",
        # Approving what Open311 publishes about a tip is a rule of the tips' service.
        ["tests/tips", "tests/open311/test_public_summary.py"],
    ),
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
        # Uploads (decoding and stores have their own tests too), who may attach which upload and
        # who sees it after, serving each variant, and the sweep of expired uploads.
        [
            "tests/media",
            "tests/tips/test_submit.py::test_photo_is_attached_once_and_only_by_its_uploader",
            "tests/tasks/test_rules.py::test_a_completion_with_someone_elses_photos_is_422_and_stores_nothing",
            "tests/tasks/test_rules.py::test_a_completion_with_ones_own_photos_stores_them",
            "tests/tasks/test_responses.py::test_completion_photos_are_kept_with_the_task_and_shown_to_its_staff",
        ],
    ),
    # Which object's rule grants a photo to someone besides its uploader (registered by tips and
    # tasks at app start): the photo tests of both, through the API.
    "media_access": (
        "app/media/access.py",
        [
            "tests/media/test_routes.py",
            "tests/tips/test_staff_rules.py::test_a_tips_detail_shows_its_own_photos_only",
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


# The sessions load no plugin but Hypothesis' (PYTEST_DISABLE_PLUGIN_AUTOLOAD): schemathesis'
# alone costs seconds of start-up, and no test these modules name uses it (the run that maps
# lines to tests fails otherwise, before any mutant).
ANNOTATION = "an annotation: never evaluated (from __future__ import annotations)"
DURATION = re.compile(r"^(?P<seconds>[0-9.]+)s (?:setup|call|teardown) +(?P<test>.+)$", re.M)
PYTEST_FLAGS = "-x -q -p no:cacheprovider -p _hypothesis_pytestplugin -o addopts="


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, env=env)


def prepare(
    name: str, module: str, tests: list[str], work: Path, template: str, coverage_map: Path
) -> None:
    """Before the mutants: the template database, the compiled work copy and the map of which
    tests execute which line of `module`."""
    built = subprocess.run(
        [str(VENV / "python"), "scripts/mutation_template.py", "build", template, module],
        cwd=work,
        check=True,
        capture_output=True,
        text=True,
    )
    used_while_building = json.loads(built.stdout.strip().splitlines()[-1])
    if used_while_building:
        print(
            f"{name}: {module} runs while the database is built (lines {used_while_building}): "
            "each test session builds its own",
            flush=True,
        )
        os.environ.pop("QF_TEST_TEMPLATE_DATABASE", None)
    else:
        os.environ["QF_TEST_TEMPLATE_DATABASE"] = template
    # cosmic-ray runs the tests with PYTHONDONTWRITEBYTECODE: without this, every session
    # compiles the whole application again. (The mutated module's source is newer than its
    # .pyc, so it is always compiled from the mutant.)
    run([str(VENV / "python"), "-m", "compileall", "-q", "app", "geo", "tests"], work)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    fingerprint = hashlib.sha256(Path(__file__).read_bytes())  # and how the map is made
    for path in sorted(tested_files(work, module, tests)):
        fingerprint.update(str(path.relative_to(work)).encode() + b"\0" + path.read_bytes())
    if coverage_map.exists():
        known = json.loads(coverage_map.read_text())
        if known.get("fingerprint") == fingerprint.hexdigest():
            print(f"{name}: the module and its tests are unchanged: map kept", flush=True)
            return
    data_file = OUT / f"{name}.coverage"
    data_file.unlink(missing_ok=True)
    print(f"{name}: running its tests once to map lines to tests", flush=True)
    mapped = subprocess.run(
        [
            str(VENV / "pytest"),
            *PYTEST_FLAGS.split(),
            "-p",
            "pytest_cov.plugin",
            f"--cov={Path(module).parent}",
            "--cov-context=test",
            "--cov-report=",
            "--durations=0",
            "--durations-min=0",
            *tests,
        ],
        cwd=work,
        env={**os.environ, "COVERAGE_FILE": str(data_file)},
        capture_output=True,
        text=True,
        check=False,
    )
    print(mapped.stdout.strip().splitlines()[-1], flush=True)
    if mapped.returncode != 0:
        print(mapped.stdout, mapped.stderr, sep="\n", file=sys.stderr)
        raise SystemExit(f"{name}: its tests fail without a mutant; fix them first")
    # A mutant's tests run fastest first: most mutants are killed, by the first test that fails.
    durations: dict[str, float] = {}
    for match in DURATION.finditer(mapped.stdout):
        seconds, test = float(match["seconds"]), match["test"].strip()
        durations[test] = durations.get(test, 0.0) + seconds
    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    lines: dict[str, list[str]] = {}
    for line, contexts in (data.contexts_by_lineno(str(work / module)) or {}).items():
        # pytest-cov's contexts are "<test id>|setup", "|run" and "|teardown"; "" is import.
        tests = sorted({context.rpartition("|")[0] for context in contexts})
        # A line run only while fixtures are set up is fixture work, and a fixture of a wider
        # scope (the app, made once a session: its routes decorated then) is set up during
        # whichever test comes first: coverage names that one test. Every test, as at import.
        if contexts and all(context.endswith("|setup") for context in contexts):
            tests = [""]
        lines[str(line)] = tests
    coverage_map.write_text(
        json.dumps({"fingerprint": fingerprint.hexdigest(), "lines": lines, "durations": durations})
    )
    data_file.unlink(missing_ok=True)


def tested_files(work: Path, module: str, tests: list[str]) -> set[Path]:
    """The module and every file of its tests (and the conftests above them): what the map of
    lines to tests depends on."""
    files = {work / module, work / "tests" / "conftest.py"}
    for test in tests:
        path = work / test.split("::")[0]
        files.update(path.rglob("*.py") if path.is_dir() else [path])
        files.update(p / "conftest.py" for p in path.parents if (p / "conftest.py").exists())
    return {f for f in files if f.is_relative_to(work)}


def skip_annotations(session: Path, module_file: Path) -> None:
    """Mark the mutants inside annotations as equivalent: the modules postpone them (`from
    __future__ import annotations`), so no code evaluates them (`str & None` for `str | None`)."""
    source = module_file.read_text()
    db = sqlite3.connect(session)
    try:
        specs = db.execute(
            "SELECT job_id, start_pos_row, start_pos_col, end_pos_row, end_pos_col "
            "FROM mutation_specs"
        ).fetchall()
        inside = [
            (job, ANNOTATION)
            for job, row, col, end_row, end_col in specs
            if in_annotation(source, (row, col), (end_row, end_col))
        ]
        db.executemany(
            "INSERT OR REPLACE INTO work_results (job_id, worker_outcome, output) "
            "VALUES (?, 'SKIPPED', ?)",
            inside,
        )
        db.commit()
    finally:
        db.close()


def code_fingerprint(source: str) -> str:
    """What a session's positions depend on: the module's syntax tree with every node's line
    and column. A comment (a pragma at a line's end) leaves it alone; a change of code, or a
    line added above one, does not. (So may another Python's `ast.dump`: a new interpreter
    starts sessions anew, which is safe.)"""
    tree = ast.dump(ast.parse(source), include_attributes=True)
    return hashlib.sha256(tree.encode()).hexdigest()


def record_fingerprint(session: Path, source: str) -> None:
    db = sqlite3.connect(session)
    try:
        db.execute("CREATE TABLE IF NOT EXISTS qunfang_module (fingerprint TEXT NOT NULL)")
        db.execute("DELETE FROM qunfang_module")
        db.execute("INSERT INTO qunfang_module VALUES (?)", (code_fingerprint(source),))
        db.commit()
    finally:
        db.close()


def made_from(session: Path) -> str | None:
    """The fingerprint of the code `session` was made from (None: made before they were kept)."""
    db = sqlite3.connect(session)
    try:
        known = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'qunfang_module'"
        ).fetchone()
        row = known and db.execute("SELECT fingerprint FROM qunfang_module").fetchone()
        return row[0] if row else None
    finally:
        db.close()


def keep_session(session: Path, source: str, label: str, rerun: bool) -> bool:
    """Whether the session in `session` can go on for the module's `source`: False when there
    is none (or an empty one, left by a run stopped before cosmic-ray made it) or when it was
    made from other code or does not say (then it is set aside, as <label>.stale.sqlite: its
    results are another code's)."""
    if session.exists() and session.stat().st_size == 0:
        session.unlink()
    if not session.exists():
        if rerun:
            raise SystemExit(f"{label}: no session to take survivors from; run without RERUN")
        return False
    # A session from before fingerprints were kept is taken as other code's: nothing tells.
    if made_from(session) == code_fingerprint(source):
        return True
    if rerun:
        raise SystemExit(
            f"{label}: the module's code changed or moved since its session was made (more than "
            "a comment at a line's end), or the session does not say: the survivors are those "
            "of other code. Run without RERUN=survivors to start a new session."
        )
    stale = session.with_suffix(".stale.sqlite")
    print(
        f"{label}: the module's code changed or moved since its session was made (or it does "
        f"not say): new session; the old one is {stale.name}",
        flush=True,
    )
    session.replace(stale)  # kept for a look (a run's results are hours of work), not resumed
    return False


def survivors_of(session: Path) -> Path:
    """A copy of `session` holding only its survivors, with their results forgotten."""
    copy = session.with_suffix(".survivors.sqlite")
    shutil.copyfile(session, copy)
    db = sqlite3.connect(copy)
    try:
        others = db.execute(
            "SELECT w.job_id FROM work_items w LEFT JOIN work_results r ON r.job_id = w.job_id "
            "WHERE r.test_outcome IS NOT 'SURVIVED'"
        ).fetchall()
        for table in ("work_results", "mutation_specs", "work_items"):
            db.executemany(f"DELETE FROM {table} WHERE job_id = ?", others)  # noqa: S608
        db.execute("DELETE FROM work_results")
        db.commit()
    finally:
        db.close()
    return copy


def take_results(copy: Path, session: Path) -> None:
    """Put the results of a run of `copy` (survivors_of) into `session`."""
    db = sqlite3.connect(session)
    try:
        db.execute("ATTACH DATABASE ? AS again", (str(copy),))
        db.execute("INSERT OR REPLACE INTO work_results SELECT * FROM again.work_results")
        db.commit()
    finally:
        db.close()
    copy.unlink()


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


def mutate(name: str, only: list[str]) -> tuple[int, int, int, int]:
    module, tests = MODULES[name]
    work = OUT / name
    label = name + ("-" + "-".join(sorted(only)) if only else "")
    session = OUT / f"{label}.sqlite"
    config = OUT / f"{name}.toml"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(ROOT, work, ignore=IGNORED, symlinks=True)
    (work / ".venv").symlink_to(ROOT / ".venv")
    coverage_map = OUT / f"{label}.map.json"
    # The module as the run found it: the checkout may be edited meanwhile (tests, pragmas).
    original = OUT / f"{label}.original.py"
    shutil.copyfile(work / module, original)
    pytest = (
        f"{VENV}/python {ROOT}/scripts/mutation_tests.py {coverage_map} {original} "
        f"{work / module} -- {PYTEST_FLAGS} -- {' '.join(tests)}"
    )
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
    rerun = os.environ.get("RERUN") == "survivors"
    if not keep_session(session, original.read_text(), label, rerun):
        run([cr, "init", str(config), str(session)], work)
        run([str(VENV / "cr-filter-operators"), str(session), str(config)], work)
        run([str(VENV / "cr-filter-pragma"), str(session)], work)
        if only:
            keep_only(session, only)
        record_fingerprint(session, original.read_text())
    skip_annotations(session, original)
    # Again only the survivors (after tests were added), in a session of their own: cosmic-ray
    # would run every mutant not run yet too. Lines since marked `no mutate` are skipped.
    todo = survivors_of(session) if rerun else session
    if rerun:
        run([str(VENV / "cr-filter-pragma"), str(todo)], work)
    started = time.monotonic()
    template = f"qunfang_mutation_{name}"
    try:
        prepare(name, module, tests, work, template, OUT / f"{label}.map.json")
        run([cr, "exec", str(config), str(todo)], work)
    finally:
        run([str(VENV / "python"), "scripts/mutation_template.py", "drop", template], work)
        if rerun:
            take_results(todo, session)
    skip_annotations(session, original)
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
    not_run = total - killed - len(survivors)
    # A run stopped early scored the mutants it ran: cosmic-ray takes them in no order of
    # the file's, so they are a sample of the module's.
    sample = f"; {killed}/{killed + len(survivors)} of those run" if not_run else ""
    print(
        f"{label}: {module} {killed}/{total} killed = {pct:.0f}% "
        f"({skipped} marked equivalent, {not_run} not run yet{sample}; {minutes:.1f} min)",
        flush=True,
    )
    return total, killed, skipped, not_run


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
    print("\n| module | mutants | killed | score | equivalent | not run yet |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (total, killed, skipped, not_run) in table.items():
        pct = 100 * killed / total if total else 100.0
        scope = f" ({', '.join(only)})" if only else ""
        print(
            f"| {MODULES[name][0]}{scope} | {total} | {killed} | {pct:.0f}% | {skipped} "
            f"| {not_run} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
