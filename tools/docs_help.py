#!/usr/bin/env python3
"""docs_help.py - keep the --help texts quoted in docs/options.md true.

Each quoted help text in the document follows a marker line
    <!-- help: itrackerctl map --help -->
and is the fenced block right after it. --check (the default) runs every
marked command with today's build and fails on any difference, and also
when a command that `itrackerctl --help` lists has no marked block, so a
new option or command cannot land without its documentation. --update
rewrites the blocks from the binaries.

    python3 tools/docs_help.py [--check|--update] [--build DIR] [--doc FILE]
"""
import argparse
import difflib
import os
import re
import subprocess
import sys

MARKER = re.compile(r"^<!-- help: (.+) -->$")


def run_help(build, command):
    argv = command.split()
    argv[0] = os.path.join(build, argv[0])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        sys.exit(f"docs_help: `{command}` exited {out.returncode}: {out.stderr.strip()}")
    return out.stdout


def blocks(lines):
    """(marker line index, command, block start, block end) per marker; the
    block is lines[start:end], between the fences."""
    found = []
    for i, line in enumerate(lines):
        m = MARKER.match(line.rstrip("\n"))
        if not m:
            continue
        if i + 1 >= len(lines) or lines[i + 1].rstrip("\n") != "```":
            sys.exit(f"docs_help: line {i + 1}: the marker must be followed by a ``` fence")
        end = i + 2
        while end < len(lines) and lines[end].rstrip("\n") != "```":
            end += 1
        if end == len(lines):
            sys.exit(f"docs_help: line {i + 2}: unclosed fence")
        found.append((i, m.group(1), i + 2, end))
    return found


def ctl_commands(global_help):
    """The commands `itrackerctl --help` lists under "commands:"."""
    names, inside = [], False
    for line in global_help.splitlines():
        if line.startswith("commands:"):
            inside = True
        elif inside and not line.strip():
            break
        elif inside:
            names.append(line.split()[0])
    return sorted(set(names))


def main():
    ap = argparse.ArgumentParser()
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--update", action="store_true")
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--doc", default="docs/options.md")
    args = ap.parse_args()

    with open(args.doc) as f:
        lines = f.readlines()
    marked = blocks(lines)
    commands = [c for _, c, _, _ in marked]
    failures = []

    for want in ["itrackerd --help", "itrackerctl --help"]:
        if want not in commands:
            failures.append(f"no block for `{want}`")
    for name in ctl_commands(run_help(args.build, "itrackerctl --help")):
        if f"itrackerctl {name} --help" not in commands:
            failures.append(f"no block for `itrackerctl {name} --help` (a command of itrackerctl --help)")

    # from the last block up, so that --update's splices keep the indices
    for _, command, start, end in reversed(marked):
        text = run_help(args.build, command)
        documented = "".join(lines[start:end])
        if documented == text:
            continue
        if args.update:
            lines[start:end] = [l + "\n" for l in text.rstrip("\n").split("\n")]
            continue
        diff = difflib.unified_diff(documented.splitlines(), text.splitlines(),
                                    f"{args.doc} ({command})", f"`{command}` of {args.build}",
                                    lineterm="", n=1)
        failures.append(f"`{command}` differs from {args.doc}:\n" + "\n".join(diff))

    if args.update:
        with open(args.doc, "w") as f:
            f.writelines(lines)
        failures = [f for f in failures if f.startswith("no block")]
    for f in failures:
        print("docs_help: " + f, file=sys.stderr)
    if failures:
        print(f"docs_help: {len(failures)} problem(s); `python3 tools/docs_help.py --update` "
              "rewrites the blocks", file=sys.stderr)
        return 1
    print(f"docs_help: {len(marked)} help texts in {args.doc} match the binaries in {args.build}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
