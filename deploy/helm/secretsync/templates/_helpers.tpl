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

{{/* Rules every mode needs in each namespace it serves (ClusterRole or Role). */}}
{{- define "secretsync.namespacedRules" -}}
- apiGroups: [secretsync.io]
  resources: [externalsecrets, secretstores, secretrotations]
  verbs: [get, list, watch]
- apiGroups: [secretsync.io]
  resources: [externalsecrets/status, secretstores/status, secretrotations/status]
  verbs: [get, update, patch]
# Secrets: create/update/patch/delete the Secrets it manages; get the ones stores reference
# for credentials and the Merge targets. RBAC cannot restrict by label: the controller itself
# only lists and watches Secrets labelled app.kubernetes.io/managed-by=secretsync.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, update, patch, delete]
{{- if .Values.rbac.configMapTemplates }}
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
{{- end }}
{{- if .Values.rbac.serviceAccountTokens }}
- apiGroups: [""]
  resources: [serviceaccounts/token]
  verbs: [create]
{{- end }}
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- if .Values.rollout.enabled }}
# Rollout restarts (opt-in): watch the workloads that read Secrets, patch their pod template.
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [get, list, watch, patch]
- apiGroups: [argoproj.io]
  resources: [rollouts]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end -}}
