"""capstan_http.py - the HTTP helpers the end-to-end suites share (standard library only).

request() sends one request on a fresh connection and returns (status, headers with
lower-case names, body bytes); a dict or list body is sent as JSON. jbody() parses a JSON
body, or returns None when it is not JSON.
"""
import http.client
import json


def request(host, port, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def jbody(b):
    try:
        return json.loads(b)
    except ValueError:
        return None
