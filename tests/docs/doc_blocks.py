#!/usr/bin/env python3
"""doc_blocks.py - the shell examples of a Markdown file as a bash script for test_docs.sh.

Every ```sh block of the file, in order, becomes one `step` call per command (a line, with
its backslash continuations and here-documents), so that test_docs.sh runs each in one shell,
in order, and checks its exit status. Rewritten on the way, and only this:
  - a `capstan serve` line (in the foreground in the docs, meant for another terminal, or
    with a trailing &) becomes `serve_at ARGS`: the previous server stops and this one starts
    in the background on the test's port;
  - port 8080 becomes the test's port ($PORT).
Commands matching SKIP are not run, nor the blocks after a `<!-- docs-test: skip: REASON -->`
line; each is listed with its reason on stderr, so what the test leaves out is visible.

usage: doc_blocks.py FILE.md > steps.sh
"""
import re
import shlex
import sys

# (pattern, reason): commands the test cannot run as written.
SKIP = [
    (r"^make (run|test)\b", "the README's own entry points: CI runs make test, make run serves forever"),
    (r"^make image\b", "tests/image builds the image"),
    (r"<[a-z]+>|\.\.\.|\bREGISTRY\b", "a placeholder for the reader's own value"),
    (r"\b(f|fleet)\.yaml\b", "the reader's own file"),
    (r"^(CAPSTAN_TOKEN=\S+ )?kubectl (?!kustomize)", "needs a Kubernetes cluster (kubectl kustomize, offline, runs)"),
]


def commands(text):
    """Yields (line number, command) for each command of each ```sh block."""
    lines = text.split("\n")
    i, skip = 0, None
    while i < len(lines):
        marker = re.match(r"\s*<!-- docs-test: skip: (.*) -->", lines[i])
        if marker:
            skip = marker.group(1)
        if lines[i].strip() != "```sh":
            i += 1
            continue
        i += 1
        if skip:
            print("docs: skipped the block at line %d: %s" % (i, skip), file=sys.stderr)
            while i < len(lines) and lines[i].strip() != "```":
                i += 1
            skip = None
            i += 1
            continue
        while i < len(lines) and lines[i].strip() != "```":
            start, cmd = i + 1, lines[i]
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd += "\n" + lines[i]
            heredoc = re.search(r"<<-?'?(\w+)'?", cmd)
            if heredoc:
                end = heredoc.group(1)
                while i + 1 < len(lines) and lines[i].strip() != end:
                    i += 1
                    cmd += "\n" + lines[i]
            i += 1
            if cmd.strip() and not cmd.lstrip().startswith("#"):
                yield start, cmd
        i += 1


def rewrite(cmd):
    cmd = cmd.replace("8080", "$PORT")
    m = re.match(r"^(?:build/)?capstan serve(.*?)\s*(&)?\s*(#.*)?$", cmd)
    if m:
        return "serve_at" + m.group(1)
    return cmd


def main():
    path = sys.argv[1]
    for line, cmd in commands(open(path).read()):
        where = "%s:%d" % (path.rsplit("/", 1)[-1], line)
        reason = next((r for p, r in SKIP if re.search(p, cmd)), None)
        if reason:
            print("docs: skipped %s: %s (%s)" % (where, cmd.split("\n")[0], reason),
                  file=sys.stderr)
            continue
        print("step %s %s" % (shlex.quote(where), shlex.quote(rewrite(cmd))))


main()
