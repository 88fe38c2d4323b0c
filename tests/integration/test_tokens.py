#!/usr/bin/python3
"""Credentials end to end: hb-token's claims checked by an independent JWT implementation
(PyJWT), its lifetime limits and --verify refusals, and hb-tokend over real HTTP: every
refusal with its status and reason, a good request whose token verifies, and an access log
that holds neither the API key nor a token."""

import base64
import http.client
import json
import os
import re
import signal
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from harness import Process, check, check_eq, free_port, main, wait_until

SECRET = "integration-secret-0123456789abcdef-XYZ"
API_KEY = "svc-api-key-6f1c2d9e8a7b4c3d"
TOKEN_RE = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def write(env, name, text):
    path = os.path.join(env.dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def secret_key(env, name="k2025.secret"):
    return write(env, name, SECRET + "\n")


def ec_key(env, name="e2025.pem"):
    """A fresh EC P-256 key pair; returns (private key path, public key path, public PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return write(env, name, private), write(env, "pub-" + name, public), public


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Every minted token closes with these: "#" does not cover $-topics on EMQX (docs/EMQX.md).
CLOSING = [{"permission": "deny", "action": "all", "topic": t}
           for t in ("$SYS/#", "$delayed/#", "$share/#", "$queue/#", "#")]


def device_acl(account, device=None, minted=True):
    """A device token's rules: a pinned device's topic is literal; a minted publish rule says
    "retain": false (hb-token --verify prints the rules without it)."""
    publish = {"permission": "allow", "action": "publish",
               "topic": f"hb/{account}/{device or '${clientid}'}"}
    if minted:
        publish["retain"] = False
    return [publish, *CLOSING]


def hb_token_device_token_claims_are_exact(env):
    key = secret_key(env)
    before = int(time.time())
    _, out, _ = env.run("token/hb-token", "--key", key, "--account", "acct-1", "--device",
                        "tv-1", "--ttl", "600", check_rc=0)
    after = int(time.time())
    token = out.strip()
    check_eq(out.count("\n"), 1, "one line of output")
    check_eq(jwt.get_unverified_header(token), {"alg": "HS256", "kid": "k2025", "typ": "JWT"},
             "header")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    check_eq(sorted(claims), ["acl", "device", "exp", "iat", "jti", "nbf", "role", "sub"],
             "claim names")
    check_eq(claims["sub"], "acct-1", "sub")
    check_eq(claims["device"], "tv-1", "device")
    check_eq(claims["role"], "device", "role")
    check_eq(claims["acl"], device_acl("acct-1", "tv-1"), "acl")
    check(before <= claims["iat"] <= after, f"iat {claims['iat']} not in [{before}, {after}]")
    check_eq(claims["nbf"], claims["iat"] - 30, "nbf: 30 s of leeway for a broker behind")
    check_eq(claims["exp"] - claims["iat"], 600, "exp - iat")
    check(re.fullmatch(r"[0-9a-f]{32}", claims["jti"]), f"jti {claims['jti']!r}")

    # Defaults: 30 minutes, no device claim, and a fresh jti every time.
    _, out2, _ = env.run("token/hb-token", "--key", key, "--account", "acct-1", check_rc=0)
    claims2 = jwt.decode(out2.strip(), SECRET, algorithms=["HS256"])
    check_eq(claims2["exp"] - claims2["iat"], 1800, "default lifetime")
    check("device" not in claims2, "no device claim without --device")
    check(claims2["jti"] != claims["jti"], "jti repeats")


def hb_token_es256_consumer_token_verifies_with_public_key(env):
    private, public_path, public = ec_key(env)
    _, out, _ = env.run("token/hb-token", "--key", private, "--role", "consumer", "--ttl", "120",
                        "--topic-prefix", "tenant/hb", check_rc=0)
    token = out.strip()
    check_eq(jwt.get_unverified_header(token), {"alg": "ES256", "kid": "e2025", "typ": "JWT"},
             "header")
    claims = jwt.decode(token, public, algorithms=["ES256"])
    check_eq(claims["sub"], "consumer", "sub")
    check_eq(claims["role"], "consumer", "role")
    check_eq(claims["acl"], [
        {"permission": "allow", "action": "subscribe", "topic": "tenant/hb/+/+"},
        {"permission": "allow", "action": "subscribe", "topic": "$share/+/tenant/hb/+/+"},
        *CLOSING], "acl")
    check_eq(claims["exp"] - claims["iat"], 120, "exp - iat")
    # The broker side holds only the public key; hb-token --verify works with it.
    _, out, _ = env.run("token/hb-token", "--key", public_path, "--kid", "e2025", "--verify",
                        token, check_rc=0)
    check_eq(json.loads(out)["sub"], "consumer", "verified sub")
    rc, _, err = env.run("token/hb-token", "--key", public_path, "--account", "a")
    check_eq(rc, 1, "minting with a public key")
    check("cannot sign" in err, f"reason for a public key: {err!r}")


def hb_token_refuses_ttl_above_max_and_bad_usage(env):
    key = secret_key(env)
    rc, out, err = env.run("token/hb-token", "--key", key, "--account", "a", "--ttl", "86401")
    check_eq((rc, out), (2, ""), "--ttl above the default maximum")
    check("maximum" in err and "86400" in err, f"no clear reason: {err!r}")
    rc, _, err = env.run("token/hb-token", "--key", key, "--account", "a", "--max-ttl", "60",
                         "--ttl", "61")
    check_eq(rc, 2, "--ttl above --max-ttl")
    env.run("token/hb-token", "--key", key, "--account", "a", "--max-ttl", "60", "--ttl", "60",
            check_rc=0)
    for args in (["--account", "a", "--ttl", "0"], ["--account", "a/b"], ["--account", "+"],
                 ["--account", "a", "--device", "#"], [], ["--role", "consumer", "--account", "a"],
                 ["--role", "admin"], ["--account", "a", "--no-such-option"]):
        rc, _, _ = env.run("token/hb-token", "--key", key, *args)
        check_eq(rc, 2, f"hb-token {' '.join(args)}")
    rc, _, _ = env.run("token/hb-token", "--account", "a")
    check_eq(rc, 2, "no --key")
    rc, _, err = env.run("token/hb-token", "--key", write(env, "bad name.secret", SECRET),
                         "--account", "a")
    check_eq(rc, 2, "key file name that is no kid")
    check("--kid" in err, f"no hint to pass --kid: {err!r}")
    rc, _, err = env.run("token/hb-token", "--key", write(env, "short.secret", "x" * 31 + "\n"),
                         "--account", "a")
    check_eq(rc, 1, "short secret")
    check("at least 32 bytes" in err, f"reason for a short secret: {err!r}")
    _, out, _ = env.run("token/hb-token", "--help", check_rc=0)
    for option in ("--key", "--kid", "--account", "--device", "--role", "--ttl", "--max-ttl",
                   "--topic-prefix", "--verify", "--help", "--version"):
        check(option in out, f"--help does not mention {option}")
    _, out, _ = env.run("token/hb-token", "--version", check_rc=0)
    check(out.startswith("hb-token "), f"--version: {out!r}")


def hb_token_verify_refuses_forged_expired_and_alg_none(env):
    key = secret_key(env)
    _, out, _ = env.run("token/hb-token", "--key", key, "--account", "acct-9", check_rc=0)
    token = out.strip()
    _, out, _ = env.run("token/hb-token", "--key", key, "--verify", token, check_rc=0)
    verified = json.loads(out)
    check_eq((verified["sub"], verified["kid"], verified["acl"]),
             ("acct-9", "k2025", device_acl("acct-9", minted=False)), "verified claims")
    # The jti a revocation list names, as the token carries it.
    check_eq(verified["jti"], jwt.decode(token, options={"verify_signature": False})["jti"],
             "verified jti")
    _, out, _ = env.run("token/hb-token", "--key", key, "--verify", "-", stdin=token + "\n",
                        check_rc=0)
    check_eq(json.loads(out)["sub"], "acct-9", "token from stdin")

    now = int(time.time())
    good = {"sub": "acct-9", "iat": now, "nbf": now, "exp": now + 600, "role": "device",
            "acl": device_acl("acct-9")}
    header, payload, sig = token.split(".")
    forged_payload = b64url(json.dumps(dict(good, sub="acct-other")).encode())
    cases = {
        "bad_signature": f"{header}.{forged_payload}.{sig}",
        "expired": jwt.encode(dict(good, iat=now - 700, nbf=now - 700, exp=now - 100), SECRET,
                              algorithm="HS256", headers={"kid": "k2025"}),
        "not_yet_valid": jwt.encode(dict(good, iat=now + 300, nbf=now + 300, exp=now + 900),
                                    SECRET, algorithm="HS256", headers={"kid": "k2025"}),
        "bad_alg": b64url(b'{"alg":"none","kid":"k2025"}') + "." + payload + ".",
        "unknown_kid": jwt.encode(good, SECRET, algorithm="HS256", headers={"kid": "k2024"}),
        "malformed": "not.a-token",
        "bad_claims": jwt.encode(dict(good, sub="acct/9"), SECRET, algorithm="HS256",
                                 headers={"kid": "k2025"}),
    }
    for reason, bad in cases.items():
        rc, out, err = env.run("token/hb-token", "--key", key, "--verify", bad)
        check_eq((rc, out), (1, ""), f"--verify of a {reason} token")
        check(f"token refused: {reason}" in err, f"{reason}: {err!r}")


class Tokend:
    """hb-tokend on a free loopback port, ready once /healthz answers."""

    def __init__(self, env, key, extra=()):
        self.port = free_port()
        keys = write(env, "api.keys", f"# service keys\n{API_KEY}\n\nsecond-key-abcdef0123456789\n")
        argv = [env.binary("token/hb-tokend"), "--listen", f"127.0.0.1:{self.port}",
                "--key", key, "--api-key-file", keys, *extra]
        self.proc = Process("tokend", argv, env.dir)
        env._cleanup.append(lambda: self.proc.stop(signal.SIGKILL))
        wait_until(self._ready, 10, f"hb-tokend on port {self.port}")

    def _ready(self):
        if not self.proc.alive():
            raise AssertionError(f"hb-tokend exited:\n{self.proc.tail()}")
        try:
            return self.request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None):
        """Returns (status, parsed JSON body or None)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(data) if data else None
        except ValueError:
            return resp.status, data

    def post(self, payload, api_key=API_KEY, content_type="application/json"):
        headers = {"Content-Type": content_type}
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        return self.request("POST", "/v1/tokens", body, headers)


def hb_tokend_refuses_bad_requests(env):
    tokend = Tokend(env, secret_key(env))
    check_eq(tokend.post({"account": "a1"}, api_key=None), (401, {"error": "unauthorized"}),
             "no Authorization")
    check_eq(tokend.post({"account": "a1"}, api_key="svc-api-key-wrong000000000"),
             (401, {"error": "unauthorized"}), "wrong API key")
    check_eq(tokend.post({"account": "a1"}, api_key=API_KEY[:-1]),
             (401, {"error": "unauthorized"}), "API key prefix")
    status, _ = tokend.request("POST", "/v1/tokens", json.dumps({"account": "a1"}),
                               {"Content-Type": "application/json",
                                "Authorization": f"Basic {API_KEY}"})
    check_eq(status, 401, "not a Bearer scheme")

    check_eq(tokend.post("{\"account\": "), (400, {"error": "bad_request",
                                                 "reason": "the body is not JSON"}), "bad JSON")
    check_eq(tokend.post("[1]")[0], 400, "JSON that is not an object")
    check_eq(tokend.post({}), (400, {"error": "bad_request", "reason": "account is required"}),
             "missing account")
    for bad in ("a/b", "+", "#", "", "x" * 65, "caf\u00e9", 7):
        status, body = tokend.post({"account": bad})
        check_eq(status, 400, f"account {bad!r}")
        check("account must be" in body["reason"], f"reason for account {bad!r}: {body}")
    status, body = tokend.post({"account": "a1", "device": "d/1"})
    check_eq(status, 400, "invalid device")
    check("device must be" in body["reason"], f"reason for device: {body}")
    # An escaped NUL must not cut the id short: cJSON's C string would read "acctA".
    check_eq(tokend.post('{"account": "acctA\\u0000evil"}'),
             (400, {"error": "bad_request",
                    "reason": "account must be 1-64 bytes of A-Z a-z 0-9 . _ - :"}),
             "account with \\u0000")
    check_eq(tokend.post('{"account": "a1", "device": "tv\\u0000x"}'),
             (400, {"error": "bad_request",
                    "reason": "device must be 1-64 bytes of A-Z a-z 0-9 . _ - :"}),
             "device with \\u0000")
    check_eq(tokend.post(b'{"account": "a1\x00"}')[0], 400, "a raw NUL byte")
    status, body = tokend.post('{"account": "acct\\\\u0000"}')
    check_eq(status, 400, "an escaped backslash before u0000 is text, not a NUL: still no id")
    for ttl in (0, -1, 86401, 1.5, "60"):
        check_eq(tokend.post({"account": "a1", "ttl": ttl}),
                 (400, {"error": "bad_request", "reason": "ttl must be whole seconds in 1..86400"}),
                 f"ttl {ttl!r}")
    status, body = tokend.post({"account": "a1", "role": "consumer"})
    check_eq((status, body["reason"]), (400, "unknown field 'role'"), "unknown field")

    check_eq(tokend.request("GET", "/v1/tokens")[0], 405, "GET /v1/tokens")
    check_eq(tokend.request("PUT", "/v1/tokens", "{}")[0], 405, "PUT /v1/tokens")
    check_eq(tokend.request("POST", "/healthz", "{}")[0], 405, "POST /healthz")
    check_eq(tokend.request("GET", "/v1/tokens/x")[0], 404, "unknown path")
    check_eq(tokend.request("GET", "/")[0], 404, "root")
    check_eq(tokend.post({"account": "a1", "pad": "x" * 5000})[0], 413, "oversize body")
    check_eq(tokend.post(b"{" + b" " * 4096 + b"}")[0], 413, "4098-byte body")
    check_eq(tokend.post({"account": "a1"}, content_type="text/plain")[0], 415, "text/plain")
    check_eq(tokend.post({"account": "a1"}, content_type="application/jsonx")[0], 415,
             "application/jsonx")
    # The service is still healthy after all that.
    check_eq(tokend.request("GET", "/healthz")[0], 200, "healthz afterwards")


def hb_tokend_issues_tokens_that_verify_and_logs_no_secrets(env):
    key = secret_key(env)
    tokend = Tokend(env, key, extra=["--max-ttl", "3600"])
    before = int(time.time())
    status, body = tokend.post({"account": "acct-7", "device": "tv-3", "ttl": 900})
    check_eq(status, 200, f"good request: {body}")
    check_eq(sorted(body), ["expires_at", "kid", "token"], "response fields")
    check_eq(body["kid"], "k2025", "kid")
    check(before + 900 <= body["expires_at"] <= int(time.time()) + 900,
          f"expires_at {body['expires_at']}")
    token = body["token"]
    _, out, _ = env.run("token/hb-token", "--key", key, "--verify", token, check_rc=0)
    verified = json.loads(out)
    check_eq((verified["sub"], verified["device"], verified["exp"]),
             ("acct-7", "tv-3", body["expires_at"]), "verified claims")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    check_eq(claims["acl"], device_acl("acct-7", "tv-3"), "acl")

    # Defaults: the service's default lifetime, no device; the second API key works too.
    status, body2 = tokend.post({"account": "acct-8", "device": None}, api_key=
                                "second-key-abcdef0123456789")
    check_eq(status, 200, f"second API key: {body2}")
    claims2 = jwt.decode(body2["token"], SECRET, algorithms=["HS256"])
    check_eq((claims2["sub"], claims2["exp"] - claims2["iat"]), ("acct-8", 1800), "defaults")
    check("device" not in claims2, "no device claim")
    check_eq(tokend.post({"account": "a", "ttl": 3601})[0], 400, "ttl above --max-ttl 3600")
    tokend.post({"account": "acct-9"}, api_key="svc-api-key-wrong000000000")

    check_eq(tokend.proc.stop(signal.SIGTERM), 0, "exit status on SIGTERM")
    log = tokend.proc.output()
    check(API_KEY not in log and "second-key" not in log, "the access log holds an API key")
    check(not TOKEN_RE.search(log), "the access log holds a token")
    check(SECRET not in log, "the log holds the signing secret")
    lines = [line for line in log.splitlines() if " access " in line]
    check_eq(len(lines), 4 + log.count("path=/healthz"), f"one access line per request:\n{log}")
    check(any("method=POST path=/v1/tokens status=200 account=acct-7" in line for line in lines),
          f"no access line for the good request:\n{log}")
    check(any("status=401 account=-" in line for line in lines), f"no 401 line:\n{log}")
    check("stopping on SIGTERM" in log, "no clean stop")


def hb_tokend_rate_limits_each_api_key(env):
    """--rate-limit 0.2 --burst 3: three tokens at once per API key, then 429 with a
    Retry-After until the bucket refills (one token per 5 s, so the test cannot outrun it
    however slow the machine); another key has its own bucket."""
    key = secret_key(env)
    t = Tokend(env, key, extra=["--rate-limit", "0.2", "--burst", "3"])
    for i in range(3):
        status, body = t.post({"account": "acct-r", "device": f"d{i}"})
        check_eq(status, 200, f"request {i + 1} within the burst")
    conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=10)
    try:
        conn.request("POST", "/v1/tokens", json.dumps({"account": "acct-r", "device": "d3"}),
                     {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        retry_after = resp.getheader("Retry-After")
    finally:
        conn.close()
    check_eq((resp.status, body["error"]), (429, "rate_limited"), "the fourth request")
    check(retry_after is not None and 1 <= int(retry_after) <= 5,
          f"Retry-After {retry_after!r}, expected 1..5 seconds")
    status, _ = t.post({"account": "acct-r", "device": "d4"},
                       api_key="second-key-abcdef0123456789")
    check_eq(status, 200, "another API key is not limited by the first one's bucket")
    # Refused before the body is read, so no account is named.
    limited = "access method=POST path=/v1/tokens status=429 account=-"
    wait_until(lambda: limited in t.proc.output(), 5, f"the access log line {limited!r}")
    check_eq(t.proc.output().count("status=429"), 1, "429 lines in the access log")
    rc, _, err = env.run("token/hb-tokend", "--key", key, "--api-key-file",
                         os.path.join(env.dir, "api.keys"), "--rate-limit", "1", "--burst", "0.5")
    check_eq(rc, 2, "--burst below one token: exit status")
    check("--burst 0.5" in err, f"no reason for --burst 0.5: {err!r}")


SCENARIOS = {f.__name__: f for f in [
    hb_token_device_token_claims_are_exact,
    hb_tokend_rate_limits_each_api_key,
    hb_token_es256_consumer_token_verifies_with_public_key,
    hb_token_refuses_ttl_above_max_and_bad_usage,
    hb_token_verify_refuses_forged_expired_and_alg_none,
    hb_tokend_refuses_bad_requests,
    hb_tokend_issues_tokens_that_verify_and_logs_no_secrets,
]}

if __name__ == "__main__":
    raise SystemExit(main(SCENARIOS))
