#!/usr/bin/env python3
"""cosmic-ray's test command for one mutant (scripts/mutation.py): run only the tests that
executed the mutated lines, instead of the module's whole test folder.

    mutation_tests.py MAP ORIGINAL MUTATED -- PYTEST_FLAGS... -- TEST_PATHS...

MAP is the coverage map scripts/mutation.py made before the run, by running the module's tests
once against the unmutated copy: for each line of the module, the ids of the tests that executed
it ("" for lines run at import). ORIGINAL is the module in the checkout, MUTATED the same file in
the work copy, with cosmic-ray's mutant in it. The mutated lines are where the two differ; the
tests are those that executed any line of the statement around them (a condition spread over
three lines is one statement). Then:

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


def selected_tests(
    coverage: dict[str, list[str]], source: str, lines: set[int]
) -> list[str] | None:
    """The test ids that executed the statements holding `lines`; None when one of them runs at
    import time (every test then)."""
    tree = ast.parse(source)
    tests: dict[str, None] = {}
    for line in sorted(lines):
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
    coverage = json.loads(Path(map_path).read_text())["lines"]
    tests = selected_tests(coverage, "\n".join(original), lines) if lines else None
    if tests == []:
        print(f"mutation_tests: no test executes line(s) {sorted(lines)}: survived", flush=True)
        return 0
    if tests is None:
        print(f"mutation_tests: line(s) {sorted(lines)} run at import: every test", flush=True)
        tests = paths
    else:
        print(f"mutation_tests: line(s) {sorted(lines)}: {len(tests)} test(s)", flush=True)
    pytest = str(Path(sys.executable).with_name("pytest"))
    return subprocess.run([pytest, *flags, *tests], check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
