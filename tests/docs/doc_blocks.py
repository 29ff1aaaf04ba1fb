#!/usr/bin/env python3
"""doc_blocks.py - the shell examples of a Markdown file as a bash script for test_docs.sh.

Every ```sh block of the file, in order, becomes one `step` call per command (a line, with
its backslash continuations and here-documents), so that test_docs.sh runs each in one shell,
in order, and checks its exit status. Where the docs show what a command prints, a `shown`
call follows its step, and test_docs.sh compares the two (doc_output.py says how):
  - a ```json or ```text block right after a ```sh block is what the block's last command
    prints (json: the whole answer; text: lines it contains);
  - a trailing comment `# → TEXT` is text the command's output contains;
  - any other curl command must not be answered `{"error": ...}` (curl -s exits 0 on a 404).
Rewritten on the way, and only this:
  - a `capstan serve` line (in the foreground in the docs, meant for another terminal, or
    with a trailing &) becomes `serve_at ARGS`: the previous server stops and this one starts
    in the background on the test's port;
  - port 8080 becomes the test's port ($PORT).
Commands matching SKIP are not run, nor the blocks after a `<!-- docs-test: skip: REASON -->`
line; each is listed with its reason on stderr, so what the test leaves out is visible. A
skipped command that starts the server the rest of its block talks to (a `capstan serve`
line, `kubectl port-forward`) skips the rest of the block with it.

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


SHOWN = re.compile(r"\s# → (.*)$", re.M)


# A skipped command matching this starts the server its block's later commands talk to.
STARTS_SERVER = re.compile(r"^(?:build/)?capstan serve\b|^kubectl port-forward\b")


def commands(text):
    """Yields (block number, line number, command, shown) for each command of each ```sh
    block; shown is None or (kind, text) as the module's docstring says."""
    lines = text.split("\n")
    i, skip, n_block = 0, None, 0
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
        block = []
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
                comment = SHOWN.search(cmd)
                block.append([start, cmd, ("text", comment.group(1)) if comment else None])
        i += 1
        output = re.match(r"```(json|text)$", lines[i].strip()) if i < len(lines) else None
        if output and block:
            end = i + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            block[-1][2] = (output.group(1), "\n".join(lines[i + 1:end]))
            i = end + 1
        n_block += 1
        for start, cmd, shown in block:
            yield n_block, start, cmd, shown


def rewrite(cmd):
    cmd = cmd.replace("8080", "$PORT")
    m = re.match(r"^(?:build/)?capstan serve(.*?)\s*(&)?\s*(#.*)?$", cmd)
    if m:
        return "serve_at" + m.group(1)
    return cmd


def main():
    path = sys.argv[1]
    skipped_server = None  # (block, where) of a skipped command that started a server
    for n_block, line, cmd, shown in commands(open(path).read()):
        where = "%s:%d" % (path.rsplit("/", 1)[-1], line)
        reason = next((r for p, r in SKIP if re.search(p, cmd)), None)
        if not reason and skipped_server and skipped_server[0] == n_block:
            reason = "talks to the server %s would start" % skipped_server[1]
        if reason:
            if STARTS_SERVER.search(cmd):
                skipped_server = (n_block, where)
            print("docs: skipped %s: %s (%s)" % (where, cmd.split("\n")[0], reason),
                  file=sys.stderr)
            continue
        print("step %s %s" % (shlex.quote(where), shlex.quote(rewrite(cmd))))
        if not shown and re.match(r"curl\b", cmd):
            shown = ("no-error", "")
        if shown:
            print("shown %s %s %s" % (shlex.quote(where), shown[0], shlex.quote(shown[1])))


main()
