{{/* The cluster identity (mutual TLS between clusters): its Secret, trust bundle and names. */}}
{{- define "edgemigrate.identityName" -}}{{ include "edgemigrate.fullname" . }}-identity{{- end -}}

{{/* The CA file peers are verified against: the trust ConfigMap when trustedCAs is set. */}}
{{- define "edgemigrate.identityCAFile" -}}
{{- if .Values.identity.trustedCAs }}/etc/edgemigrate/trust/ca.crt{{ else }}/etc/edgemigrate/identity/ca.crt{{ end -}}
{{- end -}}

{{/* The certificate's hosts: the public endpoint's, the locator Service's, identity.hosts. */}}
{{- define "edgemigrate.identityHosts" -}}
{{- $hosts := list (urlParse (include "edgemigrate.publicEndpoint" .)).host -}}
{{- $locator := include "edgemigrate.locator" . -}}
{{- $hosts = append $hosts (printf "%s.%s.svc" $locator .Release.Namespace) -}}
{{- $hosts = append $hosts (printf "%s.%s.svc.cluster.local" $locator .Release.Namespace) -}}
{{- range $h := concat $hosts .Values.identity.hosts }}
{{- /* strip a port; bracketed IPv6 keeps its colons */ -}}
{{- $h = regexReplaceAll "^\\[([^]]+)\\](:[0-9]+)?$" $h "${1}" }}
{{- $h = regexReplaceAll "^([^:]+):[0-9]+$" $h "${1}" }}
- {{ $h }}
{{- end }}
{{- end -}}
