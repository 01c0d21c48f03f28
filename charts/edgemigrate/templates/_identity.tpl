{{/* The cluster identity (mutual TLS between clusters): its Secret, trust bundle and names. */}}
{{- define "edgemigrate.identityName" -}}{{ include "edgemigrate.fullname" . }}-identity{{- end -}}

{{/* The CA file peers are verified against: the trust ConfigMap when trustedCAs is set. */}}
{{- define "edgemigrate.identityCAFile" -}}
{{- if .Values.identity.trustedCAs }}/etc/edgemigrate/trust/ca.crt{{ else }}/etc/edgemigrate/identity/ca.crt{{ end -}}
{{- end -}}

{{/* The descheduler's identity flags: files of the mounted Secret, or generated (selfSigned). */}}
{{- define "edgemigrate.identityArgs" -}}
{{- if eq .Values.identity.mode "selfSigned" }}
- --self-signed-identity
- --self-signed-identity-dir=/etc/edgemigrate/identity
- --self-signed-msp-id={{ required "identity.mspId is required in selfSigned mode" .Values.identity.mspId }}
{{- $hosts := include "edgemigrate.identityHosts" . | fromYamlArray }}
- --self-signed-hosts={{ rest $hosts | join "," }}
{{- if .Values.identity.trustedCAs }}
- --tls-ca-file=/etc/edgemigrate/trust/ca.crt
{{- end }}
{{- else }}
- --tls-cert-file=/etc/edgemigrate/identity/tls.crt
- --tls-key-file=/etc/edgemigrate/identity/tls.key
- --tls-ca-file={{ include "edgemigrate.identityCAFile" . }}
{{- end }}
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
