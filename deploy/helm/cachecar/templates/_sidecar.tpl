{{/*
The injected sidecar: deploy/k8s/sidecar.yaml with the chart's values. With
the default values it is that file, key for key (tests/helm checks it), so
a change there is carried over here. The injector reads it from the
"<fullname>-injector-sidecar" ConfigMap (--sidecar-template).
*/}}
{{- define "cachecar.sidecar" -}}
{{- $s := .Values.sidecar -}}
{{- $probe := int $s.probePort -}}
{{- $metrics := int $s.metricsPort -}}
{{- $local := $s.localReads.enabled -}}
initContainer:
  name: cachecar
  image: {{ include "cachecar.sidecarImage" . | quote }}
  imagePullPolicy: {{ $s.image.pullPolicy | default .Values.image.pullPolicy }}
  # Native sidecar (Kubernetes >= 1.29).
  restartPolicy: Always
  args:
    - serve
    - --config=/etc/cachecar/cachecar.yaml
    {{- if $local }}
    - --local-read-path=/run/cachecar-local/cache
    {{- end }}
    {{- if ne $probe 50052 }}
    - {{ printf "--probe-listen=0.0.0.0:%d" $probe | quote }}
    {{- end }}
    {{- if ne $metrics 9464 }}
    - {{ printf "--metrics-listen=0.0.0.0:%d" $metrics | quote }}
    {{- end }}
    {{- range $s.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  env:
    # Each replica's name on the sync topic: the pod's name.
    - name: CACHECAR_REPLICA_ID
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
  ports:
    - name: cachecar-probe
      containerPort: {{ $probe }}
      protocol: TCP
    - name: cachecar-prom
      containerPort: {{ $metrics }}
      protocol: TCP
  # probe_listen serves only grpc.health.v1: "readiness" = can serve within
  # its bounds, "liveness" = the process works.
  startupProbe:
    grpc:
      port: {{ $probe }}
      service: readiness
    periodSeconds: 1
    timeoutSeconds: 1
    failureThreshold: 60
  readinessProbe:
    grpc:
      port: {{ $probe }}
      service: readiness
    periodSeconds: 5
    timeoutSeconds: 1
    failureThreshold: 2
  livenessProbe:
    grpc:
      port: {{ $probe }}
      service: liveness
    periodSeconds: 10
    timeoutSeconds: 2
    failureThreshold: 3
  resources:
    {{- toYaml $s.resources | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities:
      drop: ["ALL"]
    seccompProfile:
      type: RuntimeDefault
  volumeMounts:
    - name: cachecar-config
      mountPath: /etc/cachecar/cachecar.yaml
      subPath: cachecar.yaml
      readOnly: true
    - name: cachecar-db
      mountPath: /etc/cachecar/secret
      readOnly: true
    - name: cachecar-run
      mountPath: /run/cachecar
    {{- if $local }}
    # The published cache (read-write here, read-only in the apps).
    - name: cachecar-local
      mountPath: /run/cachecar-local
    {{- end }}
  terminationMessagePolicy: FallbackToLogsOnError
{{- if $local }}
appVolumeMounts:
  - name: cachecar-local
    mountPath: /run/cachecar-local
    readOnly: true
appEnv:
  - name: CACHECAR_LOCAL_READ_PATH
    value: /run/cachecar-local/cache
{{- end }}
volumes:
  - name: cachecar-config
    configMap:
      name: {{ $s.configMapName }}
  - name: cachecar-db
    secret:
      secretName: {{ $s.dsnSecretName }}
      # A memory-store config needs no DSN, so the pod starts without it.
      optional: true
      defaultMode: 0444
  - name: cachecar-run
    emptyDir:
      medium: Memory
      sizeLimit: 1Mi
  {{- if $local }}
  - name: cachecar-local
    emptyDir:
      medium: Memory
      sizeLimit: {{ $s.localReads.sizeLimit }}
  {{- end }}
{{- end -}}
