#!/usr/bin/env bash
# The Helm chart (deploy/helm/cachecar), rendered and used: `helm lint` and
# `helm template` with the default values and with values-custom.yaml (and
# once with cert-manager TLS), every rendered object validated offline
# against the Kubernetes 1.29 and 1.37 schemas (tests/k8s/validate.sh), the
# default sidecar checked to be deploy/k8s/sidecar.yaml key for key; then
# the rendered objects are put to work: the webhook runs with the rendered
# Deployment's own arguments, certificate, key and sidecar template, is
# called over TLS as the API server would (the Service's DNS name, verified
# against the rendered caBundle), and the Pod its patch makes is validated
# and carries the values; the rendered cachecar.yaml passes check-config.
#
#   tests/helm/helm_chart_test.sh CACHECAR K8S_VALIDATE_WORK_DIR WORK_DIR
#
# Helm comes from scripts/install_helm.sh (pinned, `go install`), or $HELM.
set -uo pipefail
CACHECAR="$1"
VALIDATE_WORK="$2"
work="$3"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
chart="$root/deploy/helm/cachecar"
validate="$root/tests/k8s/validate.sh"
rm -rf "$work" && mkdir -p "$work"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done' EXIT
# shellcheck source=../e2e/lib.sh
. "$root/tests/e2e/lib.sh"  # ok, not_ok, check, free_port

if [ -n "${HELM:-}" ]; then :  # a Helm of the caller's
elif ! HELM="$(bash "$root/scripts/install_helm.sh" 2>"$work/install-helm.log")"; then
  not_ok "scripts/install_helm.sh" "$(tail -20 "$work/install-helm.log")"
  echo "$passed passed, $failed failed"; exit 1
fi
echo "     $("$HELM" version --short 2>&1)"

# render NAME RELEASE NAMESPACE [helm args]: helm template into $work/NAME.yaml.
render() {
  local name="$1" release="$2" ns="$3"; shift 3
  if "$HELM" template "$release" "$chart" --namespace "$ns" "$@" >"$work/$name.yaml" 2>"$work/$name.err"; then
    ok "helm template ($name)"
  else
    not_ok "helm template ($name)" "$(cat "$work/$name.err")"
  fi
}
# schema WHAT FILE: FILE is validated (strict, offline, against the Kubernetes
# schemas) by validate_all at the end, in one run of validate.sh for the
# objects and one for the sidecar templates (validate.py compares every
# template with every workload it is given, and ours differ by design).
schema_what=()
schema_file=()
schema() { schema_what+=("$1"); schema_file+=("$2"); }
validate_all() {
  local objects=() fragments=() out i f
  for f in "${schema_file[@]}"; do
    if [[ $f == */sidecar.yaml ]]; then fragments+=("$f"); else objects+=("$f"); fi
  done
  out="$(bash "$validate" "$VALIDATE_WORK" "${objects[@]}" 2>&1; bash "$validate" "$VALIDATE_WORK" "${fragments[@]}" 2>&1)"
  if ! grep -q "document validations passed" <<<"$out"; then
    not_ok "tests/k8s/validate.sh runs" "$(tail -20 <<<"$out")"; return
  fi
  for i in "${!schema_file[@]}"; do
    f="${schema_file[$i]}"
    if grep -qF "ERROR $f" <<<"$out"; then
      not_ok "${schema_what[$i]} pass Kubernetes schema validation" "$(grep -F "ERROR $f" <<<"$out" | head -20)"
    else ok "${schema_what[$i]} pass Kubernetes schema validation"; fi
  done
}
py() { "$VALIDATE_WORK/venv/bin/python" "$here/rendered.py" "$@"; }

# --- lint ----------------------------------------------------------------------------
out="$("$HELM" lint "$chart" --strict 2>&1)" && ok "helm lint --strict (defaults)" || not_ok "helm lint --strict (defaults)" "$out"
out="$("$HELM" lint "$chart" --strict -f "$here/values-custom.yaml" --set webhook.tls.caBundle=eA== 2>&1)" &&
  ok "helm lint --strict (values-custom.yaml)" || not_ok "helm lint --strict (values-custom.yaml)" "$out"

# --- defaults ----------------------------------------------------------------------------
render defaults cachecar cachecar-system
schema "the default rendering's objects" "$work/defaults.yaml"
py extract "$work/defaults.yaml" "$work/defaults" 2>"$work/extract.err" ||
  not_ok "extract the rendered objects" "$(cat "$work/extract.err")"
schema "the default sidecar template" "$work/defaults/sidecar.yaml"
out="$(py same-sidecar "$work/defaults/sidecar.yaml" "$root/deploy/k8s/sidecar.yaml" 2>&1)" &&
  ok "with default values the sidecar is deploy/k8s/sidecar.yaml" ||
  not_ok "with default values the sidecar is deploy/k8s/sidecar.yaml (carry the change over to templates/_sidecar.tpl)" "$out"
out="$(py same-injector "$work/defaults.yaml" "$root/deploy/k8s/injector" 2>&1)" &&
  ok "and the injector matches deploy/k8s/injector/ (webhook rules, probes, hardening)" ||
  not_ok "and the injector matches deploy/k8s/injector/" "$out"
check "objects carry the manifests' names" "$(py names "$work/defaults.yaml")" \
  "ConfigMap/cachecar-injector-sidecar Deployment/cachecar-injector MutatingWebhookConfiguration/cachecar-injector PodDisruptionBudget/cachecar-injector Secret/cachecar-injector-tls Service/cachecar-injector ServiceAccount/cachecar-injector"

# run_webhook NAME: starts the webhook with the rendered Deployment's args, the
# rendered certificate and key and the rendered sidecar template (paths
# mapped from the pod's mounts to $work/NAME), on a free loopback port.
run_webhook() {
  local dir="$work/$1" port args
  port="$(free_port)"
  mapfile -t args < <(py webhook-args "$dir" "127.0.0.1:$port")
  "$CACHECAR" "${args[@]}" >"$dir/webhook.log" 2>&1 &
  pids+=("$!")
  echo "$port"
}
# call_webhook NAME PORT HOST: POST the sample AdmissionReview to HOST:PORT
# (resolved to 127.0.0.1), verifying the certificate against the rendered
# caBundle; writes $work/NAME/pod.json, the Pod the patch makes.
call_webhook() {
  local dir="$work/$1" port="$2" host="$3" url out
  url="https://$host:$port"
  for _ in $(seq 1 100); do
    curl -s --cacert "$dir/ca.crt" --resolve "$host:$port:127.0.0.1" "$url/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  out="$(curl -sS --cacert "$dir/ca.crt" --resolve "$host:$port:127.0.0.1" "$url/healthz" 2>&1)"
  check "$1: the rendered certificate is valid for $host and signed by the rendered caBundle" "$out" "ok"
  out="$(curl -sS --cacert "$dir/ca.crt" --resolve "$host:$port:127.0.0.1" -H 'Content-Type: application/json' \
    --data-binary @"$root/tests/inject/pod-review.json" "$url/mutate" 2>&1)"
  check "$1: the webhook answers with a JSONPatch" "$out" '"patchType":"JSONPatch"'
  python3 -c 'import json,sys,base64; r=json.loads(sys.argv[1]); print(base64.b64decode(r["response"]["patch"]).decode())' \
    "$out" >"$dir/patch.json" 2>/dev/null
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["request"]["object"]; d["metadata"]["name"]="web-x"; print(json.dumps(d))' \
    "$root/tests/inject/pod-review.json" >"$dir/pod-in.json"
  if python3 "$root/tests/inject/apply_patch.py" "$dir/pod-in.json" "$dir/patch.json" >"$dir/pod.json" 2>"$dir/apply.err"; then
    ok "$1: the patch applies"; else not_ok "$1: the patch applies" "$(cat "$dir/apply.err" "$dir/webhook.log")"; fi
}

port="$(run_webhook defaults)"
call_webhook defaults "$port" cachecar-injector.cachecar-system.svc
schema "defaults: the injected Pod" "$work/defaults/pod.json"
check "defaults: the sidecar runs the chart's image" "$(py sidecar-of "$work/defaults/pod.json" image)" "ghcr.io/cachecar/cachecar:0.1.0"

# --- a non-trivial install -------------------------------------------------------------
# TLS given as files (mode secret); caBundle as PEM, which the chart encodes.
tls="$work/custom-tls"
mkdir -p "$tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=shop-test-ca" \
  -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=shop-cachecar-injector.infra.svc" \
  -keyout "$tls/tls.key" -out "$tls/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:shop-cachecar-injector.infra.svc\nextendedKeyUsage=serverAuth\n' >"$tls/ext.cnf"
openssl x509 -req -in "$tls/tls.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial -days 1 \
  -extfile "$tls/ext.cnf" -out "$tls/tls.crt" 2>/dev/null
render custom shop infra -f "$here/values-custom.yaml" --set-file webhook.tls.cert="$tls/tls.crt" \
  --set-file webhook.tls.key="$tls/tls.key" --set-file webhook.tls.caBundle="$tls/ca.crt"
schema "the custom rendering's objects" "$work/custom.yaml"
py extract "$work/custom.yaml" "$work/custom" 2>"$work/extract.err" ||
  not_ok "extract the rendered objects" "$(cat "$work/extract.err")"
schema "the custom sidecar template" "$work/custom/sidecar.yaml"
check "custom: names follow the release" "$(py names "$work/custom.yaml")" \
  "ConfigMap/shop-cache ConfigMap/shop-cache ConfigMap/shop-cachecar-injector-sidecar Deployment/shop-cachecar-injector MutatingWebhookConfiguration/shop-cachecar-injector Secret/shop-webhook-tls Service/shop-cachecar-injector ServiceAccount/shop-cachecar-injector"
check "custom: the app ConfigMaps go to the listed namespaces" "$(py namespaces "$work/custom.yaml" ConfigMap/shop-cache)" "shop-a shop-b"
check "custom: the injector runs the chart's image" "$(py injector "$work/custom.yaml" image)" "registry.example.com/platform/cachecar:1.2.3"
check "custom: on the chart's port" "$(py injector "$work/custom.yaml" args)" "--webhook-listen=0.0.0.0:9443"
check "custom: the webhook registration carries the values" "$(py webhook-config "$work/custom.yaml")" \
  "failurePolicy=Fail timeoutSeconds=3 service=infra/shop-cachecar-injector objectSelector=True"
cfgs="$work/custom/cachecar.yaml"
echo "host=db dbname=app user=cachecar password=s3cret" >"$work/custom/dsn"
out="$("$CACHECAR" check-config --config "$cfgs" --postgres-dsn-file "$work/custom/dsn" 2>&1)"
check "custom: the rendered cachecar.yaml passes check-config" "$out" "config OK"
check "custom: its probe_listen follows sidecar.probePort" "$out" "probe_listen=0.0.0.0:6052"
check "custom: its metrics_listen follows sidecar.metricsPort" "$out" "metrics_listen=0.0.0.0:6464"

port="$(run_webhook custom)"
call_webhook custom "$port" shop-cachecar-injector.infra.svc
schema "custom: the injected Pod" "$work/custom/pod.json"
check "custom: the sidecar's image" "$(py sidecar-of "$work/custom/pod.json" image)" "registry.example.com/platform/cachecar:1.2.3-debug"
# (pod-review.json's cachecar.io/port annotation appends the --listen pair.)
check "custom: its flags (local reads, ports, extraArgs, the port annotation)" "$(py sidecar-of "$work/custom/pod.json" args)" \
  "serve --config=/etc/cachecar/cachecar.yaml --local-read-path=/run/cachecar-local/cache --probe-listen=0.0.0.0:6052 --metrics-listen=0.0.0.0:6464 --log-level=debug --workers=8 --listen=127.0.0.1:6000 --listen=unix:///run/cachecar/cachecar.sock"
check "custom: the published cache's volume, and the app's read-only mount and path" \
  "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["spec"]; v={v["name"]: v for v in s["volumes"]}["cachecar-local"]["emptyDir"]; a=s["containers"][0]; print(v["medium"], v["sizeLimit"], [m for m in a["volumeMounts"] if m["name"]=="cachecar-local"][0].get("readOnly"), [e["value"] for e in a["env"] if e["name"]=="CACHECAR_LOCAL_READ_PATH"][0])' "$work/custom/pod.json" 2>&1)" \
  "Memory 1536Mi True /run/cachecar-local/cache"
check "custom: its probes use the probe port" "$(py sidecar-of "$work/custom/pod.json" probes)" "6052 6052 6052"
check "custom: its resources" "$(py sidecar-of "$work/custom/pod.json" resources)" \
  '{"limits": {"memory": "1536Mi"}, "requests": {"cpu": "250m", "memory": "1Gi"}}'
check "custom: its ConfigMap and Secret" "$(py sidecar-of "$work/custom/pod.json" volumes)" "shop-cache shop-cache-db"
# The CLI takes the same template.
if "$CACHECAR" inject --sidecar-template "$work/custom/sidecar.yaml" -f "$root/tests/inject/app.yaml" \
  >"$work/custom/injected.yaml" 2>"$work/custom/inject.err"; then
  ok "custom: cachecar inject --sidecar-template takes the rendered sidecar"
else not_ok "custom: cachecar inject --sidecar-template takes the rendered sidecar" "$(cat "$work/custom/inject.err")"; fi
schema "custom: manifests injected with it" "$work/custom/injected.yaml"
out="$("$CACHECAR" webhook --sidecar-template "$work/custom.yaml" --webhook-tls-cert x --webhook-tls-key y 2>&1)"
check "a file that is not a sidecar template is refused at start" "$out" "initContainer is missing"

# --- cert-manager -------------------------------------------------------------------------
render certmanager cachecar cachecar-system --set webhook.tls.mode=certManager
py split-crds "$work/certmanager.yaml" "$work/certmanager-core.yaml" "$work/certmanager-crds.yaml"
schema "the cert-manager rendering's core objects" "$work/certmanager-core.yaml"
out="$(py cert-manager "$work/certmanager.yaml" 2>&1)" &&
  ok "cert-manager: Issuer and Certificate for the Service's DNS names into the mounted Secret, CA injected" ||
  not_ok "cert-manager: Issuer and Certificate for the Service's DNS names into the mounted Secret, CA injected" "$out"

# --- values that must be refused ------------------------------------------------------------
refused() {
  local what="$1" want="$2"; shift 2
  if out="$("$HELM" template x "$chart" "$@" 2>&1)"; then not_ok "refused: $what" "rendered"
  else check "refused: $what" "$out" "$want"; fi
}
refused "mode secret without caBundle" "webhook.tls.caBundle is required" --set webhook.tls.mode=secret
refused "cert without key" "webhook.tls.cert and webhook.tls.key go together" \
  --set webhook.tls.mode=secret --set webhook.tls.caBundle=eA== --set webhook.tls.cert=x
refused "an unknown TLS mode" "/webhook/tls/mode" --set webhook.tls.mode=manual
refused "a misspelt key" "probeport" --set sidecar.probeport=1
refused "a port that is not a number" "probePort" --set-string sidecar.probePort=http
refused "a quantity that is not one" "resources" --set sidecar.resources.limits.memory=lots
refused "Kubernetes older than 1.29 (no native sidecars)" "kubeVersion: >=1.29.0-0" --kube-version 1.28.0

validate_all
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
