"""The GCP store block: secretsync's dialect and ESO's ``gcpsm`` block -> one canonical config.

Why the provider reads the block itself: only it knows ESO's field names (``projectID``,
``auth.secretRef.secretAccessKeySecretRef``, ``auth.workloadIdentity``...), which ones name
credentials, and what each auth mode needs from the cluster. The controller resolves the
:class:`~secretsync.core.contract.CredentialSource` list under its trust rules and hands the
values to :func:`.auth.connection_spec`.

Canonical config (what ``validate_config`` / ``open`` take, no credential references in it):

* ``project`` (required): project id (``my-project``), number, or ``domain.com:project``;
* ``prefix``: names are relative to this folder (``PREFIX/name``), as with aws://;
* ``location``: regional secrets in this location (and its regional endpoint);
* ``endpoint``: a TLS endpoint other than ``secretmanager.googleapis.com``;
* ``secretVersionSelectionPolicy``: ``LatestOrFetch`` (the default of secretsync's dialect:
  when ``latest`` is disabled or destroyed, read the newest enabled version) or
  ``LatestOrFail`` (ESO's default: fail instead);
* ``tokenExchange``: ``{audience, impersonate}``: a ServiceAccount token (credential
  ``subjectToken``) exchanged at Google's STS for ``audience``; with ``impersonate`` the
  federated token then impersonates the Google service account named by credential
  ``serviceAccountEmail`` (the KSA's ``iam.gke.io/gcp-service-account`` annotation).

Credentials: ``serviceAccountKey`` (a service-account key JSON), ``accessToken``,
``subjectToken`` and ``serviceAccountEmail`` (see ``tokenExchange``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from secretsync.core.contract import (
    CredentialSource,
    CredentialUse,
    StoreBlock,
    generic_store_block,
    secret_source,
    token_source,
)
from secretsync.core.errors import InvalidConfig

from .names import encode_secret_id

PROVIDER = "gcp"
_PROJECT = re.compile(r"^(?:[a-z0-9][a-z0-9.-]*[a-z0-9]:)?(?:[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})$")
_LOCATION = re.compile(r"^[a-z]+(?:-[a-z0-9]+)+$")
#: An API endpoint: a host name, optionally with a port (what ClientOptions.api_endpoint takes).
_ENDPOINT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?$")
#: GKE cluster names and locations, as ESO's workloadIdentity names them.
_CLUSTER_PART = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
KEYS = frozenset({"project", "prefix", "location", "endpoint", "secretVersionSelectionPolicy", "tokenExchange"})
_URL_KEYS = {"location", "endpoint"}
POLICIES = ("LatestOrFail", "LatestOrFetch")
DEFAULT_POLICY = "LatestOrFetch"
#: Credentials that are the store's own (no process identity involved).
OWN_CREDENTIALS = frozenset({"serviceAccountKey", "accessToken", "subjectToken"})
#: The KSA annotation that names the Google service account GKE Workload Identity impersonates.
GSA_ANNOTATION = "iam.gke.io/gcp-service-account"

#: ESO ``gcpsm`` block keys; their presence marks the ESO dialect.
ESO_KEYS = frozenset({"projectID", "location", "auth", "secretVersionSelectionPolicy"})
_ESO_ONLY = frozenset({"projectID", "auth", "secretVersionSelectionPolicy"})


def _fail(field: str, why: str) -> InvalidConfig:
    return InvalidConfig(f"gcp store config field {field!r}: {why}")


def config_from_url(url: str) -> dict[str, Any]:
    """``gcp://PROJECT[/PREFIX][?location=LOCATION][&endpoint=HOST]``."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidConfig(f"gcp:// store URL {url!r} does not parse: {exc}") from None
    if parts.scheme.lower() not in ("gcp", "gcpsm"):
        raise InvalidConfig(f"not a gcp:// URL: {url!r}")
    project = unquote(parts.netloc)
    if not project:
        raise InvalidConfig("gcp:// store URL needs a project, e.g. gcp://my-project")
    config: dict[str, Any] = {"project": project}
    prefix = unquote(parts.path).strip("/")
    if prefix:
        config["prefix"] = prefix
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _URL_KEYS:
            raise InvalidConfig(f"gcp:// store URL: unknown parameter {key!r} "
                                f"(known: {', '.join(sorted(_URL_KEYS))})")
        config[key] = value
    return config


def validate_config(config: Mapping[str, Any]) -> None:
    """Raise InvalidConfig naming the offending canonical field."""
    unknown = sorted(set(config) - KEYS)
    if unknown:
        raise InvalidConfig(f"gcp store config: unknown field(s) {unknown} (known: {sorted(KEYS)})")
    project = config.get("project")
    if not isinstance(project, str) or not _PROJECT.match(project):
        raise _fail("project", f"{project!r} is not a project id (6-30 lowercase letters, digits, hyphens) "
                               "or project number")
    prefix = config.get("prefix")
    if prefix is not None:
        if not isinstance(prefix, str) or "//" in prefix.strip("/"):
            raise _fail("prefix", f"{prefix!r} must be a path without '//'")
        if any(seg in (".", "..") for seg in prefix.strip("/").split("/")) and prefix.strip("/"):
            raise _fail("prefix", f"{prefix!r} has a '.' or '..' segment")
        if prefix.strip("/"):
            try:
                encode_secret_id(prefix.strip("/") + "/x")
            except InvalidConfig as exc:
                raise _fail("prefix", str(exc)) from None
    location = config.get("location")
    if location is not None and (not isinstance(location, str) or not _LOCATION.match(location)):
        raise _fail("location", f"{location!r} is not a location such as europe-west1")
    endpoint = config.get("endpoint")
    if endpoint is not None and (not isinstance(endpoint, str) or not endpoint):
        raise _fail("endpoint", "must be a non-empty string")
    if endpoint is not None and not _ENDPOINT.match(endpoint):
        raise _fail("endpoint", f"{endpoint[:80]!r} is not HOST or HOST:PORT "
                                "(e.g. secretmanager.europe-west1.rep.googleapis.com)")
    policy = config.get("secretVersionSelectionPolicy")
    if policy is not None and policy not in POLICIES:
        raise _fail("secretVersionSelectionPolicy", f"{policy!r} is not one of {', '.join(POLICIES)}")
    exchange = config.get("tokenExchange")
    if exchange is not None and not _exchange_ok(exchange):
        raise _fail("tokenExchange", "must be {audience: string, impersonate?: bool}")


def _exchange_ok(exchange: Any) -> bool:
    return (isinstance(exchange, Mapping) and not set(exchange) - {"audience", "impersonate"}
            and isinstance(exchange.get("audience"), str) and bool(exchange["audience"])
            and isinstance(exchange.get("impersonate", False), bool))


def credential_use(config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
    """A key, a token or a ServiceAccount token to exchange is the store's own; else ADC
    (environment, gcloud files, metadata server: the controller's identity)."""
    own = bool(credentials & OWN_CREDENTIALS)
    return CredentialUse(
        ambient=None if own else ("no auth.secretRef, auth.workloadIdentity or auth.workloadIdentityFederation: "
                                  "Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, "
                                  "metadata server)"),
        destinations=("endpoint",) if config.get("endpoint") else (),
    )


# -- the block as written ---------------------------------------------------------------------
def store_block(block: Mapping[str, Any]) -> StoreBlock:
    """ESO's ``gcpsm`` block (told by ``projectID``/``auth``) or secretsync's own."""
    eso = bool(_ESO_ONLY & set(block))
    if not eso:
        return generic_store_block(block)
    problems: list[str] = []
    ours = sorted(set(block) & {"project", "prefix", "endpoint", "secretRef", "serviceAccountRef"})
    for key in ours:
        problems.append(f"{key}: secretsync's field in an ESO gcpsm block (projectID/auth): write the block "
                        "in one dialect")
    for key in sorted(set(block) - ESO_KEYS - set(ours)):
        problems.append(f"{key}: unknown field of ESO's gcpsm block (known: {', '.join(sorted(ESO_KEYS))})")
    config: dict[str, Any] = {}
    project = block.get("projectID")
    if isinstance(project, list):
        problems.append("projectID: must be a string, got a list (ESO's docs write the placeholder "
                        "`projectID: [PROJECT_ID]`, which YAML reads as a list: put the project id there)")
    elif not isinstance(project, str) or not project:
        problems.append("projectID: required (a non-empty string)")
    else:
        config["project"] = project
    if block.get("location"):
        config["location"] = block["location"]
    policy = block.get("secretVersionSelectionPolicy", "LatestOrFail")
    if policy not in POLICIES:
        problems.append(f"secretVersionSelectionPolicy: {policy!r} is not one of {', '.join(POLICIES)}")
    config["secretVersionSelectionPolicy"] = policy
    creds: list[CredentialSource] = []
    auth = block.get("auth")
    if auth is not None:
        if not isinstance(auth, Mapping):
            problems.append("auth: must be an object")
        else:
            _eso_auth(auth, config, creds, problems)
    if problems:
        raise InvalidConfig("\n".join(problems))
    return StoreBlock(config, tuple(creds))


def _eso_auth(auth: Mapping[str, Any], config: dict[str, Any], creds: list[CredentialSource],
              problems: list[str]) -> None:
    modes = [k for k in ("secretRef", "workloadIdentity", "workloadIdentityFederation") if auth.get(k) is not None]
    for key in sorted(set(auth) - {"secretRef", "workloadIdentity", "workloadIdentityFederation"}):
        problems.append(f"auth.{key}: unknown field (known: secretRef, workloadIdentity, "
                        "workloadIdentityFederation)")
    if len(modes) > 1:
        problems.append(f"auth: set one of secretRef, workloadIdentity, workloadIdentityFederation (got "
                        f"{', '.join(modes)})")
        return
    try:
        if "secretRef" in modes:
            ref = auth["secretRef"]
            if not isinstance(ref, Mapping):
                raise InvalidConfig("auth.secretRef: must be an object {secretAccessKeySecretRef}")
            for key in sorted(set(ref) - {"secretAccessKeySecretRef"}):
                problems.append(f"auth.secretRef.{key}: unknown field (known: secretAccessKeySecretRef)")
            creds.append(secret_source("serviceAccountKey", ref.get("secretAccessKeySecretRef"),
                                       "auth.secretRef.secretAccessKeySecretRef"))
        elif "workloadIdentity" in modes:
            _workload_identity(auth["workloadIdentity"], config, creds, problems)
        elif "workloadIdentityFederation" in modes:
            _federation(auth["workloadIdentityFederation"], config, creds, problems)
    except InvalidConfig as exc:
        problems.append(str(exc.args[0]))


def _workload_identity(wi: Any, config: dict[str, Any], creds: list[CredentialSource],
                       problems: list[str]) -> None:
    """GKE Workload Identity, per store: the KSA's token (audience ``<clusterProjectID>.svc.id.goog``,
    as ESO requests it) exchanged at STS for the pool's audience, then impersonating the GSA
    its ``iam.gke.io/gcp-service-account`` annotation names."""
    where = "auth.workloadIdentity"
    if not isinstance(wi, Mapping):
        raise InvalidConfig(f"{where}: must be an object")
    known = {"clusterLocation", "clusterName", "clusterProjectID", "serviceAccountRef"}
    for key in sorted(set(wi) - known):
        problems.append(f"{where}.{key}: unknown field (known: {', '.join(sorted(known))})")
    cluster_project = wi.get("clusterProjectID") or config.get("project")
    for key in ("clusterLocation", "clusterName", "clusterProjectID"):
        value = wi.get(key)
        if value is not None and (not isinstance(value, str) or not (_CLUSTER_PART.match(value)
                                                                     or _PROJECT.match(value))):
            problems.append(f"{where}.{key}: {value!r} is not a GKE {key[7:].lower()} name (ESO's docs write "
                            "placeholders such as [CLUSTER_NAME]: put the real value there)")
            return
    if not isinstance(cluster_project, str):
        return  # projectID's own problem is already reported
    pool = f"{cluster_project}.svc.id.goog"
    location, cluster = wi.get("clusterLocation"), wi.get("clusterName")
    if location and cluster:
        idp = f"https://container.googleapis.com/v1/projects/{cluster_project}/locations/{location}/clusters/{cluster}"
        audience = f"identitynamespace:{pool}:{idp}"
    elif location or cluster:
        problems.append(f"{where}: clusterLocation and clusterName go together (or leave both out)")
        return
    else:
        audience = f"identitynamespace:{pool}"
    sa = wi.get("serviceAccountRef")
    src = token_source("subjectToken", sa, f"{where}.serviceAccountRef", (pool,))
    creds.append(src)
    creds.append(CredentialSource("serviceAccountEmail", f"{where}.serviceAccountRef", "annotation", src.name,
                                  src.namespace, GSA_ANNOTATION))
    config["tokenExchange"] = {"audience": audience, "impersonate": True}


def _federation(wif: Any, config: dict[str, Any], creds: list[CredentialSource], problems: list[str]) -> None:
    """Workload Identity Federation (non-GKE clusters): the KSA token exchanged at STS for
    ``audience`` (the pool provider); the federated token reads Secret Manager directly."""
    where = "auth.workloadIdentityFederation"
    if not isinstance(wif, Mapping):
        raise InvalidConfig(f"{where}: must be an object")
    for key in ("credConfig", "awsSecurityCredentials"):
        if wif.get(key) is not None:
            problems.append(f"{where}.{key}: not supported (a credential config names token URLs and files "
                            "the controller would call or read; use serviceAccountRef + audience)")
    known = {"credConfig", "awsSecurityCredentials", "serviceAccountRef", "audience", "externalTokenEndpoint"}
    for key in sorted(set(wif) - known):
        problems.append(f"{where}.{key}: unknown field (supported: serviceAccountRef, audience)")
    if wif.get("externalTokenEndpoint") is not None:
        problems.append(f"{where}.externalTokenEndpoint: not supported (where the controller sends a token is "
                        "controller configuration, not a store field)")
    audience = wif.get("audience")
    if not isinstance(audience, str) or not audience.startswith("//iam.googleapis.com/"):
        problems.append(f"{where}.audience: required: the pool provider "
                        "(//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/"
                        "providers/PROVIDER)")
        return
    if "[" in audience:
        problems.append(f"{where}.audience: holds a placeholder ([...]) of ESO's docs: put the real pool "
                        "provider there")
        return
    creds.append(token_source("subjectToken", wif.get("serviceAccountRef"), f"{where}.serviceAccountRef",
                              (audience,)))
    config["tokenExchange"] = {"audience": audience, "impersonate": False}
