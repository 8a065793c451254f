#!/usr/bin/env python3
"""cosmic-ray's test command for one mutant (scripts/mutation.py): run only the tests that
executed the mutated lines, instead of the module's whole test folder.

    mutation_tests.py MAP ORIGINAL MUTATED -- PYTEST_FLAGS... -- TEST_PATHS...

MAP is the coverage map scripts/mutation.py made before the run, by running the module's tests
once against the unmutated copy: for each line of the module, the ids of the tests that executed
it ("" for lines run at import). ORIGINAL is the module as the run found it (saved beside the
map), MUTATED the same file in the work copy, with cosmic-ray's mutant in it. The mutated lines
are where the two differ; the tests are those that executed any line of the statement around
them (a condition spread over three lines is one statement). Then:

- no test executed it: exit 0, the mutant survives (nobody runs that code, so nothing can catch
  a bug there: an honest survivor);
- it runs at import (a decorator, a default argument, a module constant), or the diff is not
  understood: every test in PYTEST_ARGS, as without a map;
- else pytest -x on those test ids.
"""

from __future__ import annotations

import ast
import difflib
import json
import subprocess
import sys
from pathlib import Path


def changed_lines(original: list[str], mutated: list[str]) -> set[int]:
    """Line numbers (1-based, in `original`) that the mutant changed or removed, or next to
    which it inserted lines."""
    lines: set[int] = set()
    matcher = difflib.SequenceMatcher(a=original, b=mutated, autojunk=False)
    for tag, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            lines.update(range(i1 + 1, i2 + 1))
        elif tag == "insert":
            lines.update({max(i1, 1), i1 + 1})
    return lines


def statement_span(tree: ast.Module, line: int) -> range:
    """The lines of the innermost statement holding `line`; for a compound statement (if,
    for, with, def...), only its header (the test and the decorators, not the body)."""
    best: ast.stmt | None = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt):
            continue
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        if not first <= line <= (node.end_lineno or node.lineno):
            continue
        if best is None or (node.end_lineno or 0) - first <= (best.end_lineno or 0) - best.lineno:
            best = node
    if best is None:
        return range(line, line + 1)
    first = min([best.lineno] + [d.lineno for d in getattr(best, "decorator_list", [])])
    body = getattr(best, "body", None)
    if body and isinstance(body, list) and isinstance(body[0], ast.stmt):
        last = max(body[0].lineno - 1, best.lineno)
        if first <= line <= last:
            return range(first, last + 1)
        # `else:` / `finally:` / `except X:` lines sit between bodies: the line itself.
        return range(line, line + 1)
    return range(first, (best.end_lineno or best.lineno) + 1)


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """((row, col), (end_row, end_col)) of every annotation, when the module postpones them
    (`from __future__ import annotations`): they are then strings no code evaluates, and a
    mutant inside one is equivalent."""
    tree = ast.parse(source)
    postponed = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    if not postponed:
        return []
    annotations: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            annotations.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            annotations.append(node.returns)
    return [
        ((a.lineno, a.col_offset), (a.end_lineno or a.lineno, a.end_col_offset or 0))
        for a in annotations
    ]


def in_annotation(source: str, start: tuple[int, int], end: tuple[int, int]) -> bool:
    """Whether the source between `start` and `end` ((row, col), rows from 1) lies inside a
    postponed annotation."""
    return any(first <= start and end <= last for first, last in annotation_spans(source))


def annotation_only(original: str, mutated: str) -> bool:
    """Whether the mutant changed nothing but postponed annotations."""
    if not annotation_spans(original):
        return False
    try:
        trees = [ast.parse(original), ast.parse(mutated)]
    except SyntaxError:
        return False
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.arg | ast.AnnAssign):
                node.annotation = None  # type: ignore[assignment]
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                node.returns = None
    return ast.dump(trees[0]) == ast.dump(trees[1])


def inside_a_body(tree: ast.Module, line: int) -> bool:
    """Whether `line` is in the body of a function, not run at import: the module's own
    statements, class bodies and a function's header (decorators, defaults) are run when the
    module is imported, and a test session may import it during any test's set-up, so coverage
    cannot tell which test that was."""
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body[0].lineno <= line <= (node.end_lineno or node.lineno)
        for node in ast.walk(tree)
    )


def defines_an_inner_function(tree: ast.Module, line: int) -> bool:
    """Whether `line` is the header (decorators, `def` line) of a function defined inside
    another: running it registers or wraps that function (an app's loaders, a view's wrapper)
    once, when the outer one runs (while the app is made), and what it changes shows in every
    later call, in tests coverage does not name."""
    for outer in ast.walk(tree):
        if not isinstance(outer, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(outer):
            if inner is outer or not isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            first = min([d.lineno for d in inner.decorator_list] + [inner.lineno])
            if first <= line < inner.body[0].lineno:
                return True
    return False


def selected_tests(
    coverage: dict[str, list[str]], source: str, lines: set[int]
) -> list[str] | None:
    """The test ids that executed the statements holding `lines`; None when one of them runs at
    import time or defines an inner function (every test then)."""
    tree = ast.parse(source)
    tests: dict[str, None] = {}
    for line in sorted(lines):
        if not inside_a_body(tree, line) or defines_an_inner_function(tree, line):
            return None
        for covered in statement_span(tree, line):
            for context in coverage.get(str(covered), []):
                if context == "":
                    return None
                tests[context] = None
    return list(tests)


def main(argv: list[str]) -> int:
    first = argv.index("--")
    second = argv.index("--", first + 1)
    map_path, original_path, mutated_path = argv[:first]
    flags, paths = argv[first + 1 : second], argv[second + 1 :]
    original = Path(original_path).read_text().splitlines()
    mutated = Path(mutated_path).read_text().splitlines()
    lines = changed_lines(original, mutated)
    if annotation_only("\n".join(original), "\n".join(mutated)):
        # scripts/mutation.py counts these as equivalent (they change no behaviour).
        print(f"mutation_tests: line(s) {sorted(lines)}: an annotation only", flush=True)
        return 0
    known = json.loads(Path(map_path).read_text())
    coverage, durations = known["lines"], known.get("durations", {})
    tests = selected_tests(coverage, "\n".join(original), lines) if lines else None
    if tests == []:
        print(f"mutation_tests: no test executes line(s) {sorted(lines)}: survived", flush=True)
        return 0
    if tests is None:
        print(f"mutation_tests: line(s) {sorted(lines)} run at import: every test", flush=True)
        tests = paths
    else:
        print(f"mutation_tests: line(s) {sorted(lines)}: {len(tests)} test(s)", flush=True)
        # The fastest first: a mutant is most often killed by the first test that fails (-x).
        tests.sort(key=lambda test: durations.get(test, float("inf")))
    pytest = str(Path(sys.executable).with_name("pytest"))
    return subprocess.run([pytest, *flags, *tests], check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
