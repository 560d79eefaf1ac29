# Sourced by tests/docker/image_test.sh (and usable by hand): a podman of our
# own under WORK_DIR, isolated from the machine's /etc/containers and from
# anyone else's containers, and what this machine lets it do.
#
#   . tests/docker/podman_env.sh WORK_DIR
#   pm images            # podman with our storage and configuration
#   pm_run_setup || echo "$pm_run_blocker"   # can containers run here?
#
# Storage: vfs under WORK_DIR/storage (no overlay or fuse needed). Builds use
# chroot isolation. No registry is configured and every command runs with
# --pull=never, so nothing is ever fetched: the base images are made locally
# (tests/docker/base_image.sh).
#
# Running containers (pm_run_setup) needs three things this sandbox does not
# give podman as it comes, each handled here and explained in
# $pm_run_notes:
#   - cgroups: crun refuses a cgroup v1/v2 "hybrid" host (a cgroup2 mount
#     at /sys/fs/cgroup/unified that still has controllers), runc cannot
#     run without cgroups, and creating cgroups would put our containers
#     outside the sandbox's own cgroup. So `pm_run` runs podman in a mount
#     namespace of its own where /sys/fs/cgroup/unified is unmounted (crun
#     then sees plain cgroup v1), with --cgroups=disabled: the container
#     stays in the caller's cgroups and nothing is created in the machine's.
#   - rlimits: podman asks for RLIMIT_NOFILE/NPROC above the caller's hard
#     limits, which needs CAP_SYS_RESOURCE (dropped here): the containers get
#     the caller's limits instead.
#   - network: each container gets its own network namespace with only
#     loopback (--network none); the test reaches it with nsenter, so no
#     port on the machine is used.

pm_work="$(mkdir -p "$1" && cd "$1" && pwd)"
mkdir -p "$pm_work/storage" "$pm_work/conf"

cat >"$pm_work/conf/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$pm_work/storage/root"
runroot = "$pm_work/storage/run"
EOF
# No registries: a FROM or run that names an image we did not make fails
# instead of reaching out.
cat >"$pm_work/conf/registries.conf" <<'EOF'
unqualified-search-registries = []
short-name-mode = "disabled"
EOF
hard_nofile="$(ulimit -Hn)"
hard_nproc="$(ulimit -Hu)"
# podman itself caps its children's RLIMIT_NPROC at 32768.
[ "$hard_nproc" = unlimited ] || [ "$hard_nproc" -gt 32768 ] && hard_nproc=32768
[ "$hard_nofile" = unlimited ] && hard_nofile=1048576
cat >"$pm_work/conf/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$hard_nofile:$hard_nofile", "nproc=$hard_nproc:$hard_nproc"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$pm_work/storage/events.log"
runtime = "crun"
tmp_dir = "$pm_work/storage/tmp"
EOF

export CONTAINERS_STORAGE_CONF="$pm_work/conf/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$pm_work/conf/registries.conf"
export CONTAINERS_CONF="$pm_work/conf/containers.conf"
export TMPDIR="${TMPDIR:-/tmp}"

pm() { podman "$@"; }

# The cgroup layout crun sees: unified, legacy or hybrid.
pm_cgroup_mode() {
  local fs
  fs="$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)"
  if [ "$fs" = cgroup2fs ]; then echo unified; return; fi
  if [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] &&
    [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
    echo hybrid
  else
    echo legacy
  fi
}

pm_run_notes=""
pm_run_blocker=""
pm_run_prefix=()

# pm_run ARGS...: podman for commands that start containers (run, exec, ...),
# in the private mount namespace when the host's cgroups need it.
pm_run() { "${pm_run_prefix[@]}" podman "$@"; }

# pm_run_setup IMAGE: decides how containers can run here and proves it with
# /bin/true in IMAGE; on failure $pm_run_blocker says exactly why.
pm_run_setup() {
  local image="$1" mode out
  mode="$(pm_cgroup_mode)"
  case "$mode" in
    hybrid)
      pm_run_notes="cgroups: hybrid v1+v2 host ($(cat /sys/fs/cgroup/unified/cgroup.controllers) on v2); crun refuses it, so podman runs in a mount namespace without the v2 mount, with --cgroups=disabled"
      if ! unshare --mount --propagation private true 2>/dev/null; then
        pm_run_blocker="crun cannot run on this hybrid cgroup host and a private mount namespace cannot be made (unshare --mount: $(unshare --mount true 2>&1))"
        return 1
      fi
      pm_run_prefix=(unshare --mount --propagation private
        bash -c 'umount /sys/fs/cgroup/unified && exec "$@"' pm_run)
      ;;
    *) pm_run_notes="cgroups: $mode; containers run with --cgroups=disabled" ;;
  esac
  pm_run_notes+="; rlimits: nofile=$hard_nofile nproc=$hard_nproc (the caller's)"
  if ! out="$(pm_run run --rm --pull=never --network none --cgroups=disabled --entrypoint /bin/true "$image" 2>&1)"; then
    pm_run_blocker="podman run --entrypoint /bin/true $image failed: $out"
    return 1
  fi
  return 0
}
