#!/usr/bin/env python3
"""doc_output.py - does what a command printed match what the docs show it printing?

usage: doc_output.py json|text|no-error SHOWN_FILE ACTUAL_FILE PORT
       doc_output.py --self-test   (the rules below on fixed cases, each way)
Exits 0 when they match; else 1, with the first difference on stdout.

Before comparing, the test's port in the output becomes 8080, as the docs write it. Then:

json: the output's last line that parses as JSON is the answer (curl prints no newline, a CLI
  may print lines before it). The shown JSON may elide, and each form says what it allows:
    "..."            any value;
    "abc..."         a string that starts with abc (a digest shown short);
    ...              as a member or an element (`{"a":1,...}`, `[x,...]`): more members or
                     elements than shown; without it the object has exactly the members
                     shown, the array exactly the elements;
    an RFC 3339 time any RFC 3339 time (when the example ran is not the docs' business).
  Every other value must be equal, numbers as numbers.
text: every non-empty shown line, with runs of blanks folded to one (tables size their
  columns to the content), is in the output, folded the same way.
no-error: nothing is shown, and the answer is not an error: no JSON object whose only member
  is "error" (the API's error form).
"""
import json
import re
import sys

MORE = "\0more"  # what a bare ... becomes: the member's key, or the element
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def parse_shown(text):
    """The shown JSON with each bare ... made a marker member (objects) or element (arrays)."""
    out, stack, i, in_str = [], [], 0, False
    while i < len(text):
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif text.startswith("...", i):
            out.append(json.dumps(MORE) + (": null" if stack and stack[-1] == "{" else ""))
            i += 2
        else:
            if c in "{[":
                stack.append(c)
            elif c in "}]":
                stack.pop()
            out.append(c)
        i += 1
    return json.loads("".join(out))


def differ(shown, actual, path="$"):
    """None when actual matches shown, else what differs first."""
    if shown == "...":
        return None
    if isinstance(shown, str) and isinstance(actual, str):
        if shown.endswith("...") and actual.startswith(shown[:-3]):
            return None
        if TIME.match(shown) and TIME.match(actual):
            return None
    if isinstance(shown, dict) and isinstance(actual, dict):
        for k, v in shown.items():
            if k == MORE:
                continue
            if k not in actual:
                return "%s: no member %s" % (path, json.dumps(k))
            d = differ(v, actual[k], "%s.%s" % (path, k))
            if d:
                return d
        extra = sorted(set(actual) - set(shown))
        if extra and MORE not in shown:
            return "%s: members the docs do not show: %s" % (path, ", ".join(extra))
        return None
    if isinstance(shown, list) and isinstance(actual, list):
        more = bool(shown) and shown[-1] == MORE
        items = shown[:-1] if more else shown
        if len(actual) < len(items) or (not more and len(actual) != len(items)):
            return "%s: %d elements, the docs show %d" % (path, len(actual), len(items))
        for n, (s, a) in enumerate(zip(items, actual)):
            d = differ(s, a, "%s[%d]" % (path, n))
            if d:
                return d
        return None
    if type(shown) in (int, float) and type(actual) in (int, float) and shown == actual:
        return None
    if shown == actual and type(shown) is type(actual):
        return None
    return "%s: %s, the docs show %s" % (path, json.dumps(actual), json.dumps(shown))


def answer(text):
    for line in reversed(text.strip().split("\n")):
        try:
            return json.loads(line)
        except ValueError:
            continue
    try:
        return json.loads(text)
    except ValueError:
        return None


def fold(line):
    return " ".join(line.split())


def matches(kind, shown, actual, port):
    """0 when actual matches shown (printing nothing), else 1 after printing why."""
    actual = actual.replace("127.0.0.1:%s" % port, "127.0.0.1:8080")
    actual = actual.replace("localhost:%s" % port, "localhost:8080")
    if kind == "no-error":
        got = answer(actual)
        if isinstance(got, dict) and list(got) == ["error"]:
            print("answered with an error: %s" % got["error"])
            return 1
        return 0
    if kind == "json":
        got = answer(actual)
        if got is None:
            print("the output is not JSON: %s" % actual.strip()[:200])
            return 1
        d = differ(parse_shown(shown), got)
        if d:
            print(d)
            return 1
        return 0
    lines = [fold(l) for l in actual.split("\n")]
    for want in (fold(l) for l in shown.split("\n")):
        if want and not any(want in l for l in lines):
            print("no line contains %r; the output: %s" % (want, actual.strip()[:300]))
            return 1
    return 0


# (kind, shown, actual, matches?): each rule of the docstring, and where it stops.
CASES = [
    ("json", '{"a":1}', '{"a":1}', True),
    ("json", '{"a":1}', '{"a":1,"b":2}', False),
    ("json", '{"a":1,...}', '{"a":1,"b":2}', True),
    ("json", '{"a":1,"c":3}', '{"a":1}', False),
    ("json", '[1,...]', '[1,2]', True),
    ("json", '[1]', '[1,2]', False),
    ("json", '{"a":"..."}', '{"a":{"b":[1]}}', True),
    ("json", '{"d":"sha256:0ef..."}', '{"d":"sha256:0efab"}', True),
    ("json", '{"d":"sha256:0ef..."}', '{"d":"sha256:1efab"}', False),
    ("json", '{"t":"2026-11-23T13:57:22.7Z"}', '{"t":"2026-12-03T18:00:00Z"}', True),
    ("json", '{"t":"2026-11-23T13:57:22.7Z"}', '{"t":"yesterday"}', False),
    ("json", '{"u":"http://127.0.0.1:8080/x"}', '{"u":"http://127.0.0.1:4242/x"}', True),
    ("json", '{"a":true}', '{"a":1}', False),
    ("json", '{"n":2}', 'a line first\n{"n":2.0}', True),
    ("json", '{"n":2}', 'not json', False),
    ("text", "VERSION STATE  SIZE", "VERSION   STATE   SIZE  DIGEST\n1 ready", True),
    ("text", "created", "deployment.capstan.dev/x configured", False),
    ("no-error", "", '{"items":[]}', True),
    ("no-error", "", '{"error":"no such model"}', False),
]


def self_test():
    bad = 0
    for kind, shown, actual, want in CASES:
        got = matches(kind, shown, actual, "4242") == 0
        if got != want:
            print("doc_output self-test: %s %r ~ %r: %s, want %s" % (kind, shown, actual, got, want))
            bad += 1
    return 1 if bad else 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        import contextlib, io
        with contextlib.redirect_stdout(io.StringIO()) as quiet:
            rc = self_test()
        failures = [l for l in quiet.getvalue().split("\n") if l.startswith("doc_output self-test")]
        print("\n".join(failures), end="\n" if failures else "")
        return rc
    kind, shown_file, actual_file, port = sys.argv[1:5]
    return matches(kind, open(shown_file).read(), open(actual_file).read(), port)


sys.exit(main())
