#!/usr/bin/env bash
# Offline schema validation of cachecar's Kubernetes manifests.
#
#   tests/k8s/validate.sh WORK_DIR [FILES...]
#
# Makes (or reuses) a venv in WORK_DIR with a pinned kubernetes-validate, which
# ships the Kubernetes JSON schemas (no cluster, no network at validation
# time), then validates every YAML document of FILES (default: every
# *.yaml/*.yml under deploy/k8s) in strict mode against the pinned Kubernetes
# versions. First it proves it can fail: deliberately broken manifests written
# to WORK_DIR must be rejected. Exits non-zero naming the file and the error.
# Run by ctest as k8s_manifests (tests/k8s.cmake).
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 WORK_DIR [FILES...]" >&2
  exit 2
fi
WORK_DIR=$1
shift
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)

# Kubernetes versions to validate against: 1.29 is the oldest that runs native
# sidecars by default (initContainers[].restartPolicy: Always; the field
# exists from 1.28, behind a feature gate there); 1.37 is the newest schema
# kubernetes-validate 1.37.0 carries (it has 1.25 to 1.37).
K8S_VERSIONS=(1.29.0 1.37.0)

# The pinned install. kubernetes-validate itself plus every dependency, so a
# new upstream release cannot change the result. Change here only: the venv
# is rebuilt whenever this text changes.
REQUIREMENTS='kubernetes-validate==1.37.0
attrs==26.1.0
importlib_resources==7.1.0
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
packaging==26.3
PyYAML==6.0.3
referencing==0.37.0
rpds-py==2026.9.1
typing_extensions==4.16.0'

mkdir -p "$WORK_DIR"
WORK_DIR=$(cd "$WORK_DIR" && pwd)
VENV=$WORK_DIR/venv
PY=$VENV/bin/python
STAMP=$VENV/cachecar-requirements.txt

if [[ -x $PY && -f $STAMP ]] && [[ "$(cat "$STAMP")" == "$REQUIREMENTS" ]] \
    && "$PY" -c 'import kubernetes_validate' 2>/dev/null; then
  echo "== reusing venv $VENV"
else
  echo "== creating venv $VENV"
  PYTHON=${PYTHON:-python3}
  command -v "$PYTHON" >/dev/null || { echo "ERROR: $PYTHON not found" >&2; exit 1; }
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || {
    echo "ERROR: '$PYTHON -m venv' failed (on Debian: apt-get install python3-venv)" >&2
    exit 1
  }
  printf '%s\n' "$REQUIREMENTS" > "$WORK_DIR/requirements.txt"
  "$PY" -m pip install --disable-pip-version-check --no-input --quiet \
    --only-binary=:all: -r "$WORK_DIR/requirements.txt"
  # Written last: an interrupted install is redone on the next run.
  printf '%s' "$REQUIREMENTS" > "$STAMP"
fi

VERSION_ARGS=()
for v in "${K8S_VERSIONS[@]}"; do VERSION_ARGS+=(--k8s-version "$v"); done
validate() { "$PY" "$HERE/validate.py" "${VERSION_ARGS[@]}" "$@"; }

# --- Negative self-check: each broken manifest must fail, naming its file
# and the offending field, or the test cannot be trusted.
BAD=$WORK_DIR/selfcheck
rm -rf "$BAD"
mkdir -p "$BAD"
cat > "$BAD/unknown-field.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec:
      containers:
        - name: app
          image: busybox:1.36
          readinesProbe: {grpc: {port: 50052}}   # typo: readinessProbe
EOF
cat > "$BAD/unknown-kind.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deploymnet
metadata: {name: broken}
EOF
cat > "$BAD/sidecar-fragment.yaml" <<'EOF'
initContainer:
  name: cachecar
  image: ghcr.io/cachecar/cachecar:0.1.0
  restartPolicy: Always
  startupProbe: {grpc: {port: 50052, servce: readiness}}   # typo: service
volumes: []
EOF
# Only type errors, no unknown field: catches a validator that is not strict
# in the other direction (port must be an integer).
cat > "$BAD/wrong-type.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: broken}
spec:
  ports: [{port: "four-four-three"}]
EOF
# Schema-valid but refused by the API server (validate.py's extra rules).
cat > "$BAD/bad-value.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: broken}
spec:
  initContainers:
    - {name: cachecar, image: ghcr.io/cachecar/cachecar:0.1.0, restartPolicy: OnFailure}
  containers:
    - {name: app, image: busybox:1.36}
EOF
declare -A EXPECT=(
  [unknown-field.yaml]=readinesProbe
  [unknown-kind.yaml]=Deploymnet
  [sidecar-fragment.yaml]=servce
  [wrong-type.yaml]=four-four-three
  [bad-value.yaml]=OnFailure
)
echo "== self-check: broken manifests must be rejected"
mapfile -t NAMES < <(printf '%s\n' "${!EXPECT[@]}" | LC_ALL=C sort)
for name in "${NAMES[@]}"; do
  f=$BAD/$name
  if out=$(validate "$f" 2>&1); then
    echo "$out"
    echo "ERROR self-check: $f was accepted; the validator cannot fail" >&2
    exit 1
  fi
  if ! grep -qF "ERROR $f" <<<"$out" || ! grep -qF "${EXPECT[$name]}" <<<"$out"; then
    echo "$out"
    echo "ERROR self-check: $f was rejected without naming the file and '${EXPECT[$name]}'" >&2
    exit 1
  fi
  echo "ok   rejected $name: $(grep -m1 -F "ERROR $f" <<<"$out" | cut -c1-160)"
done

# --- The real manifests.
if [[ $# -gt 0 ]]; then
  FILES=("$@")
else
  mapfile -t FILES < <(find "$ROOT/deploy/k8s" -type f \( -name '*.yaml' -o -name '*.yml' \) | LC_ALL=C sort)
  if [[ ${#FILES[@]} -eq 0 ]]; then
    echo "ERROR: no YAML files under $ROOT/deploy/k8s" >&2
    exit 1
  fi
fi
echo "== validating ${#FILES[@]} file(s) against Kubernetes ${K8S_VERSIONS[*]} (strict)"
for f in "${FILES[@]}"; do echo "     ${f#"$ROOT"/}"; done
validate "${FILES[@]}"
