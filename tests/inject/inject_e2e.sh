#!/usr/bin/env bash
# `cachecar inject` and `cachecar webhook` end to end: inject the sample
# manifests, check idempotence and that untouched documents are byte for
# byte the same, validate the output against the Kubernetes schemas; then run
# the webhook over real TLS (openssl-made CA and certificate), POST a real
# AdmissionReview with curl, apply the returned JSONPatch and validate the
# resulting Pod. Usage: inject_e2e.sh CACHECAR K8S_VALIDATE_WORK_DIR WORK_DIR
set -uo pipefail
CACHECAR="$1"
VALIDATE_WORK="$2"
work="$3"
here="$(cd "$(dirname "$0")" && pwd)"
validate="$here/../k8s/validate.sh"
rm -rf "$work" && mkdir -p "$work"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done' EXIT

# shellcheck source=../e2e/lib.sh
. "$here/../e2e/lib.sh"  # ok, not_ok, check, free_port

# --- cachecar inject ---------------------------------------------------------
if "$CACHECAR" inject -f "$here/app.yaml" >"$work/once.yaml" 2>"$work/once.err"; then
  ok "inject succeeds"; else not_ok "inject succeeds" "$(cat "$work/once.err")"; fi
check "inject reports the Deployment" "$(cat "$work/once.err")" "deployment/web: injected"
check "inject reports the CronJob" "$(cat "$work/once.err")" "cronjob/report: injected"
"$CACHECAR" inject -f - <"$work/once.yaml" >"$work/twice.yaml" 2>"$work/twice.err"
if cmp -s "$work/once.yaml" "$work/twice.yaml"; then ok "injecting twice changes nothing"
else not_ok "injecting twice changes nothing" "$(diff "$work/once.yaml" "$work/twice.yaml" | head -20)"; fi
check "the second pass says so" "$(cat "$work/twice.err")" "deployment/web: already has the cachecar sidecar"
# Documents without the annotation come out byte for byte.
python3 - "$here/app.yaml" "$work/once.yaml" <<'PY' && ok "non-annotated documents are byte for byte the same" || not_ok "non-annotated documents are byte for byte the same"
import re, sys
split = lambda t: re.split(r"(?m)^---[ \t]*\n", t)
a, b = split(open(sys.argv[1]).read()), split(open(sys.argv[2]).read())
assert len(a) == len(b), (len(a), len(b))
untouched = [x for x in a if "cachecar.io/inject" not in x]
assert len(untouched) == 3 and all(x in b for x in untouched)
PY
out="$("$CACHECAR" inject -f /nonexistent.yaml 2>&1)"; rc=$?
[ "$rc" -ne 0 ] && ok "a missing file fails" || not_ok "a missing file fails"
printf 'kind: Deployment\nspec: {template: {metadata: {annotations: {cachecar.io/inject: "true", cachecar.io/port: "http"}}, spec: {containers: []}}}\n' >"$work/bad.yaml"
out="$("$CACHECAR" inject -f "$work/bad.yaml" 2>&1)"
check "a bad override is named" "$out" 'cachecar.io/port "http" is not a port'
if out="$(bash "$validate" "$VALIDATE_WORK" "$work/once.yaml" 2>&1)"; then ok "injected manifests pass Kubernetes schema validation"
else not_ok "injected manifests pass Kubernetes schema validation" "$(tail -20 <<<"$out")"; fi

# --- the example ConfigMap is a config cachecar accepts --------------------------
"$VALIDATE_WORK/venv/bin/python" - "$here/../../deploy/k8s/example-app.yaml" "$work/cachecar.yaml" <<'PY'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "cachecar":
        open(sys.argv[2], "w").write(doc["data"]["cachecar.yaml"])
PY
echo "host=db dbname=app user=cachecar password=s3cret" >"$work/dsn"
out="$("$CACHECAR" check-config --config "$work/cachecar.yaml" --postgres-dsn-file "$work/dsn" 2>&1)"
check "the example ConfigMap's cachecar.yaml loads" "$out" "config OK"
check "and probes and metrics listen on the pod IP" "$out" "probe_listen=0.0.0.0:50052"
if grep -q s3cret <<<"$out"; then not_ok "check-config redacts the DSN password" "$out"; else ok "check-config redacts the DSN password"; fi

# --- cachecar webhook over TLS ---------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=cachecar-test-ca" \
  -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$work/tls.key" \
  -out "$work/tls.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$work/san.ext"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
  -days 1 -extfile "$work/san.ext" -out "$work/tls.crt" 2>/dev/null
port="$(free_port)"
"$CACHECAR" webhook --webhook-listen "127.0.0.1:$port" --webhook-tls-cert "$work/tls.crt" \
  --webhook-tls-key "$work/tls.key" >"$work/webhook.log" 2>&1 &
pids+=("$!")
url="https://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -s --cacert "$work/ca.crt" "$url/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
check "webhook /healthz over TLS" "$(curl -s --cacert "$work/ca.crt" "$url/healthz" 2>&1)" "ok"
out="$(curl -s --cacert "$work/ca.crt" -H 'Content-Type: application/json' \
  --data-binary @"$here/pod-review.json" "$url/mutate" 2>&1)"
check "AdmissionReview answered for the request's uid" "$out" '"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true'
check "with a JSONPatch" "$out" '"patchType":"JSONPatch"'
python3 -c 'import json,sys,base64; r=json.loads(sys.argv[1]); print(base64.b64decode(r["response"]["patch"]).decode())' "$out" >"$work/patch.json" 2>"$work/patch.err"
python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["request"]["object"]))' "$here/pod-review.json" >"$work/pod.json"
if python3 "$here/apply_patch.py" "$work/pod.json" "$work/patch.json" >"$work/patched-pod.yaml" 2>"$work/apply.err"; then
  ok "the patch applies to the Pod"; else not_ok "the patch applies to the Pod" "$(cat "$work/apply.err" "$work/patch.err")"; fi
patched="$(cat "$work/patched-pod.yaml")"
check "the patched Pod runs cachecar first" "$(python3 -c 'import json,sys; print([c["name"] for c in json.load(open(sys.argv[1]))["spec"]["initContainers"]])' "$work/patched-pod.yaml")" "['cachecar', 'migrate']"
check "the port annotation became a listen flag" "$patched" '"--listen=127.0.0.1:6000"'
check "and the pod's unix socket stays" "$patched" '"--listen=unix:///run/cachecar/cachecar.sock"'
check "every app container mounts the published cache read-only" "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["spec"]; print(all({"name":"cachecar-local","mountPath":"/run/cachecar-local","readOnly":True} in c.get("volumeMounts",[]) for c in s["containers"]))' "$work/patched-pod.yaml")" "True"
# generateName pods have no name; give it one so the schema check sees a full Pod.
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["metadata"]["name"]="web-x"; json.dump(d,open(sys.argv[1],"w"))' "$work/patched-pod.yaml"
if out="$(bash "$validate" "$VALIDATE_WORK" "$work/patched-pod.yaml" 2>&1)"; then ok "the patched Pod passes Kubernetes schema validation"
else not_ok "the patched Pod passes Kubernetes schema validation" "$(tail -20 <<<"$out")"; fi
plain="$(sed 's/"cachecar.io\/inject":"true",//' "$here/pod-review.json")"
out="$(curl -s --cacert "$work/ca.crt" --data-binary "$plain" "$url/mutate" 2>&1)"
if grep -q '"allowed":true' <<<"$out" && ! grep -q patch <<<"$out"; then ok "a pod without the annotation is admitted unchanged"
else not_ok "a pod without the annotation is admitted unchanged" "$out"; fi
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca.crt" --data-binary 'not json' "$url/mutate")"
check "a body that is not an AdmissionReview is 400" "$code" "400"
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca.crt" "$url/mutate")"
check "GET /mutate is 405" "$code" "405"
out="$(curl -s "http://127.0.0.1:$port/healthz" 2>&1; echo "rc=$?")"
if ! grep -q '^ok' <<<"$out"; then ok "plain HTTP is not served"; else not_ok "plain HTTP is not served" "$out"; fi
# Certificate rotation: new key and certificate in the same files; the next
# connection must be served with them, without a restart.
serial() { openssl s_client -connect "127.0.0.1:$port" -CAfile "$work/ca.crt" </dev/null 2>/dev/null |
  openssl x509 -noout -serial 2>/dev/null; }
before="$(serial)"
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$work/tls2.key" \
  -out "$work/tls2.csr" 2>/dev/null
openssl x509 -req -in "$work/tls2.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
  -days 1 -extfile "$work/san.ext" -out "$work/tls2.crt" 2>/dev/null
mv "$work/tls2.key" "$work/tls.key"
mv "$work/tls2.crt" "$work/tls.crt"
after="$(serial)"
if [ -n "$before" ] && [ -n "$after" ] && [ "$before" != "$after" ]; then
  ok "a rotated certificate is served without a restart ($before -> $after)"
else not_ok "a rotated certificate is served without a restart" "before=$before after=$after"; fi
check "and requests still work" "$(curl -s --cacert "$work/ca.crt" "$url/healthz" 2>&1)" "ok"
kill -TERM "${pids[0]}"; wait "${pids[0]}"; rc=$?
[ "$rc" -eq 0 ] && ok "webhook: SIGTERM exits 0" || not_ok "webhook: SIGTERM exits 0" "exit $rc"
out="$("$CACHECAR" webhook --webhook-listen "127.0.0.1:$port" 2>&1)"
check "webhook without a certificate explains" "$out" "HTTPS only"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
