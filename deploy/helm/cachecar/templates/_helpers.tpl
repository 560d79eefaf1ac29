{{/* Names, labels and the image reference shared by the templates. */}}

{{/* "<release>-cachecar", or the release name when it already says cachecar. */}}
{{- define "cachecar.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" -}}
{{- else if contains "cachecar" .Release.Name -}}
{{- .Release.Name | trunc 54 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-cachecar" .Release.Name | trunc 54 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The injector's Deployment, Service, ServiceAccount, ... */}}
{{- define "cachecar.injector" -}}
{{- printf "%s-injector" (include "cachecar.fullname" .) -}}
{{- end -}}

{{- define "cachecar.tlsSecret" -}}
{{- .Values.webhook.tls.secretName | default (printf "%s-tls" (include "cachecar.injector" .)) -}}
{{- end -}}

{{/* The sidecar template's ConfigMap in the release namespace. */}}
{{- define "cachecar.sidecarConfigMap" -}}
{{- printf "%s-sidecar" (include "cachecar.injector" .) -}}
{{- end -}}

{{/* Labels of every object, beside its name and instance. */}}
{{- define "cachecar.labels" -}}
app.kubernetes.io/part-of: cachecar
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "cachecar.injectorSelector" -}}
app.kubernetes.io/name: cachecar-injector
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cachecar.injectorLabels" -}}
{{ include "cachecar.injectorSelector" . }}
{{ include "cachecar.labels" . }}
{{- end -}}

{{/* repository:tag of the injector. */}}
{{- define "cachecar.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* repository:tag of the injected sidecar. */}}
{{- define "cachecar.sidecarImage" -}}
{{- $repo := .Values.sidecar.image.repository | default .Values.image.repository -}}
{{- $tag := .Values.sidecar.image.tag | default .Values.image.tag | default .Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* The Service's DNS names, which the serving certificate must carry. */}}
{{- define "cachecar.dnsNames" -}}
{{- $svc := include "cachecar.injector" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
{{- end -}}

{{/* cachecar.yaml for the app namespaces: config with the probe and metrics
     ports of the sidecar's probes. */}}
{{- define "cachecar.config" -}}
{{- $c := omit .Values.sidecar.config "probe_listen" "metrics_listen" -}}
{{- $_ := set $c "probe_listen" (list (printf "0.0.0.0:%d" (int .Values.sidecar.probePort))) -}}
{{- $_ := set $c "metrics_listen" (printf "0.0.0.0:%d" (int .Values.sidecar.metricsPort)) -}}
{{- toYaml $c -}}
{{- end -}}
