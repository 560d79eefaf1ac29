#!/usr/bin/env bash
# Installs Helm at a pinned version with `go install` into .tools/bin (or
# $GOBIN) and prints its path; tests/helm/helm_chart_test.sh renders the
# chart with it. Needs Go >= 1.21 (the machine's; Debian bookworm's
# golang-go is too old). The first run compiles Helm (about 5 CPU-minutes; the Go
# build cache makes later ones quick). Idempotent: an existing binary of the
# right version is reused.
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# The Kubernetes version Helm assumes without a cluster (`helm template`,
# `helm lint`): its official builds set it from their k8s.io/client-go
# (v0.37 for v3.22.0 -> 1.37); a plain `go install` would say 1.20.
HELM_K8S_VERSION="${HELM_K8S_VERSION:-1.37}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin_dir="${GOBIN:-$root/.tools/bin}"
mkdir -p "$bin_dir"
target="$bin_dir/helm"
stamp="$HELM_VERSION k8s-$HELM_K8S_VERSION"

if [ -x "$target" ] && [ "$(cat "$target.version" 2>/dev/null)" = "$stamp" ]; then
  echo "$target"
  exit 0
fi

# Go >= 1.21 fetches the newer toolchain Helm's go.mod asks for, itself
# a module from the Go module proxy; older Go (Debian bookworm has 1.19)
# cannot build this Helm.
if ! go_version="$(go env GOVERSION 2>/dev/null)"; then
  echo "install_helm.sh: Go is not installed (needs Go >= 1.21)" >&2
  exit 1
fi
minor_go="$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"$go_version")"
if ! [ "$minor_go" -ge 21 ] 2>/dev/null; then
  echo "install_helm.sh: $go_version is too old to build Helm $HELM_VERSION (needs Go >= 1.21)" >&2
  exit 1
fi
major="${HELM_K8S_VERSION%%.*}"
minor="${HELM_K8S_VERSION#*.}"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=$major -X $pkg.k8sVersionMinor=$minor"
done
CGO_ENABLED=0 GOBIN="$bin_dir" GOFLAGS=-mod=mod go install -trimpath -ldflags "$ldflags" \
  "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
echo "$stamp" > "$target.version"
echo "$target"
