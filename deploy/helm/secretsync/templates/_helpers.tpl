{{/* Chart name. */}}
{{- define "secretsync.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: the release name, unless it already contains the chart name. */}}
{{- define "secretsync.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "secretsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "secretsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "secretsync.labels" -}}
{{ include "secretsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: secretsync
app.kubernetes.io/component: controller
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "secretsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "secretsync.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The controller image: repository@digest when a digest is pinned, else repository:tag. */}}
{{- define "secretsync.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Refuse values that would install a controller that cannot work (values.schema.json checks types;
these check combinations). Included once, from the Deployment.
*/}}
{{- define "secretsync.validate" -}}
{{- if and (not .Values.rbac.clusterWide) (not .Values.controller.watchNamespaces) -}}
{{- fail "rbac.clusterWide=false (namespaced-only mode) needs controller.watchNamespaces: the namespaces to serve; with none, the controller would serve nothing" -}}
{{- end -}}
{{- if and (not .Values.rbac.clusterWide) .Values.controller.namespaceSelector -}}
{{- fail "controller.namespaceSelector needs rbac.clusterWide=true: matching namespace labels means listing namespaces, which a namespaced-only Role cannot grant" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without it every replica writes the same Secrets" -}}
{{- end -}}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) -}}
{{- fail "serviceAccount.create=false needs serviceAccount.name: the existing ServiceAccount to run as (not the namespace's default one)" -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled (not .Values.metrics.service.enabled) -}}
{{- fail "serviceMonitor.enabled needs metrics.service.enabled: a ServiceMonitor selects the metrics Service" -}}
{{- end -}}
{{- end -}}

{{/*
Rules every mode needs in each namespace it serves (ClusterRole or Role): exactly the calls the
controller makes, each rule naming the code that makes it. tests/unit/test_deploy_rbac.py derives
the calls from secretsync/controller/ and fails when a call has no rule or a rule has no call.
*/}}
{{- define "secretsync.namespacedRules" -}}
# informer.py (Informer._list/_watch), built in runtime.py: the ExternalSecret and store caches.
- apiGroups: [secretsync.io]
  resources: [externalsecrets, secretstores]
  verbs: [list, watch]
# reconciler.py (ExternalSecretReconciler._write_status) and storestatus.py (StoreStatusReconciler._write):
# the Ready condition, merge-patched onto the status subresource.
- apiGroups: [secretsync.io]
  resources: [externalsecrets/status, secretstores/status]
  verbs: [patch]
{{- if .Values.rotation.enabled }}
# rotation.py (RotationManager): the SecretRotation cache (informer.py) and its status (opt-in: rotation.enabled).
- apiGroups: [secretsync.io]
  resources: [secretrotations]
  verbs: [list, watch]
# rotation.py (RotationManager): status of each SecretRotation, merge-patched.
- apiGroups: [secretsync.io]
  resources: [secretrotations/status]
  verbs: [patch]
{{- end }}
{{- if .Values.rollout.enabled }}
# rollout.py (RolloutManager): watch the workloads that read Secrets (informer.py) and patch their pod
# template's hash annotation in RolloutManager._fire (opt-in: rollout.enabled).
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [list, watch, patch]
# rollout.py (RolloutManager._fire): Argo Rollouts, watched only where the CRD is served.
- apiGroups: [argoproj.io]
  resources: [rollouts]
  verbs: [list, watch, patch]
{{- end }}
# Secrets. list/watch: informer.py, and only those labelled app.kubernetes.io/managed-by=secretsync
# (runtime.py sets the selector). get: secretwriter.py (the target before writing), stores.py
# (store credentials from secretRef), reconciler.py (templateFrom a Secret).
# create/update/delete: secretwriter.py (the target Secrets; delete only with a uid precondition).
# RBAC cannot restrict by label or by name pattern: these verbs cover every Secret in scope.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, update, delete]
{{- if .Values.rbac.configMapTemplates }}
# reconciler.py (ExternalSecretReconciler._lookup): templateFrom a ConfigMap; stores.py
# (StoreManager._configmap_key): a CA bundle a store names in caProvider {type: ConfigMap}.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
{{- end }}
{{- if .Values.rbac.serviceAccountTokens }}
# stores.py (StoreManager._service_account_token): TokenRequest for a store's serviceAccountRef.
- apiGroups: [""]
  resources: [serviceaccounts/token]
  verbs: [create]
# stores.py (StoreManager._service_account_annotation): workload identity ids kept on the
# ServiceAccount a store names (Azure's azure.workload.identity/client-id and tenant-id).
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get]
{{- end }}
# events.py (EventRecorder._run): events on ExternalSecrets and stores (in their namespace).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}
