#!/usr/bin/env bash
# The container image, built and run: makes the Dockerfile's base images
# locally (debootstrap; no registry is reachable), builds the repo's
# Dockerfile with podman (vfs storage, chroot isolation), checks the image's
# config and filesystem, then runs it on its embedded default (memory store,
# CMD serve --listen 127.0.0.1:50051) as Kubernetes would run the sidecar
# (read-only root filesystem, no capabilities) and calls it with grpcurl.
#
#   tests/docker/image_test.sh WORK_DIR GRPCURL
#
# Exit 0: all passed. Exit 77 (ctest: skipped), with the reason: podman,
# debootstrap or crun is missing, or containers cannot run on this machine
# (the build checks still ran and passed). Anything else: a check failed.
# WORK_DIR keeps the storage and podman's layer cache, so a second run with
# an unchanged tree reuses the build; the base images are cached under
# ~/.cache/cachecar (tests/docker/base_image.sh).
set -uo pipefail
work="$1"
GRPCURL="$2"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
image=localhost/cachecar:image-test
name="cachecar-image-test-$$"
start=$SECONDS

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   - $1"; }
not_ok() { failed=$((failed + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/       /'; }
check() { if grep -qF -- "$3" <<<"$2"; then ok "$1"; else not_ok "$1" "wanted: $3
got: $2"; fi; }
summary() { echo "image test: $((SECONDS - start)) s"; echo "$passed passed, $failed failed"; }
skip() { echo "SKIPPED: $1"; summary; exit 77; }
give_up() { summary; exit 1; }

for tool in podman debootstrap crun nsenter unshare; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/deps.sh installs podman, crun and debootstrap)"
done
[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, and podman with vfs storage as root)"
[ -x "$GRPCURL" ] || { not_ok "grpcurl at $GRPCURL (scripts/install_grpcurl.sh)"; give_up; }

# shellcheck source=podman_env.sh
. "$here/podman_env.sh" "$work"
# shellcheck source=base_image.sh
. "$here/base_image.sh"
mnt=""
cleanup() {
  pm_run rm -f -t 0 "$name" >/dev/null 2>&1
  [ -n "$mnt" ] && pm image unmount "$image" >/dev/null 2>&1
}
trap cleanup EXIT

# --- base images and build ---------------------------------------------------
# IMAGE_TEST_USE=NAME: test an image already in WORK_DIR's storage instead
# (while working on this script; the build is the slow part).
if [ -n "${IMAGE_TEST_USE:-}" ]; then
  image="$IMAGE_TEST_USE"
  echo "     testing $image as it is (IMAGE_TEST_USE): no base images, no build"
else
t0=$SECONDS
if base_images 2>"$work/base.log"; then
  ok "base images debian:bookworm and debian:bookworm-slim made locally ($((SECONDS - t0)) s)"
else
  not_ok "base images made locally" "$(tail -20 "$work/base.log")"; give_up
fi
t0=$SECONDS
if pm build --isolation chroot --network host --pull=never --layers -t "$image" \
  -f "$root/Dockerfile" "$root" >"$work/build.log" 2>&1; then
  ok "podman build of the Dockerfile ($((SECONDS - t0)) s)"
else
  not_ok "podman build of the Dockerfile" "$(tail -30 "$work/build.log")"; give_up
fi
# Keep the base images and the layers this build made or reused (its cache
# for the next run); drop the rest, which an earlier build of another tree
# left (vfs copies every layer whole: a few GB each).
keep="$(grep -o -e '--> [0-9a-f]\{10,\}' -e '--> Using cache [0-9a-f]\{10,\}' "$work/build.log" | grep -o '[0-9a-f]*$')"
keep+=" $(pm images -q "$image") $(pm images -q docker.io/library/debian)"
for _ in 1 2 3; do
  for id in $(pm images -a -q --no-trunc | sed 's/^sha256://'); do
    grep -q "^${id:0:10}" <<<"$(tr ' ' '\n' <<<"$keep" | sed 's/^sha256://')" || pm rmi "$id" >/dev/null 2>&1
  done
done
fi

# --- the image's config --------------------------------------------------------
cfg() { pm image inspect --format "$1" "$image" 2>&1; }
check "USER is 65532:65532" "$(cfg '{{.Config.User}}')" "65532:65532"
check 'ENTRYPOINT ["cachecar"]' "$(cfg '{{json .Config.Entrypoint}}')" '["cachecar"]'
check "CMD serves on loopback 50051" "$(cfg '{{json .Config.Cmd}}')" '["serve","--listen","127.0.0.1:50051"]'
ports="$(cfg '{{json .Config.ExposedPorts}}')"
for p in 50051 50052 9464; do check "EXPOSE $p" "$ports" "\"$p/tcp\""; done
size="$(cfg '{{.Size}}')"
echo "     image size: $((size / 1000000)) MB"

# --- its filesystem, without running a container ----------------------------------
if mnt="$(pm image mount "$image" 2>"$work/mount.err")" && [ -d "$mnt" ]; then
  ok "image mounts"
  check "cachecar user is uid/gid 65532" "$(grep '^cachecar:' "$mnt/etc/passwd")" "cachecar:x:65532:65532:"
  if [ -x "$mnt/usr/local/bin/cachecar" ]; then ok "/usr/local/bin/cachecar is there"; else not_ok "/usr/local/bin/cachecar is there"; fi
  if readelf -S "$mnt/usr/local/bin/cachecar" | grep -q -e '\.symtab' -e '\.debug_info'; then
    not_ok "the binary is stripped"; else ok "the binary is stripped"; fi
  leftovers=""
  for f in usr/bin/g++ usr/bin/cmake usr/bin/ninja usr/include/grpcpp src tmp/runtime-packages.txt; do
    [ -e "$mnt/$f" ] && leftovers+=" /$f"
  done
  [ -z "$leftovers" ] && ok "no build tools or sources in the runtime image" || not_ok "no build tools or sources in the runtime image" "$leftovers"
  [ -z "$(ls -A "$mnt/var/lib/apt/lists" 2>/dev/null | grep -v -e '^lock$' -e '^partial$')" ] &&
    ok "apt lists removed" || not_ok "apt lists removed"
  # Every library resolves inside the image (the runtime package list is complete).
  out="$(chroot --userspec=65532:65532 "$mnt" /usr/local/bin/cachecar version 2>&1)"
  check "cachecar runs on the image's own libraries, as 65532" "$out" "cachecar "
  pm image unmount "$image" >/dev/null 2>&1
  mnt=""
else
  not_ok "image mounts" "$(cat "$work/mount.err")"
fi

[ "$failed" -eq 0 ] || give_up

# --- run it ------------------------------------------------------------------------
if ! pm_run_setup "$image" 2>"$work/run-setup.err"; then
  echo "     $pm_run_notes"
  skip "containers cannot run on this machine: $pm_run_blocker"
fi
echo "     $pm_run_notes"
# As the injected sidecar runs (deploy/k8s/sidecar.yaml): read-only root
# filesystem (no tmpfs either), no capabilities, no privilege escalation,
# the image's own USER; its own network namespace with only loopback.
if ! pm_run run -d --name "$name" --pull=never --network none --cgroups=disabled \
  --read-only --read-only-tmpfs=false --cap-drop ALL --security-opt no-new-privileges \
  "$image" >"$work/run.out" 2>&1; then
  not_ok "podman run the image" "$(cat "$work/run.out")"; give_up
fi
pid="$(pm_run inspect --format '{{.State.Pid}}' "$name" 2>/dev/null)"
[ -n "$pid" ] && [ "$pid" != 0 ] && ok "the container runs (pid $pid)" || { not_ok "the container runs" "$(pm_run logs "$name" 2>&1 | tail -20)"; give_up; }
# grpcurl from this machine, inside the container's network namespace.
gc() { nsenter -t "$pid" -n "$GRPCURL" -plaintext "$@" 127.0.0.1:50051 "${rpc[@]}" 2>&1; }
serving=0
for _ in $(seq 1 100); do
  rpc=(grpc.health.v1.Health/Check)
  if gc -max-time 1 | grep -q SERVING; then serving=1; break; fi
  sleep 0.1
done
[ "$serving" -eq 1 ] && ok "health answers SERVING on 127.0.0.1:50051" || not_ok "health answers SERVING" "$(pm_run logs "$name" 2>&1 | tail -20)"

status="$(cat "/proc/$pid/status")"
check "the process runs as uid 65532" "$(grep '^Uid:' <<<"$status" | tr -s '\t ' ' ')" "Uid: 65532 65532 65532 65532"
check "and gid 65532" "$(grep '^Gid:' <<<"$status" | tr -s '\t ' ' ')" "Gid: 65532 65532 65532 65532"
check "with no capabilities" "$(grep '^CapEff:' <<<"$status")" "0000000000000000"
rootmount="$(awk '$5 == "/" {print $6}' "/proc/$pid/mountinfo")"
check "its root filesystem is mounted read-only" "$rootmount" "ro"
out="$(pm_run exec "$name" sh -c 'touch /probe; touch /tmp/probe' 2>&1)"
check "writing to / is refused" "$out" "touch: cannot touch '/probe': Read-only file system"
check "and to /tmp" "$out" "touch: cannot touch '/tmp/probe': Read-only file system"

rpc=(list); check "reflection lists cachecar.v1.Cache" "$(gc)" "cachecar.v1.Cache"
rpc=(cachecar.v1.Cache/Put); out="$(gc -d '{"key":"image:1","value":"aW1hZ2U="}')"
check "Put" "$out" '"version"'
rpc=(cachecar.v1.Cache/Get); out="$(gc -d '{"key":"image:1"}')"
check "Get returns the value" "$out" '"value": "aW1hZ2U="'
logs="$(pm_run logs "$name" 2>&1)"
check "it says it serves the memory store" "$logs" "store=memory"

t0=$SECONDS
pm_run stop -t 20 "$name" >/dev/null 2>&1
code="$(pm_run inspect --format '{{.State.ExitCode}}' "$name" 2>&1)"
check "SIGTERM stops it with exit code 0 ($((SECONDS - t0)) s)" "$code" "0"

summary
[ "$failed" -eq 0 ]
