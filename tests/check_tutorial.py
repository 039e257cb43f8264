#!/usr/bin/env python3
"""Keeps docs/tutorial.md in sync with the program the test suite compiles.

Each code block of the tutorial is preceded by a marker naming its source:

    <!-- include: app.cpp#train -->        the region of docs/tutorial/app.cpp between
    ```cpp                                 "// tutorial: begin train" and
    ...                                    "// tutorial: end train" (dedented)
    ```
    <!-- include: CMakeLists.txt -->       a whole file of docs/tutorial/

Fails (exit 1, one line per problem) when a ```cpp block has no marker, a block
differs from its source, a marker names a missing region, or a region of app.cpp
is not shown in the tutorial. `--update` rewrites the blocks from the sources.
"""
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MD = ROOT / "docs" / "tutorial.md"
SRC = ROOT / "docs" / "tutorial"
MARKER = re.compile(r"^<!-- include: ([\w./-]+?)(?:#([\w-]+))? -->$")
BEGIN = re.compile(r"^\s*// tutorial: begin ([\w-]+)\s*$")
END = re.compile(r"^\s*// tutorial: end ([\w-]+)\s*$")


def regions(path):
    """name -> dedented text of every "// tutorial: begin/end name" region of `path`."""
    out, name, body = {}, None, []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if m := BEGIN.match(line):
            if name:
                sys.exit(f"{path}:{n}: region '{m[1]}' begins inside region '{name}'")
            name, body = m[1], []
        elif m := END.match(line):
            if m[1] != name:
                sys.exit(f"{path}:{n}: 'end {m[1]}' does not close region '{name}'")
            out[name] = textwrap.dedent("\n".join(body) + "\n")
            name = None
        elif name:
            body.append(line)
    if name:
        sys.exit(f"{path}: region '{name}' is never closed")
    return out


def source_text(file, region, cache):
    path = SRC / file
    if not path.is_file():
        return None, f"{file} does not exist in {SRC}"
    if region is None:
        return path.read_text(), None
    if path not in cache:
        cache[path] = regions(path)
    if region not in cache[path]:
        return None, f"{file} has no region '{region}'"
    return cache[path][region], None


def main():
    update = "--update" in sys.argv[1:]
    lines = MD.read_text().splitlines(keepends=True)
    cache, problems, used, out = {SRC / "app.cpp": regions(SRC / "app.cpp")}, [], set(), []
    i, marker = 0, None
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip("\n")
        if m := MARKER.match(stripped):
            marker = (m[1], m[2], i + 1)
            out.append(line)
            i += 1
            continue
        if stripped.startswith("```") and stripped != "```":
            lang = stripped[3:].strip()
            j = i + 1
            while j < len(lines) and lines[j].rstrip("\n") != "```":
                j += 1
            if j == len(lines):
                sys.exit(f"{MD}:{i + 1}: unclosed code block")
            block = "".join(lines[i + 1:j])
            if marker and marker[2] == i:  # the marker is on the line just above the fence
                file, region, _ = marker
                used.add((file, region))
                text, err = source_text(file, region, cache)
                if err:
                    problems.append(f"{MD.name}:{i + 1}: {err}")
                elif text != block:
                    if update:
                        block = text
                    else:
                        problems.append(f"{MD.name}:{i + 1}: block differs from {file}"
                                        f"{'#' + region if region else ''} (run tests/check_tutorial.py --update)")
            elif lang == "cpp":
                problems.append(f"{MD.name}:{i + 1}: ```cpp block without an '<!-- include: app.cpp#NAME -->' line above")
            out += [line, block, lines[j]]
            marker = None
            i = j + 1
            continue
        marker = None if stripped else marker
        out.append(line)
        i += 1
    for path, names in cache.items():
        for name in names:
            if (path.name, name) not in used:
                problems.append(f"{path.name}: region '{name}' is not shown in {MD.name}")
    if update:
        MD.write_text("".join(out))
    for p in problems:
        print(p)
    return 1 if problems and not update else 0


if __name__ == "__main__":
    sys.exit(main())
