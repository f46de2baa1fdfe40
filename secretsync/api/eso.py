# long-file: one ESO converter, kind by kind, one report; a split now would collide with wip/esofields
"""Convert External Secrets Operator manifests (external-secrets.io v1beta1 / v1) to secretsync's.

Why a converter that reports instead of one that guesses: a migration tool that silently
drops ``metadataPolicy: Fetch`` or a generator leaves a cluster with Secrets that look
right and are not. Every field is either converted, dropped with a *note* because it has
no effect here, or reported as an *issue* naming ``Kind/namespace/name`` and the field
path (``ExternalSecret/default/x: spec.dataFrom[0].sourceRef.generatorRef: generators are
not supported``). Each converted object is then parsed with our own parser (and its
provider block checked by the provider's factory when installed), so whatever we print
is accepted by the controller.

Provider blocks (ESO -> ours; our shape is documented on
:class:`secretsync.api.models.ProviderSpec`):

* ``aws`` (``service: SecretsManager``): ``region``, ``role``, ``prefix`` (ESO concatenates,
  we join with ``/``: only a prefix ending in ``/`` converts), ``auth.secretRef.
  {accessKeyIDSecretRef, secretAccessKeySecretRef, sessionTokenSecretRef}`` ->
  ``secretRef.{accessKeyID, secretAccessKey, sessionToken}``. Not convertible:
  ``service: ParameterStore``, ``auth.jwt`` (per-store IRSA service accounts: the controller
  uses its own pod identity), ``additionalRoles``, ``externalID``, ``sessionTags``.
* ``gcpsm``: ``projectID`` -> ``project``, ``location``, ``auth.secretRef.secretAccessKeySecretRef``
  -> ``secretRef.serviceAccountKey``. Not convertible: ``auth.workloadIdentity`` /
  ``workloadIdentityFederation`` with a per-store service account.
* ``azurekv``: ``vaultUrl``, ``tenantId``, ``authType`` (ServicePrincipal / ManagedIdentity /
  WorkloadIdentity), ``identityId`` -> ``clientId``, ``authSecretRef.{clientSecret,
  clientCertificate}`` -> ``secretRef.{clientSecret, clientCertificate}``. Not convertible:
  ``authSecretRef.clientId``/``tenantId`` (ours takes them as literals), per-store
  ``serviceAccountRef``, non-public clouds.
* ``vault``: ``server`` -> ``address``, ``path`` -> ``mount``, ``version`` v1/v2 -> ``kvVersion``
  1/2, ``namespace``; ``auth.tokenSecretRef`` -> ``secretRef.token``; ``auth.appRole`` ->
  ``auth: {method: approle, mountPath, roleId}`` + ``secretRef.{roleId, secretId}``;
  ``auth.kubernetes`` -> ``auth: {method: kubernetes, mountPath, role}`` + ``serviceAccountRef``
  / ``secretRef.jwt``; ``auth.jwt`` -> ``auth: {method: jwt, mountPath, role}`` + ``secretRef.jwt``
  / ``serviceAccountRef``. Not convertible: ``auth.cert`` and other methods, ``caBundle`` /
  ``caProvider`` / ``tls`` (our ``caCert`` is a file mounted into the controller).

Templates: Go templates are translated by :mod:`.gotemplate`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .fields import child
from .gotemplate import translate
from .models import (
    API_VERSION,
    CREDENTIAL_KEYS,
    KIND_CLUSTER_EXTERNAL_SECRET,
    KIND_CLUSTER_SECRET_STORE,
    KIND_EXTERNAL_SECRET,
    KIND_SECRET_STORE,
    SERVICE_ACCOUNT_CREDENTIAL,
    InvalidSpec,
    check_provider_config,
    format_duration,
    object_ref,
    parse_duration,
    parse_object,
)
from .template import TemplateEngine

ESO_GROUP = "external-secrets.io"
ESO_VERSIONS = ("v1", "v1beta1", "v1alpha1")
_CONVERTIBLE = (KIND_EXTERNAL_SECRET, KIND_SECRET_STORE, KIND_CLUSTER_SECRET_STORE, KIND_CLUSTER_EXTERNAL_SECRET)
_UNSUPPORTED_KINDS = {
    "PushSecret": "PushSecret is not supported (use `secretsync migrate` to move values into a store once)",
    "ClusterPushSecret": "ClusterPushSecret is not supported (use `secretsync migrate`)",
}
#: metadata fields a cluster export carries that must not be re-applied.
_DROP_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                  "ownerReferences", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "finalizers")


@dataclass
class Conversion:
    """Converted documents, what could not be converted (issues) and what changed (notes)."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Per output document: the issues that concern it (written as comments above it).
    doc_issues: list[list[str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues


class _Obj:
    """Collects issues and notes for one object, prefixed with its reference."""

    def __init__(self, ref: str, result: Conversion) -> None:
        self.ref = ref
        self.result = result
        self.issues: list[str] = []

    def cannot(self, path: str, why: str) -> None:
        text = f"{self.ref}: {path}: {why}" if path else f"{self.ref}: {why}"
        self.issues.append(text)
        self.result.issues.append(text)

    def note(self, path: str, what: str) -> None:
        self.result.notes.append(f"{self.ref}: {path}: {what}" if path else f"{self.ref}: {what}")

    def rest(self, obj: Mapping[str, Any], path: str, handled: set[str]) -> None:
        """Report every field of ``obj`` not handled (none may vanish silently)."""
        for key in obj:
            if key not in handled:
                self.cannot(child(path, str(key)), "no equivalent in secretsync (field not converted)")


# --------------------------------------------------------------------------- YAML in
class _Loader(yaml.SafeLoader):
    """SafeLoader that records duplicate mapping keys (ESO's docs contain some)."""

    duplicates: list[tuple[int, str, bool]]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            same = loader.construct_object(seen[key], deep=True) == loader.construct_object(value_node, deep=True)
            loader.duplicates.append((key_node.start_mark.line + 1, str(key), same))
        seen[key] = value_node
    return yaml.SafeLoader.construct_mapping(loader, node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_documents(text: str, source: str = "<input>") -> tuple[list[Any], list[str], list[str]]:
    """Parse a YAML stream: (documents, issues, notes).

    Lines that are exactly ``{% raw %}`` / ``{% endraw %}`` (a docs-site wrapper around
    examples) are removed with a note. A YAML error is an issue naming the line; documents
    before it are kept. Duplicate keys: the last value wins (as PyYAML and most tools do);
    an issue when the values differ, a note when they are equal.
    """
    issues: list[str] = []
    notes: list[str] = []
    lines = text.splitlines(keepends=True)
    kept = [ln if ln.strip() not in ("{% raw %}", "{% endraw %}") else "\n" for ln in lines]
    if kept != lines:
        notes.append("removed {% raw %}/{% endraw %} wrapper lines (documentation markup, not YAML)")
    text = "".join(kept)
    loader = _Loader(text)
    loader.duplicates = []
    docs: list[Any] = []
    try:
        while loader.check_data():  # type: ignore[no-untyped-call]
            docs.append(loader.get_data())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        issues.append(f"{where}not valid YAML ({problem}); nothing after this point was converted")
    finally:
        loader.dispose()
    for line, key, same in loader.duplicates:
        if same:
            notes.append(f"line {line}: duplicate key {key!r} with the same value")
        else:
            issues.append(f"line {line}: duplicate key {key!r}: the earlier value is ignored (fix the source)")
    return docs, issues, notes


# --------------------------------------------------------------------------- helpers
def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _mapping_or_none(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _list(value: Any, o: _Obj, path: str) -> list[Any]:
    """A list field; anything else is reported (and treated as empty)."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    o.cannot(path, "must be a list")
    return []


def _sel(ref: Any) -> dict[str, Any] | None:
    """ESO SecretKeySelector -> ours (same shape: name, key, namespace)."""
    if not isinstance(ref, Mapping):
        return None
    return {k: ref[k] for k in ("name", "key", "namespace") if ref.get(k) is not None}


def _labels(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _interval(value: Any) -> str | None:
    """ESO durations are Go strings; a few places take integer seconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return format_duration(float(value))
    if isinstance(value, str):
        try:
            return format_duration(parse_duration(value))
        except ValueError:
            return value
    return None


# --------------------------------------------------------------------------- stores
def _convert_aws(cfg: Mapping[str, Any], o: _Obj, path: str) -> tuple[str, dict[str, Any]]:
    out: dict[str, Any] = {}
    if not isinstance(cfg, Mapping):
        o.cannot(path, "must be an object")
        return "aws", out
    handled = {"service", "region", "role", "auth", "prefix", "secretsManager"}
    service = cfg.get("service", "SecretsManager")
    if service != "SecretsManager":
        o.cannot(f"{path}.service", f"{service} is not supported (only SecretsManager)")
    for key in ("region", "role"):
        if cfg.get(key):
            out[key] = cfg[key]
    prefix = cfg.get("prefix")
    if prefix:
        if str(prefix).endswith("/"):
            out["prefix"] = str(prefix).strip("/")
        else:
            o.cannot(f"{path}.prefix", "ESO prepends the prefix as is; secretsync joins PREFIX/name, so only a "
                                       "prefix ending in '/' converts")
    sm = cfg.get("secretsManager")
    if isinstance(sm, Mapping):
        if sm.get("recoveryWindowInDays") is not None:
            out["recoveryWindowDays"] = sm["recoveryWindowInDays"]
        if "forceDeleteWithoutRecovery" in sm:
            o.note(f"{path}.secretsManager.forceDeleteWithoutRecovery",
                   "dropped: it only concerns PushSecret deletions, which secretsync does not do")
        o.rest(sm, f"{path}.secretsManager", {"recoveryWindowInDays", "forceDeleteWithoutRecovery"})
    auth = cfg.get("auth")
    if isinstance(auth, Mapping):
        sr = auth.get("secretRef")
        if isinstance(sr, Mapping):
            refs = {}
            for eso_key, ours in (("accessKeyIDSecretRef", "accessKeyID"),
                                  ("secretAccessKeySecretRef", "secretAccessKey"),
                                  ("sessionTokenSecretRef", "sessionToken")):
                sel = _sel(sr.get(eso_key))
                if sel:
                    refs[ours] = sel
            if refs:
                out["secretRef"] = refs
            o.rest(sr, f"{path}.auth.secretRef",
                   {"accessKeyIDSecretRef", "secretAccessKeySecretRef", "sessionTokenSecretRef"})
        if auth.get("jwt") is not None:
            o.cannot(f"{path}.auth.jwt", "per-store IRSA service accounts are not supported: the controller uses "
                                         "its own pod identity (IRSA / EKS Pod Identity) and `role`")
        o.rest(auth, f"{path}.auth", {"secretRef", "jwt"})
    o.rest(cfg, path, handled)
    return "aws", out


def _convert_gcp(cfg: Mapping[str, Any], o: _Obj, path: str) -> tuple[str, dict[str, Any]]:
    out: dict[str, Any] = {}
    if not isinstance(cfg, Mapping):
        o.cannot(path, "must be an object")
        return "gcp", out
    if "projectID" in cfg:
        out["project"] = cfg["projectID"]
    if cfg.get("location"):
        out["location"] = cfg["location"]
    auth = cfg.get("auth")
    if isinstance(auth, Mapping):
        sr = auth.get("secretRef")
        if isinstance(sr, Mapping):
            sel = _sel(sr.get("secretAccessKeySecretRef"))
            if sel:
                out["secretRef"] = {"serviceAccountKey": sel}
            o.rest(sr, f"{path}.auth.secretRef", {"secretAccessKeySecretRef"})
        for key in ("workloadIdentity", "workloadIdentityFederation"):
            if auth.get(key) is not None:
                o.cannot(f"{path}.auth.{key}", "per-store GCP workload identity is not supported: the controller "
                                               "uses its own identity (Application Default Credentials)")
        o.rest(auth, f"{path}.auth", {"secretRef", "workloadIdentity", "workloadIdentityFederation"})
    if cfg.get("secretVersionSelectionPolicy") not in (None, "LatestOrFail"):
        o.cannot(f"{path}.secretVersionSelectionPolicy",
                 f"{cfg['secretVersionSelectionPolicy']} is not supported (secretsync reads 'latest' and fails "
                 "when it is disabled)")
    o.rest(cfg, path, {"projectID", "location", "auth", "secretVersionSelectionPolicy"})
    return "gcp", out


_AZURE_AUTH = {"ServicePrincipal": "servicePrincipal", "ManagedIdentity": "managedIdentity",
               "WorkloadIdentity": "workloadIdentity"}


def _convert_azure(cfg: Mapping[str, Any], o: _Obj, path: str) -> tuple[str, dict[str, Any]]:
    out: dict[str, Any] = {}
    if not isinstance(cfg, Mapping):
        o.cannot(path, "must be an object")
        return "azure", out
    if "vaultUrl" in cfg:
        out["vaultUrl"] = cfg["vaultUrl"]
    auth_type = cfg.get("authType", "ServicePrincipal")
    if auth_type in _AZURE_AUTH:
        out["authType"] = _AZURE_AUTH[auth_type]
    else:
        o.cannot(f"{path}.authType", f"{auth_type!r} is not supported")
    if cfg.get("tenantId"):
        out["tenantId"] = cfg["tenantId"]
    if cfg.get("identityId"):
        out["clientId"] = cfg["identityId"]
        o.note(f"{path}.identityId", "converted to clientId (must be the identity's client id, not a resource id)")
    env = cfg.get("environmentType", "PublicCloud")
    if env != "PublicCloud":
        o.cannot(f"{path}.environmentType", f"{env}: set authorityHost and a vaultUrl of that cloud by hand")
    sr = cfg.get("authSecretRef")
    if isinstance(sr, Mapping):
        refs = {}
        for key in ("clientSecret", "clientCertificate"):
            sel = _sel(sr.get(key))
            if sel:
                refs[key] = sel
        if refs:
            out["secretRef"] = refs
        for key in ("clientId", "tenantId"):
            if sr.get(key) is not None:
                o.cannot(f"{path}.authSecretRef.{key}",
                         f"{key} from a Secret is not supported: put the literal {key} in spec.provider.azure.{key}")
        o.rest(sr, f"{path}.authSecretRef", {"clientSecret", "clientCertificate", "clientId", "tenantId"})
    if cfg.get("serviceAccountRef") is not None:
        o.cannot(f"{path}.serviceAccountRef", "per-store workload identity service accounts are not supported: "
                                              "the controller uses its own (authType workloadIdentity)")
    o.rest(cfg, path, {"vaultUrl", "authType", "tenantId", "identityId", "environmentType", "authSecretRef",
                       "serviceAccountRef"})
    return "azure", out


def _convert_vault(cfg: Mapping[str, Any], o: _Obj, path: str) -> tuple[str, dict[str, Any]]:
    out: dict[str, Any] = {}
    if not isinstance(cfg, Mapping):
        o.cannot(path, "must be an object")
        return "vault", out
    if "server" in cfg:
        out["address"] = cfg["server"]
    if cfg.get("path"):
        out["mount"] = cfg["path"]
    version = cfg.get("version", "v2")
    if version in ("v1", "v2"):
        out["kvVersion"] = int(version[1])
    else:
        o.cannot(f"{path}.version", f"{version!r} is not v1 or v2")
    if cfg.get("namespace"):
        out["namespace"] = cfg["namespace"]
    for key in ("caBundle", "caProvider", "tls"):
        if cfg.get(key) is not None:
            o.cannot(f"{path}.{key}", "not supported: mount the CA bundle into the controller and set caCert to "
                                      "its path (client TLS certificates are not supported)")
    for key in ("readYourWrites", "forwardInconsistent"):
        if key in cfg:
            o.note(f"{path}.{key}", "dropped (secretsync only reads)")
    secret_ref: dict[str, Any] = {}
    auth = cfg.get("auth")
    if isinstance(auth, Mapping):
        ours: dict[str, Any] = {}
        methods = [m for m in auth if auth.get(m) is not None]
        if auth.get("tokenSecretRef") is not None:
            ours = {"method": "token"}
            if sel := _sel(auth["tokenSecretRef"]):
                secret_ref["token"] = sel
        if isinstance(auth.get("appRole"), Mapping):
            ar = auth["appRole"]
            ours = {"method": "approle", "mountPath": ar.get("path", "approle")}
            if ar.get("roleId"):
                ours["roleId"] = ar["roleId"]
            if sel := _sel(ar.get("roleRef")):
                secret_ref["roleId"] = sel
            if sel := _sel(ar.get("secretRef")):
                secret_ref["secretId"] = sel
            o.rest(ar, f"{path}.auth.appRole", {"path", "roleId", "roleRef", "secretRef"})
        if isinstance(auth.get("kubernetes"), Mapping):
            k8s = auth["kubernetes"]
            ours = {"method": "kubernetes", "mountPath": k8s.get("mountPath", "kubernetes")}
            if k8s.get("role"):
                ours["role"] = k8s["role"]
            if isinstance(k8s.get("serviceAccountRef"), Mapping):
                out["serviceAccountRef"] = dict(k8s["serviceAccountRef"])
            if sel := _sel(k8s.get("secretRef")):
                secret_ref["jwt"] = sel
            o.rest(k8s, f"{path}.auth.kubernetes", {"mountPath", "role", "serviceAccountRef", "secretRef"})
        if isinstance(auth.get("jwt"), Mapping):
            jwt = auth["jwt"]
            ours = {"method": "jwt", "mountPath": jwt.get("path", "jwt")}
            if jwt.get("role"):
                ours["role"] = jwt["role"]
            if sel := _sel(jwt.get("secretRef")):
                secret_ref["jwt"] = sel
            ksat = jwt.get("kubernetesServiceAccountToken")
            if isinstance(ksat, Mapping):
                sa = dict(ksat.get("serviceAccountRef") or {})
                if ksat.get("audiences"):
                    sa["audiences"] = list(ksat["audiences"])
                if sa.get("name"):
                    out["serviceAccountRef"] = sa
                if "expirationSeconds" in ksat:
                    o.note(f"{path}.auth.jwt.kubernetesServiceAccountToken.expirationSeconds",
                           "dropped: the controller requests short-lived tokens itself")
                o.rest(ksat, f"{path}.auth.jwt.kubernetesServiceAccountToken",
                       {"serviceAccountRef", "audiences", "expirationSeconds"})
            if "secretRef" in secret_ref.get("jwt", {}) and "serviceAccountRef" in out:
                o.note(f"{path}.auth.jwt", "both a JWT secret and a service account token: the secret wins")
            o.rest(jwt, f"{path}.auth.jwt", {"path", "role", "secretRef", "kubernetesServiceAccountToken"})
        known = {"tokenSecretRef", "appRole", "kubernetes", "jwt"}
        for m in methods:
            if m not in known:
                o.cannot(f"{path}.auth.{m}", f"Vault auth method {m!r} is not supported "
                                             "(supported: tokenSecretRef, appRole, kubernetes, jwt)")
        if len([m for m in methods if m in known]) > 1:
            o.cannot(f"{path}.auth", "more than one auth method is set; keep one")
        if ours:
            out["auth"] = ours
    if secret_ref:
        out["secretRef"] = secret_ref
    o.rest(cfg, path, {"server", "path", "version", "namespace", "caBundle", "caProvider", "tls", "auth",
                       "readYourWrites", "forwardInconsistent"})
    return "vault", out


_PROVIDERS: dict[str, Callable[[Mapping[str, Any], _Obj, str], tuple[str, dict[str, Any]]]] = {
    "aws": _convert_aws,
    "gcpsm": _convert_gcp,
    "azurekv": _convert_azure,
    "vault": _convert_vault,
}


def _convert_store(doc: Mapping[str, Any], o: _Obj) -> dict[str, Any]:
    spec = _mapping(doc.get("spec"))
    out: dict[str, Any] = {}
    provider = spec.get("provider")
    if isinstance(provider, Mapping):
        names = [n for n in provider if provider.get(n) is not None]
        if len(names) != 1:
            o.cannot("spec.provider", f"exactly one provider must be set (got {', '.join(map(str, names)) or 'none'})")
        for name in names:
            conv = _PROVIDERS.get(str(name))
            if conv is None:
                o.cannot(f"spec.provider.{name}", f"provider {name!r} is not supported "
                                                  "(supported: aws, gcpsm, azurekv, vault)")
                continue
            ours, cfg = conv(provider[name], o, f"spec.provider.{name}")
            if len(names) == 1:
                out["provider"] = {ours: cfg}
    else:
        o.cannot("spec.provider", "required")
    if spec.get("controller"):
        o.cannot("spec.controller", "controller classes are not supported: every secretsync controller serves "
                                    "every store")
    if "retrySettings" in spec:
        o.note("spec.retrySettings", "dropped: secretsync retries with its own bounded backoff")
    if spec.get("refreshInterval") is not None:
        interval = _interval(spec["refreshInterval"])
        if interval:
            out["refreshInterval"] = interval
    if isinstance(spec.get("conditions"), list):
        conds = []
        for i, c in enumerate(spec["conditions"]):
            if not isinstance(c, Mapping):
                continue
            conds.append({k: c[k] for k in ("namespaces", "namespaceSelector", "namespaceRegexes") if k in c})
            o.rest(c, f"spec.conditions[{i}]", {"namespaces", "namespaceSelector", "namespaceRegexes"})
        if conds:
            out["conditions"] = conds
    o.rest(spec, "spec", {"provider", "controller", "retrySettings", "refreshInterval", "conditions"})
    if doc.get("kind") == KIND_SECRET_STORE and isinstance(out.get("provider"), Mapping):
        _note_tenant_rules(out["provider"], o)
    return out


def _note_tenant_rules(provider: Mapping[str, Any], o: _Obj) -> None:
    """Where secretsync refuses on purpose what ESO lets a namespaced SecretStore do (docs/security.md)."""
    from secretsync.core.contract import DescribesCredentialUse
    from secretsync.core.errors import ProviderError
    from secretsync.core.registry import get_factory

    name, block = next(iter(provider.items()))
    try:
        factory = get_factory(name)
    except ProviderError:
        return
    if not isinstance(factory, DescribesCredentialUse) or not isinstance(block, Mapping):
        return
    config = {k: v for k, v in block.items() if k not in CREDENTIAL_KEYS}
    creds = frozenset(block.get("secretRef") or ()) | ({SERVICE_ACCOUNT_CREDENTIAL} if block.get("serviceAccountRef")
                                                      else frozenset())
    use = factory.credential_use(config, creds)
    path = f"spec.provider.{name}"
    if use.ambient:
        o.note(path, "differs from ESO on purpose: a SecretStore must bring its own credentials (secretRef or "
                     "serviceAccountRef); without them it would use the controller's identity, which only a "
                     "ClusterSecretStore may (or set --allow-namespaced-ambient-identity)")
    for f in use.local_files:
        o.note(f"{path}.{f}", "differs from ESO on purpose: a SecretStore may not name a file of the controller; "
                              "use a ClusterSecretStore (with --allow-cluster-store-files)")


# --------------------------------------------------------------------------- ExternalSecret
def _remote_ref(ref: Mapping[str, Any], o: _Obj, path: str, fields: tuple[str, ...],
                also: frozenset[str] = frozenset()) -> dict[str, Any]:
    out = {k: ref[k] for k in fields if ref.get(k) is not None}
    if ref.get("decodingStrategy") not in (None, "None"):
        out["decodingStrategy"] = ref["decodingStrategy"]
    if ref.get("conversionStrategy") not in (None, "Default"):
        o.cannot(f"{path}.conversionStrategy", f"{ref['conversionStrategy']} is not supported (only Default)")
    if ref.get("metadataPolicy") not in (None, "None"):
        o.cannot(f"{path}.metadataPolicy", f"{ref['metadataPolicy']}: fetching provider metadata/tags is not "
                                           "supported (only values)")
    o.rest(ref, path, {*fields, *also, "decodingStrategy", "conversionStrategy", "metadataPolicy"})
    return out


def _source_ref(item: Mapping[str, Any], o: _Obj, path: str, store: Mapping[str, Any] | None) -> None:
    src = item.get("sourceRef")
    if not isinstance(src, Mapping):
        return
    if src.get("generatorRef") is not None:
        o.cannot(f"{path}.sourceRef.generatorRef", "generators are not supported")
    sref = src.get("storeRef")
    if isinstance(sref, Mapping):
        same = store is not None and sref.get("name") == store.get("name") and \
            sref.get("kind", "SecretStore") == store.get("kind", "SecretStore")
        if not same:
            o.cannot(f"{path}.sourceRef.storeRef", "per-item stores are not supported: one ExternalSecret reads "
                                                   "from spec.secretStoreRef (split it into one per store)")
    o.rest(src, f"{path}.sourceRef", {"generatorRef", "storeRef"})


def _template_text(text: Any, o: _Obj, path: str, engine: TemplateEngine) -> str:
    if not isinstance(text, str):
        o.cannot(path, "must be a string")
        return ""
    tr = translate(text)
    for p in tr.problems:
        o.cannot(path, p)
    for n in tr.notes:
        o.note(path, n)
    if not tr.problems and not tr.helm_escaped:
        try:
            engine.check_syntax(o.ref, path, tr.text)
        except Exception as exc:
            o.cannot(path, f"translated template does not compile: {exc}")
    return tr.text


def _convert_template(t: Mapping[str, Any], o: _Obj, path: str, engine: TemplateEngine) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if t.get("type"):
        out["type"] = t["type"]
    md = t.get("metadata")
    if isinstance(md, Mapping):
        m: dict[str, Any] = {}
        for key in ("labels", "annotations"):
            values = _labels(md.get(key))
            for k, v in list(values.items()):
                if "{{" in v:
                    where = child(f"{path}.metadata.{key}", k)
                    values[k] = _template_text(v, o, where, engine)
                    o.note(where, "templated metadata is refused when it would carry a fetched value (hash it: "
                                  "sha256sum); see docs/sync-api.md")
            if values:
                m[key] = values
        if md.get("finalizers"):
            o.cannot(f"{path}.metadata.finalizers", "setting finalizers on the Secret is not supported")
        o.rest(md, f"{path}.metadata", {"labels", "annotations", "finalizers"})
        if m:
            out["metadata"] = m
    engine_version = t.get("engineVersion", "v2")
    if engine_version == "v1":
        o.note(f"{path}.engineVersion", "v1 templates translated as v2 (values are strings)")
    elif engine_version != "v2":
        o.cannot(f"{path}.engineVersion", f"{engine_version!r} is not supported")
    if t.get("mergePolicy") in ("Replace", "Merge"):
        if t["mergePolicy"] == "Merge":
            out["mergePolicy"] = "Merge"
    elif t.get("mergePolicy") is not None:
        o.cannot(f"{path}.mergePolicy", f"{t['mergePolicy']!r} is not supported")
    data = t.get("data")
    if isinstance(data, Mapping):
        out["data"] = {str(k): _template_text(v, o, child(f"{path}.data", str(k)), engine) for k, v in data.items()}
    tf_out = []
    for i, tf in enumerate(_list(t.get("templateFrom"), o, f"{path}.templateFrom")):
        p = f"{path}.templateFrom[{i}]"
        if not isinstance(tf, Mapping):
            o.cannot(p, "must be an object")
            continue
        if tf.get("target") not in (None, "Data"):
            o.cannot(f"{p}.target", f"{tf['target']}: templating labels/annotations is not supported")
        if tf.get("literal") is not None:
            o.cannot(f"{p}.literal", "literal templates in templateFrom are not supported: move them to "
                                     "template.data")
        for kind in ("configMap", "secret"):
            ref = tf.get(kind)
            if not isinstance(ref, Mapping):
                continue
            items = []
            for j, item in enumerate(_list(ref.get("items"), o, f"{p}.{kind}.items")):
                if not isinstance(item, Mapping):
                    o.cannot(f"{p}.{kind}.items[{j}]", "must be an object")
                    continue
                if item.get("templateAs") not in (None, "Values"):
                    o.cannot(f"{p}.{kind}.items[{j}].templateAs", f"{item['templateAs']} is not supported")
                items.append({"key": item.get("key")})
                o.rest(item, f"{p}.{kind}.items[{j}]", {"key", "templateAs"})
            tf_out.append({kind: {"name": ref.get("name"), "items": items}})
            o.note(f"{p}.{kind}", "the referenced template is Go syntax: translate its content to Jinja2 "
                                  "(not done by import-eso)")
            o.rest(ref, f"{p}.{kind}", {"name", "items"})
        o.rest(tf, p, {"configMap", "secret", "target", "literal"})
    if tf_out:
        out["templateFrom"] = tf_out
    o.rest(t, path, {"type", "metadata", "engineVersion", "mergePolicy", "data", "templateFrom"})
    return out


def _convert_es_spec(spec: Mapping[str, Any], o: _Obj, path: str, engine: TemplateEngine) -> dict[str, Any]:
    out: dict[str, Any] = {}
    store = _mapping_or_none(spec.get("secretStoreRef"))
    if store is not None:
        out["secretStoreRef"] = {"name": store.get("name"), "kind": store.get("kind", KIND_SECRET_STORE)}
        o.rest(store, f"{path}.secretStoreRef", {"name", "kind"})
    if spec.get("refreshInterval") is not None:
        out["refreshInterval"] = _interval(spec["refreshInterval"])
    policy = spec.get("refreshPolicy", "Periodic")
    if policy in ("OnChange", "CreatedOnce"):
        out["refreshPolicy"] = policy
    elif policy != "Periodic":
        o.cannot(f"{path}.refreshPolicy", f"{policy!r} is not supported")
    if spec.get("syncWindows") is not None:
        o.cannot(f"{path}.syncWindows", "sync windows are not supported")
    target = spec.get("target")
    if isinstance(target, Mapping):
        t_out: dict[str, Any] = {}
        for key in ("name", "creationPolicy", "deletionPolicy", "immutable"):
            if target.get(key) is not None:
                t_out[key] = target[key]
        if isinstance(target.get("template"), Mapping):
            t_out["template"] = _convert_template(target["template"], o, f"{path}.target.template", engine)
        if target.get("creationPolicy") == "Merge":
            o.note(f"{path}.target.creationPolicy", "Merge: each ExternalSecret owns the keys it merges; a key "
                                                     "another ExternalSecret already merged is refused "
                                                     "(KeyOwnedByOther), not overwritten")
        o.rest(target, f"{path}.target", {"name", "creationPolicy", "deletionPolicy", "immutable", "template"})
        if t_out:
            out["target"] = t_out
    data_out = []
    for i, item in enumerate(_list(spec.get("data"), o, f"{path}.data")):
        p = f"{path}.data[{i}]"
        if not isinstance(item, Mapping):
            o.cannot(p, "must be an object")
            continue
        _source_ref(item, o, p, store)
        ref = item.get("remoteRef")
        converted: dict[str, Any] = {"secretKey": item.get("secretKey")}
        if isinstance(ref, Mapping):
            converted["remoteRef"] = _remote_ref(ref, o, f"{p}.remoteRef", ("key", "property", "version"))
        data_out.append(converted)
        o.rest(item, p, {"secretKey", "remoteRef", "sourceRef"})
    if data_out:
        out["data"] = data_out
    df_out = []
    for i, item in enumerate(_list(spec.get("dataFrom"), o, f"{path}.dataFrom")):
        p = f"{path}.dataFrom[{i}]"
        if not isinstance(item, Mapping):
            o.cannot(p, "must be an object")
            continue
        _source_ref(item, o, p, store)
        conv: dict[str, Any] = {}
        if isinstance(item.get("extract"), Mapping):
            conv["extract"] = _remote_ref(item["extract"], o, f"{p}.extract", ("key", "property", "version"))
        elif "key" in item:  # v1alpha1 shape: dataFrom: [{key, property, version}]
            conv["extract"] = {k: item[k] for k in ("key", "property", "version") if item.get(k) is not None}
            o.note(p, "old dataFrom shape {key: ...} converted to extract")
        if isinstance(item.get("find"), Mapping):
            f = item["find"]
            fo = _remote_ref(f, o, f"{p}.find", ("path", "tags"), frozenset({"name"}))
            if isinstance(f.get("name"), Mapping):
                fo["name"] = {"regexp": f["name"].get("regexp")}
                o.rest(f["name"], f"{p}.find.name", {"regexp"})
            conv["find"] = fo
        rewrites = []
        for j, rw in enumerate(_list(item.get("rewrite"), o, f"{p}.rewrite")):
            rp = f"{p}.rewrite[{j}]"
            if isinstance(rw, Mapping) and isinstance(rw.get("regexp"), Mapping):
                rewrites.append({"regexp": {"source": rw["regexp"].get("source"),
                                            "target": rw["regexp"].get("target")}})
            for key in ("transform", "merge"):
                if isinstance(rw, Mapping) and rw.get(key) is not None:
                    o.cannot(f"{rp}.{key}", f"{key} rewrites are not supported (only regexp)")
            if isinstance(rw, Mapping):
                o.rest(rw, rp, {"regexp", "transform", "merge"})
        if rewrites:
            conv["rewrite"] = rewrites
        if conv.get("extract") or conv.get("find"):
            df_out.append(conv)
        o.rest(item, p, {"extract", "find", "rewrite", "sourceRef", "key", "property", "version"})
    if df_out:
        out["dataFrom"] = df_out
    if store is None:
        o.cannot(f"{path}.secretStoreRef", "required: secretsync reads every item from one store "
                                           "(ESO's per-item sourceRef is not supported)")
    o.rest(spec, path, {"secretStoreRef", "refreshInterval", "refreshPolicy", "syncWindows", "target", "data",
                        "dataFrom"})
    return out


def _convert_ces(spec: Mapping[str, Any], o: _Obj, engine: TemplateEngine) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.get("externalSecretName"):
        out["externalSecretName"] = spec["externalSecretName"]
    md = spec.get("externalSecretMetadata")
    if isinstance(md, Mapping):
        m = {k: _labels(md.get(k)) for k in ("labels", "annotations") if _labels(md.get(k))}
        if m:
            out["externalSecretMetadata"] = m
        o.rest(md, "spec.externalSecretMetadata", {"labels", "annotations"})
    selectors = list(_list(spec.get("namespaceSelectors"), o, "spec.namespaceSelectors"))
    if spec.get("namespaceSelector") is not None:
        selectors.append(spec["namespaceSelector"])
        o.note("spec.namespaceSelector", "deprecated field merged into namespaceSelectors")
    if selectors:
        out["namespaceSelectors"] = selectors
    if spec.get("namespaces"):
        out["namespaces"] = list(spec["namespaces"])
    if spec.get("refreshTime") is not None:
        out["refreshTime"] = _interval(spec["refreshTime"])
    if isinstance(spec.get("externalSecretSpec"), Mapping):
        out["externalSecretSpec"] = _convert_es_spec(spec["externalSecretSpec"], o, "spec.externalSecretSpec",
                                                     engine)
    else:
        o.cannot("spec.externalSecretSpec", "required")
    o.rest(spec, "spec", {"externalSecretName", "externalSecretMetadata", "namespaceSelectors", "namespaceSelector",
                          "namespaces", "refreshTime", "externalSecretSpec"})
    return out


# --------------------------------------------------------------------------- documents
def _metadata(md: Any) -> dict[str, Any]:
    if not isinstance(md, Mapping):
        return {}
    out = {k: v for k, v in md.items() if k not in _DROP_METADATA}
    for key in ("labels", "annotations"):
        if key in out:
            out[key] = _labels(out[key])
            if not out[key]:
                del out[key]
    return out


def convert_document(doc: Any, result: Conversion, *, default_namespace: str = "default",
                     engine: TemplateEngine | None = None, check_providers: bool = True) -> None:
    """Convert one parsed document, appending to ``result``."""
    engine = engine or TemplateEngine()
    if doc is None:
        return
    if not isinstance(doc, Mapping):
        result.issues.append("a document that is not an object was skipped")
        return
    api = str(doc.get("apiVersion") or "")
    kind = str(doc.get("kind") or "")
    group, _, version = api.rpartition("/")
    md = _mapping(doc.get("metadata"))
    name = str(md.get("name") or "<unnamed>")
    namespaced = kind in (KIND_EXTERNAL_SECRET, KIND_SECRET_STORE, "PushSecret")
    ns = str(md.get("namespace") or default_namespace) if namespaced else None
    ref = object_ref(kind or "<no kind>", name, ns)
    if group == ESO_GROUP and kind in _UNSUPPORTED_KINDS:
        o = _Obj(ref, result)
        o.cannot("", _UNSUPPORTED_KINDS[kind])
        return
    if kind == "CustomResourceDefinition" and str(md.get("name", "")).endswith("." + ESO_GROUP):
        result.notes.append(f"{ref}: ESO's CRD skipped (install secretsync's with `secretsync crds`)")
        return
    if kind == "List" and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            convert_document(item, result, default_namespace=default_namespace, engine=engine,
                             check_providers=check_providers)
        return
    if group != ESO_GROUP or kind not in _CONVERTIBLE:
        if group.endswith(ESO_GROUP):
            _Obj(ref, result).cannot("", f"{api} {kind} is not supported")
            return
        result.documents.append(dict(doc))  # not ESO's (a Secret, a ServiceAccount): kept as is
        result.doc_issues.append([])
        return
    o = _Obj(ref, result)
    if version not in ESO_VERSIONS:
        o.note("apiVersion", f"{api} is not a known ESO version; converted as v1")
    elif version == "v1alpha1":
        o.note("apiVersion", f"{api}: converted with v1 field names; review the result")
    spec = _mapping(doc.get("spec"))
    if not isinstance(doc.get("spec"), Mapping):
        o.cannot("spec", "required (an object)")
    try:
        if kind in (KIND_SECRET_STORE, KIND_CLUSTER_SECRET_STORE):
            new_spec = _convert_store(doc, o)
        elif kind == KIND_EXTERNAL_SECRET:
            new_spec = _convert_es_spec(spec, o, "spec", engine)
        else:
            new_spec = _convert_ces(spec, o, engine)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        # A shape so far off ESO's schema that a converter tripped over it: say so, keep going.
        o.cannot("spec", f"malformed ({type(exc).__name__}); fix the fields named by `kubectl apply "
                         "--dry-run=server` against ESO's CRD first")
        new_spec = {}
    out = {"apiVersion": API_VERSION, "kind": kind, "metadata": _metadata(md), "spec": new_spec}
    o.rest(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    # Whatever we print must be accepted by our own parser (and provider, when installed).
    if not o.issues:
        try:
            parsed = parse_object(out, default_namespace=default_namespace)
            if check_providers and kind in (KIND_SECRET_STORE, KIND_CLUSTER_SECRET_STORE):
                _check_provider(parsed, o)
        except InvalidSpec as exc:
            for p, m in exc.problems:
                o.cannot(p, m)
    result.documents.append(out)
    result.doc_issues.append(list(o.issues))


def _check_provider(parsed: Any, o: _Obj) -> None:
    try:
        check_provider_config(parsed)
    except InvalidSpec as exc:
        for p, m in exc.problems:
            if "not installed" in m or "no provider named" in m:
                o.note(p, f"not checked by the provider ({m})")
            else:
                o.cannot(p, m)


def convert_text(text: str, source: str = "<input>", *, default_namespace: str = "default",
                 check_providers: bool = True) -> Conversion:
    """Convert a YAML stream of ESO manifests (and pass anything else through)."""
    result = Conversion()
    docs, issues, notes = load_documents(text, source)
    result.issues += issues
    result.notes += notes
    engine = TemplateEngine()
    for doc in docs:
        convert_document(doc, result, default_namespace=default_namespace, engine=engine,
                         check_providers=check_providers)
    return result


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so translated templates stay readable."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def dump_documents(result: Conversion) -> str:
    """The converted documents as one YAML stream; each document's issues as comments above it."""
    chunks = []
    for doc, issues in zip(result.documents, result.doc_issues, strict=True):
        head = "".join(f"# cannot convert: {i}\n" for i in issues)
        body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
        chunks.append(head + body)
    return "---\n".join(chunks)
