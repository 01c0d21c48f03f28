{{/* The chart's name, or nameOverride. */}}
{{- define "edgemigrate.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Base name of every object: fullnameOverride, else the release name, unless it lacks the
  chart's name. At most 40 characters, so that component suffixes stay within name limits. */}}
{{- define "edgemigrate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "edgemigrate.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "edgemigrate.scheduler" -}}{{ include "edgemigrate.fullname" . }}-scheduler{{- end -}}
{{- define "edgemigrate.webhook" -}}{{ include "edgemigrate.fullname" . }}-webhook{{- end -}}
{{- define "edgemigrate.descheduler" -}}{{ include "edgemigrate.fullname" . }}-descheduler{{- end -}}
{{- define "edgemigrate.locator" -}}{{ include "edgemigrate.fullname" . }}-locator{{- end -}}

{{/* Labels on every object; uninstall tests select on app.kubernetes.io/instance. */}}
{{- define "edgemigrate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: edgemigrate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "webhook"). */}}
{{- define "edgemigrate.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-%s" (include "edgemigrate.fullname" .ctx) .component }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "edgemigrate.componentLabels" -}}
{{ include "edgemigrate.labels" .ctx }}
{{ include "edgemigrate.selectorLabels" . }}
{{- end -}}

{{/* Metadata of a component's pods: its labels with podLabels, and podAnnotations beside
  those the template passes (dict "ctx" $ "component" "webhook" "annotations" (dict ...)). */}}
{{- define "edgemigrate.podMetadata" -}}
labels:
  {{- include "edgemigrate.componentLabels" . | nindent 2 }}
  {{- with .ctx.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with (merge (dict) (.annotations | default dict) .ctx.Values.podAnnotations) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A component's ServiceAccount: serviceAccount.name.<component>, else <fullname>-<component>.
  (dict "ctx" $ "component" "webhook") */}}
{{- define "edgemigrate.serviceAccountName" -}}
{{- index .ctx.Values.serviceAccount.name .component | default (printf "%s-%s" (include "edgemigrate.fullname" .ctx) .component) -}}
{{- end -}}

{{- define "edgemigrate.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Pod-level hardening: every component runs as an unprivileged user. */}}
{{- define "edgemigrate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "edgemigrate.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Placement of a component: its own nodeSelector, tolerations, affinity and
  priorityClassName, each else the chart-wide one. (dict "ctx" $ "c" .Values.webhook) */}}
{{- define "edgemigrate.placement" -}}
{{- with (.c.nodeSelector | default .ctx.Values.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.c.tolerations | default .ctx.Values.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.c.affinity | default .ctx.Values.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.c.priorityClassName | default .ctx.Values.priorityClassName) }}
priorityClassName: {{ . }}
{{- end }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "edgemigrate.publicEndpoint" -}}
{{- .Values.publicEndpoint | default (printf "https://%s.%s.svc:%v" (include "edgemigrate.locator" .) .Release.Namespace .Values.descheduler.service.port) -}}
{{- end -}}

{{/* selfSigned runs one replica: its CA lives in the process. */}}
{{- define "edgemigrate.webhookReplicas" -}}
{{- if eq .Values.webhook.tls.mode "selfSigned" }}1{{ else }}{{ .Values.webhook.replicas }}{{ end -}}
{{- end -}}

{{- define "edgemigrate.webhookSecret" -}}
{{- if eq .Values.webhook.tls.mode "secret" }}{{ .Values.webhook.tls.secret.name }}{{ else }}{{ include "edgemigrate.webhook" . }}-tls{{ end -}}
{{- end -}}

{{/* The Jetson plugin's name in edgemigrate-scheduler (api.SchedulerPluginName). */}}
{{- define "edgemigrate.schedulerPlugin" -}}
JetsonUnifiedMemory
{{- end -}}
