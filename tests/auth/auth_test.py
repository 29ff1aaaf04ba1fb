"""auth_test.py - bearer tokens and roles against a real `capstan serve --auth tokens`.

Usage: auth_test.py URL TMP CAPSTAN ROOT, with CAPSTAN_TOKEN set to the admin token.
Prints one PASS/FAIL line per check.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from capstan_http import Checks, jbody, request  # noqa: E402

URL, TMP, CAPSTAN, ROOT = sys.argv[1:5]
HOST, PORT = urlparse(URL).hostname, urlparse(URL).port
ADMIN = os.environ["CAPSTAN_TOKEN"]
SAMPLE = json.load(open(os.path.join(ROOT, "models/digits.sample.json")))["request"]
DIGITS = open(os.path.join(ROOT, "models/digits.onnx"), "rb").read()


check = Checks()


def call(method, path, token=None, body=None, headers=None):
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    return request(HOST, PORT, method, path, body, h)


def cli(*args, token=ADMIN):
    env = dict(os.environ, CAPSTAN_SERVER=URL, CAPSTAN_TOKEN=token or "")
    p = subprocess.run([CAPSTAN] + list(args), capture_output=True, text=True, env=env, timeout=30)
    return p.returncode, p.stdout, p.stderr


def make(name, role, models=None, ttl=None):
    body = {"name": name, "role": role}
    if models:
        body["models"] = models
    if ttl:
        body["ttl"] = ttl
    st, _, b = call("POST", "/api/v1/tokens", ADMIN, body)
    j = jbody(b) or {}
    check("create token %s (%s)" % (name, role), st == 201 and j.get("token", "").startswith("cst_"), b)
    return j.get("token", "")


# --- anonymous: every route but health is 401 with a Bearer challenge ---------------------------
routes = [("GET", "/v2"), ("GET", "/v2/models/digits"), ("GET", "/v2/models/digits/ready"),
          ("GET", "/v2/models/digits/stats"), ("POST", "/v2/models/digits/infer"),
          ("POST", "/v2/repository/index"), ("POST", "/v2/repository/models/digits/unload"),
          ("GET", "/metrics"), ("GET", "/api/v1/devices"), ("POST", "/api/v1/deviceclasses"),
          ("DELETE", "/api/v1/deviceclasses/cpu.capstan.dev"), ("POST", "/api/v1/claims"),
          ("GET", "/api/v1/models"), ("POST", "/api/v1/models"), ("DELETE", "/api/v1/models/x"),
          ("POST", "/api/v1/models/x/versions"), ("PUT", "/api/v1/models/x/aliases/prod"),
          ("GET", "/api/v1/audit"), ("POST", "/api/v1/gc"), ("GET", "/api/v1/tokens"),
          ("POST", "/api/v1/tokens"), ("DELETE", "/api/v1/tokens/x")]
for method, path in routes:
    st, h, b = call(method, path, None, {} if method in ("POST", "PUT") else None)
    check("anonymous %s %s is 401 with WWW-Authenticate" % (method, path),
          st == 401 and h.get("www-authenticate", "").startswith("Bearer") and
          "error" in (jbody(b) or {}), (st, h.get("www-authenticate"), b[:120]))
for path in ("/v2/health/live", "/v2/health/ready"):
    st, _, _ = call("GET", path)
    check("anonymous %s is public" % path, st == 200, st)
st, h, b = call("GET", "/v2", "cst_" + "A" * 43)
check("an unknown token is 401 invalid_token", st == 401 and 'error="invalid_token"' in h.get("www-authenticate", ""), (st, h))
st, h, b = call("GET", "/v2", None, None, {"Authorization": "Basic YWxpY2U6eA=="})
check("a non-Bearer Authorization is 401", st == 401, st)

# --- roles ------------------------------------------------------------------------------------
viewer = make("viewer-1", "viewer")
invoker = make("invoker-1", "invoker")
deployer = make("deployer-1", "deployer")
scoped = make("scoped-1", "invoker", models="dig*")
other = make("other-1", "invoker", models="team-*")
st, _, b = call("GET", "/api/v1/tokens", ADMIN)
check("the token list never shows a secret", st == 200 and b"cst_" not in b and b"viewer-1" in b, b[:200])

allowed = {  # (method, path, body) -> least role
    ("GET", "/v2", None): "viewer",
    ("GET", "/api/v1/models", None): "viewer",
    ("POST", "/v2/models/digits/infer", json.dumps(SAMPLE)): "invoker",
    ("POST", "/api/v1/models", json.dumps({"name": "m-%s"})): "deployer",
    ("POST", "/api/v1/gc?dry_run=true", None): "admin",
    ("GET", "/api/v1/tokens", None): "admin",
}
tokens = {"viewer": viewer, "invoker": invoker, "deployer": deployer, "admin": ADMIN}
order = ["viewer", "invoker", "deployer", "admin"]
for (method, path, body), least in allowed.items():
    for role in order:
        b = body % role if body and "%s" in body else body
        st, _, rb = call(method, path, tokens[role], b.encode() if b else None,
                         {"Content-Type": "application/json"})
        ok_expected = order.index(role) >= order.index(least)
        if ok_expected:
            check("%s may %s %s" % (role, method, path), st in (200, 201), (st, rb[:150]))
        else:
            j = jbody(rb) or {}
            check("%s may not %s %s (403 naming the need)" % (role, method, path),
                  st == 403 and least in j.get("error", ""), (st, rb[:150]))

# --- every route of the table (src/api/routes.c) -------------------------------------------
# Nothing that changes state is reachable without a permission: read from the table itself, so
# a new route is covered the day it is added. Anonymous is 401 on every route but the public
# ones (which are all GETs); each role below a route's declared one is 403 naming that role;
# a method other than GET declares at least invoker, but for the repository index (a listing
# that the v2 protocol asks for by POST). Only refused calls are sent: nothing is changed.
ROLE = {"PUBLIC": None, "VIEWER": "viewer", "INVOKER": "invoker", "DEPLOYER": "deployer",
        "ADMIN": "admin"}
READ_BY_POST = {("POST", "/v2/repository/index")}
table = re.findall(r'\{"(GET|POST|PUT|PATCH|DELETE)", "([^"]+)", \w+, (\w+)',
                   open(os.path.join(ROOT, "src/api/routes.c")).read())
check("the route table is read (%d routes)" % len(table), len(table) > 50, len(table))
for method, pattern, declared in table:
    least = ROLE[declared]
    path = pattern.replace("{m}", "digits").replace("{v}", "1").replace("{a}", "prod")
    path = path.replace("{name}", "x")
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    if method != "GET":
        check("%s %s declares a permission" % (method, pattern), least is not None and
              (least != "viewer" or (method, pattern) in READ_BY_POST), declared)
    if least is None:
        continue
    st, h, b = call(method, path, None, body, {"Content-Type": "application/json"})
    check("anonymous %s %s is 401" % (method, pattern),
          st == 401 and h.get("www-authenticate", "").startswith("Bearer"), (st, b[:120]))
    for role in order[:order.index(least)]:
        st, _, b = call(method, path, tokens[role], body, {"Content-Type": "application/json"})
        check("%s may not %s %s (403 naming %s)" % (role, method, pattern, least),
              st == 403 and least in (jbody(b) or {}).get("error", ""), (st, b[:150]))

# --- model scope ------------------------------------------------------------------------------
st, _, b = call("POST", "/v2/models/digits/infer", scoped, json.dumps(SAMPLE).encode(), {"Content-Type": "application/json"})
check("a token scoped to dig* may infer digits", st == 200, (st, b[:120]))
st, _, b = call("POST", "/v2/models/digits/infer", other, json.dumps(SAMPLE).encode(), {"Content-Type": "application/json"})
check("a token scoped to team-* may not infer digits (403)", st == 403 and b"team-*" in b, (st, b[:150]))

# --- a push without a token is refused before its body is read ----------------------------------
s = socket.create_connection((HOST, PORT), timeout=5)
s.sendall(b"POST /api/v1/models/x/versions HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
          b"Content-Length: 100000000\r\n\r\n")
s.settimeout(5)
try:
    first = s.recv(4096)
except OSError:
    first = b""
s.close()
check("an anonymous push is answered 401 before any body is sent", first.startswith(b"HTTP/1.1 401"), first[:60])

# --- audit: the actor is the token, X-Capstan-Actor is ignored ------------------------------------
st, _, b = call("POST", "/api/v1/models", deployer, {"name": "audited"}, {"X-Capstan-Actor": "mallory"})
j = jbody(b) or {}
check("created_by is the token's name, not X-Capstan-Actor", st == 201 and j.get("created_by") == "deployer-1", b[:200])
st, _, b = call("GET", "/api/v1/audit?model=audited", viewer)
items = (jbody(b) or {}).get("items", [])
check("the audit log records the token as actor", st == 200 and items and items[0].get("actor") == "deployer-1", b[:200])

# --- revocation and expiry -------------------------------------------------------------------------
rc, out, err = cli("token", "revoke", "viewer-1")
check("capstan token revoke", rc == 0, (rc, err))
st, h, b = call("GET", "/v2", viewer)
check("a revoked token is 401 at once", st == 401 and b"revoked" in b, (st, b[:120]))
short = make("short-1", "viewer", ttl="1s")
st, _, _ = call("GET", "/v2", short)
check("a token with a TTL works before it expires", st == 200, st)
time.sleep(1.3)
st, _, b = call("GET", "/v2", short)
check("an expired token is 401", st == 401 and b"expired" in b, (st, b[:120]))

# --- bad token requests ----------------------------------------------------------------------------
for name, body in (("no name", {"role": "viewer"}), ("bad role", {"name": "x1", "role": "root"}),
                   ("bad name", {"name": "Bad_Name", "role": "viewer"}),
                   ("bad ttl", {"name": "x2", "role": "viewer", "ttl": "forever"}),
                   ("bad models glob", {"name": "x3", "role": "viewer", "models": "a/b"}),
                   ("unknown field", {"name": "x4", "role": "viewer", "scope": "all"})):
    st, _, b = call("POST", "/api/v1/tokens", ADMIN, body)
    check("token create with %s is 400" % name, st == 400 and "error" in (jbody(b) or {}), (st, b[:150]))
st, _, b = call("POST", "/api/v1/tokens", ADMIN, {"name": "invoker-1", "role": "viewer"})
check("a taken token name is 409", st == 409, (st, b[:120]))
st, _, b = call("DELETE", "/api/v1/tokens/nosuch", ADMIN)
check("revoking an unknown token is 404", st == 404, (st, b[:120]))

# --- the CLI: CAPSTAN_TOKEN, create prints the secret alone, ls ------------------------------------
rc, out, err = cli("token", "create", "cli-1", "--role", "invoker", "--models", "dig*", "--ttl", "30d")
secret = out.strip()
check("capstan token create prints only the secret on stdout", rc == 0 and secret.startswith("cst_") and len(secret) == 47, (rc, out, err))
st, _, _ = call("POST", "/v2/models/digits/infer", secret, json.dumps(SAMPLE).encode(), {"Content-Type": "application/json"})
check("the CLI's token works", st == 200, st)
rc, out, err = cli("token", "ls")
check("capstan token ls lists roles and states", rc == 0 and "cli-1" in out and "invoker" in out and "revoked" in out, out)
rc, out, err = cli("model", "ls", token=None)
check("the CLI without a token says 401's reason", rc == 1 and "bearer token" in err, (rc, err))
rc, out, err = cli("model", "ls", token=viewer)
check("a revoked token in the CLI fails clearly", rc == 1 and "revoked" in err, (rc, err))
rc, out, err = cli("token", "create", "x5", "--role", "viewer", token=invoker)
check("a non-admin cannot create tokens (CLI exit 1, 403 reason)", rc == 1 and "admin" in err, (rc, err))
