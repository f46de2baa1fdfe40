"""A fake of Google's Security Token Service and IAM Credentials API, at the wire level.

Why: GKE Workload Identity and Workload Identity Federation cannot be reached from a test
machine. The real google-auth library drives this fake over HTTP with the documented
protocols:

* STS ``POST /v1/token`` (RFC 8693, cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token):
  form-encoded ``grant_type=urn:ietf:params:oauth:grant-type:token-exchange``,
  ``subject_token``, ``subject_token_type=urn:ietf:params:oauth:token-type:jwt``, ``audience``,
  ``scope``, ``requested_token_type=urn:ietf:params:oauth:token-type:access_token`` ->
  ``{access_token, issued_token_type, token_type: Bearer, expires_in}``. The subject token
  is a Kubernetes ServiceAccount JWT; the fake reads (does not verify) its ``aud`` and ``sub``
  claims and accepts it only for a registered (audience, subject) pair, as a pool provider
  with an attribute condition would.
* IAM Credentials ``POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken``
  (``Authorization: Bearer <federated token>``, JSON ``{scope, lifetime}``) ->
  ``{accessToken, expireTime}``, only when the federated identity may impersonate EMAIL
  (roles/iam.workloadIdentityUser).

Errors are Google's shapes: ``{"error": "invalid_grant", "error_description": ...}`` (400) for
STS, ``{"error": {"code": 403, "status": "PERMISSION_DENIED", ...}}`` for IAM.
"""

from __future__ import annotations

import json
import secrets
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

from tests.fakes import jwt_claims

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class FakeGoogleSts:
    """STS + IAM Credentials on one loopback HTTP port."""

    def __init__(self) -> None:
        #: (STS audience, KSA subject ``system:serviceaccount:NS:NAME``, token audience, federated
        #: token to issue or None for a fresh one) accepted.
        self.pools: list[tuple[str, str, str, str | None]] = []
        #: federated subject -> Google service accounts it may impersonate.
        self.bindings: dict[str, set[str]] = {}
        #: GSA email -> the access token generateAccessToken issues for it.
        self.gsa_tokens: dict[str, str] = {}
        self._federated: dict[str, str] = {}  # federated access token -> subject
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- configuration ------------------------------------------------------------------------
    def trust(self, audience: str, namespace: str, sa: str, token_audience: str,
              federated_token: str | None = None) -> None:
        """Let the KSA's token (issued for ``token_audience``) be exchanged for ``audience``;
        ``federated_token``: the token to issue (a fresh random one when None)."""
        self.pools.append((audience, f"system:serviceaccount:{namespace}:{sa}", token_audience, federated_token))

    def allow_impersonation(self, namespace: str, sa: str, gsa: str, token: str) -> None:
        self.bindings.setdefault(f"system:serviceaccount:{namespace}:{sa}", set()).add(gsa)
        self.gsa_tokens[gsa] = token

    # -- server -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/v1/token"

    def start(self) -> FakeGoogleSts:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                with fake._lock:
                    fake.requests.append(self.path)
                status, doc = fake._handle(self.path, self.headers.get("Authorization", ""), body)
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- protocol -----------------------------------------------------------------------------
    def _handle(self, path: str, auth: str, body: str) -> tuple[int, dict[str, Any]]:
        if path == "/v1/token":
            return self._exchange({k: v[0] for k, v in parse_qs(body).items()})
        prefix, suffix = "/v1/projects/-/serviceAccounts/", ":generateAccessToken"
        if path.startswith(prefix) and path.endswith(suffix):
            return self._generate(unquote(path[len(prefix):-len(suffix)]), auth, body)
        return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": f"no method {path}"}}

    def _exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        def bad(description: str) -> tuple[int, dict[str, Any]]:
            return 400, {"error": "invalid_grant" if "token" in description else "invalid_request",
                         "error_description": description}

        if form.get("grant_type") != TOKEN_EXCHANGE:
            return bad("grant_type must be token-exchange")
        if form.get("subject_token_type") != JWT_TYPE:
            return bad("subject_token_type must be jwt")
        if form.get("requested_token_type") != ACCESS_TOKEN_TYPE:
            return bad("requested_token_type must be access_token")
        if not form.get("scope"):
            return bad("scope is required")
        claims = jwt_claims(form.get("subject_token", ""))
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        subject = claims.get("sub")
        for audience, sub, token_aud, issued in self.pools:
            if audience == form.get("audience") and sub == subject and token_aud in auds:
                token = issued or "fed-" + secrets.token_urlsafe(16)
                with self._lock:
                    self._federated[token] = sub
                return 200, {"access_token": token, "issued_token_type": ACCESS_TOKEN_TYPE,
                             "token_type": "Bearer", "expires_in": 3600}
        return bad("The subject token is not trusted by this pool provider (audience or subject)")

    def _generate(self, email: str, auth: str, body: str) -> tuple[int, dict[str, Any]]:
        subject = self._federated.get(auth.removeprefix("Bearer ").strip())
        if subject is None:
            return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                   "message": "Request had invalid authentication credentials."}}
        try:
            request = json.loads(body or "{}")
        except ValueError:
            request = None
        if not isinstance(request, dict) or not request.get("scope"):
            return 400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "scope is required"}}
        if email not in self.bindings.get(subject, set()):
            return 403, {"error": {"code": 403, "status": "PERMISSION_DENIED",
                                   "message": f"Permission 'iam.serviceAccounts.getAccessToken' denied on {email}"}}
        expire = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return 200, {"accessToken": self.gsa_tokens[email], "expireTime": expire}
