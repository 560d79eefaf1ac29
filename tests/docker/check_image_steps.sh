#!/usr/bin/env bash
# Keeps the Dockerfile honest without a Docker engine: runs the image's build
# step (deploy/docker/build.sh) on this machine, checks that every shared
# library the stripped binary links comes from a package the runtime stage
# installs (deploy/docker/runtime-packages.txt) or from the base image, runs
# the result, and checks the Dockerfile's promises (non-root, ENTRYPOINT).
# The quick, tool-free half: image_test.sh builds and runs the real image
# where podman works; this one names the package to add when a new library
# is linked, on any machine.
# Usage: check_image_steps.sh BUILD_DIR WORK_DIR
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build_dir="$1"
work="$2"
rm -rf "$work" && mkdir -p "$work"
failed=0
ok() { echo "ok   - $1"; }
not_ok() { failed=$((failed + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/       /'; }

if bin="$(bash "$root/deploy/docker/build.sh" "$work/cachecar" "$build_dir" 2>"$work/build.log")"; then
  ok "deploy/docker/build.sh builds the image's binary"
else
  not_ok "deploy/docker/build.sh builds the image's binary" "$(tail -20 "$work/build.log")"
  exit 1
fi

wanted="$(grep -v '^#' "$root/deploy/docker/runtime-packages.txt")"
base="libc6 libstdc++6 libgcc-s1"
for lib in $(objdump -p "$bin" | awk '/NEEDED/ {print $2}'); do
  path="$(ldd "$bin" | awk -v l="$lib" '$1 == l {print $3}')"
  pkg=""
  # usrmerge: dpkg may know a library by /lib/... or /usr/lib/..., link or target.
  real="$(readlink -f "$path")"
  for candidate in "$path" "$real" "${real#/usr}" "/usr$path"; do
    pkg="$(dpkg -S "$candidate" 2>/dev/null | head -1 | cut -d: -f1)"
    [ -n "$pkg" ] && break
  done
  if [ -z "$pkg" ]; then
    not_ok "$lib comes from a Debian package" "ldd path: $path"
  elif grep -qx "$pkg" <<<"$wanted" || grep -qw "$pkg" <<<"$base"; then
    ok "$lib ($pkg) is installed by the runtime stage"
  else
    not_ok "$lib ($pkg) is installed by the runtime stage" "add $pkg to deploy/docker/runtime-packages.txt"
  fi
done

if "$bin" version | grep -q '^cachecar '; then ok "the stripped binary runs"; else not_ok "the stripped binary runs"; fi
dockerfile="$root/Dockerfile"
grep -q 'RUN bash deploy/docker/build.sh' "$dockerfile" && ok "Dockerfile builds with deploy/docker/build.sh" \
  || not_ok "Dockerfile builds with deploy/docker/build.sh"
grep -q 'runtime-packages.txt' "$dockerfile" && ok "Dockerfile installs runtime-packages.txt" \
  || not_ok "Dockerfile installs runtime-packages.txt"
grep -q '^USER 65532' "$dockerfile" && ok "the image runs as non-root 65532" || not_ok "the image runs as non-root 65532"
grep -q '^ENTRYPOINT \["cachecar"\]' "$dockerfile" && ok 'ENTRYPOINT ["cachecar"]' || not_ok 'ENTRYPOINT ["cachecar"]'
grep -q '^FROM debian:bookworm-slim' "$dockerfile" && ok "runtime stage is bookworm-slim" || not_ok "runtime stage is bookworm-slim"

[ "$failed" -eq 0 ] && echo "all checks passed" || echo "$failed checks failed"
[ "$failed" -eq 0 ]
