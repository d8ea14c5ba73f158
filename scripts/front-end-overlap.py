#!/usr/bin/env python3
"""How much of the async front-ends repeats the blocking ones.

For each crate, counts the code lines of the async front-end that are also
lines of the blocking front-end, after normalizing away what only the flavour
changes (`async`, `.await`, `Async` in names, whitespace). Comments, blank
lines, lines of only braces or brackets, `use` lines and `#[cfg(test)]`
modules are not counted. A line counts as repeated as many times as the
blocking side has it (a multiset match).

Usage: scripts/front-end-overlap.py [REPO]   (default: this repository)
"""
import collections
import pathlib
import re
import sys

PAIRS = [
    ("umqtt-simple", "umqtt-simple/src/blocking", "umqtt-simple/src/asynch"),
    ("umqtt-robust", "umqtt-robust/src/blocking", "umqtt-robust/src/asynch"),
]


def code_lines(folder: pathlib.Path):
    lines = []
    for path in sorted(folder.rglob("*.rs")):
        depth_in_tests = None
        depth = 0
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if depth_in_tests is None and line.startswith("#[cfg(test)]"):
                depth_in_tests = depth
            depth += line.count("{") - line.count("}")
            if depth_in_tests is not None:
                if depth <= depth_in_tests and "}" in line:
                    depth_in_tests = None
                continue
            line = re.sub(r"//.*$", "", line).strip()
            if not line or re.fullmatch(r"[{}()\[\];,]*", line) or line.startswith("use "):
                continue
            line = line.replace(".await", "")
            line = re.sub(r"\basync\s+(fn|move|\{)", r"\1", line)
            line = re.sub(r"\basync\b", "", line)
            line = re.sub(r"Async(?=[A-Z])", "", line)
            lines.append(re.sub(r"\s+", " ", line).strip())
    return lines


def main():
    repo = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent)
    total_repeated = total = 0
    for crate, blocking, asynch in PAIRS:
        b = collections.Counter(code_lines(repo / blocking))
        a = code_lines(repo / asynch)
        repeated = 0
        for line in a:
            if b[line] > 0:
                b[line] -= 1
                repeated += 1
        total_repeated += repeated
        total += len(a)
        share = repeated / len(a) if a else 0.0
        print(f"{crate:14} {repeated:4} of {len(a):4} async front-end lines repeat blocking ones ({share:.0%})")
    share = total_repeated / total if total else 0.0
    print(f"{'both':14} {total_repeated:4} of {total:4} ({share:.0%}); the target is at most 25%")


if __name__ == "__main__":
    main()
