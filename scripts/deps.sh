#!/usr/bin/env bash
# Installs every Debian package that building and testing cachecar needs,
# plus any package named as an argument (bench/deps.sh adds its peers).
# With --build first, only what building the cachecar binary needs (the
# container image's build stage): the list below less test_only.
# Idempotent: packages already present are skipped, so a second run is quick.
set -euo pipefail
build_only=0
[ "${1:-}" = "--build" ] && { build_only=1; shift; }

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang libclang-rt-14-dev clang-format-14 clang-tidy-14
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libfmt-dev libyaml-cpp-dev nlohmann-json3-dev
  librdkafka-dev libpqxx-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  postgresql-15 postgresql-client-15 pgbouncer python3 python3-venv
  libssl-dev openssl curl
  openjdk-17-jre-headless maven kcat
  podman crun debootstrap

  "$@"
)

# Needed by the tests, the checkers and the image test, not by the build.
test_only=(
  git clang libclang-rt-14-dev clang-format-14 clang-tidy-14
  postgresql-15 postgresql-client-15 pgbouncer python3 python3-venv openssl curl
  openjdk-17-jre-headless maven kcat podman crun debootstrap
)
if [ "$build_only" -eq 1 ]; then
  kept=()
  for p in "${packages[@]}"; do
    [[ " ${test_only[*]} " == *" $p "* ]] || kept+=("$p")
  done
  packages=("${kept[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
