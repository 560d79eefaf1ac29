# shellcheck shell=bash
# Shared by the client-library and example tests (sourced): find or install
# Go, and make (or reuse) a Python virtualenv with clients/python installed.
# Expects say/die/run_bounded (tests/examples/lib.sh) and $root.

# use_go WORK: puts a Go >= 1.19 on PATH (`go` on PATH, /usr/local/go, or
# Debian's golang-go, installed here) and keeps its caches under WORK.
use_go() {
  local work="$1" go_bin="" minor
  if command -v go >/dev/null 2>&1; then go_bin="$(command -v go)"
  elif [ -x /usr/local/go/bin/go ]; then go_bin=/usr/local/go/bin/go
  else
    say "no Go found; installing Debian's golang-go"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get install -y -qq golang-go >&2 ||
      { DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get install -y -qq golang-go >&2; } ||
      die "Go is needed and could not be installed (apt-get install golang-go failed)"
    go_bin="$(command -v go)"
  fi
  export PATH="$(dirname "$go_bin"):$PATH"
  local version; version="$(go env GOVERSION 2>/dev/null)" || die "$go_bin does not run"
  minor="$(sed -nE 's/^go1\.([0-9]+).*/\1/p' <<<"$version")"
  if [ -z "$minor" ] || [ "$minor" -lt 19 ]; then die "$go_bin is $version; need Go 1.19 or newer"; fi
  say "using $go_bin ($version)"
  # -modcacherw keeps the module cache removable; -mod=readonly fails if
  # go.mod/go.sum would change; no other toolchain is fetched.
  export GOPATH="$work/gopath" GOMODCACHE="$work/gomodcache" GOCACHE="$work/gocache"
  export GOFLAGS="-modcacherw -mod=readonly" GOTOOLCHAIN=local CGO_ENABLED=0
  unset GOBIN GOWORK
}

# python_venv VENV: a virtualenv at VENV with clients/python/requirements-dev.txt
# (wheels only) and the cachecar package built from a copy of clients/python
# (so the repo gets no build files). The virtualenv is reused while the
# requirements and the Python version are unchanged, the package while its
# sources are. Sets $vpy.
python_venv() {
  local venv="$1" python="${PYTHON:-python3}" py_version stamp pkg_stamp src="$root/clients/python"
  command -v "$python" >/dev/null 2>&1 || die "no $python on PATH (set PYTHON to a Python 3.8+)"
  py_version="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" || die "$python does not run"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 8))' || die "$python is $py_version; need 3.8 or newer"
  stamp="$py_version $(sha256sum "$src/requirements-dev.txt" | cut -d' ' -f1)"
  pkg_stamp="$(cd "$src" && find -L pyproject.toml setup.py MANIFEST.in README.md src native -type f ! -path '*/__pycache__/*' -print0 |
               sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
  vpy="$venv/bin/python"
  if [ -x "$vpy" ] && [ "$(cat "$venv/.cachecar-stamp" 2>/dev/null)" = "$stamp" ]; then
    say "reusing $venv"
  else
    rm -rf "$venv"
    if ! "$python" -m venv "$venv" >"$venv.log" 2>&1; then
      rm -rf "$venv"
      say "python -m venv failed; installing Debian's python3-venv"
      local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
      { DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get install -y -qq python3-venv ||
        { DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get update -qq &&
          DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get install -y -qq python3-venv; }; } >>"$venv.log" 2>&1
      "$python" -m venv "$venv" >>"$venv.log" 2>&1 || { cat "$venv.log" >&2; die "cannot make a virtualenv with $python"; }
    fi
    # Wheels only: building grpcio from source would take far too long here.
    PIP_CACHE_DIR="$(dirname "$venv")/pip-cache" run_bounded 600 "pip install -r clients/python/requirements-dev.txt" \
      "$vpy" -m pip install --disable-pip-version-check --no-input --quiet --timeout 30 --retries 3 \
      --only-binary=:all: -r "$src/requirements-dev.txt"
    echo "$stamp" >"$venv/.cachecar-stamp"
    say "made $venv"
  fi
  [ "$(cat "$venv/.cachecar-package" 2>/dev/null)" = "$pkg_stamp" ] && return 0
  local copy; copy="$(mktemp -d "$(dirname "$venv")/pkg.XXXXXX")"
  # -L: native/localread is a link to src/localread (the reader's sources,
  # which the package compiles into cachecar._localread).
  cp -rL "$src/pyproject.toml" "$src/setup.py" "$src/MANIFEST.in" "$src/README.md" "$src/src" \
    "$src/native" "$copy/"
  # The package's own dependencies are the pins above; no build isolation,
  # so the pinned setuptools builds it without reaching PyPI again.
  run_bounded 300 "pip install clients/python" "$vpy" -m pip install --disable-pip-version-check --no-input \
    --quiet --no-deps --no-build-isolation --force-reinstall "$copy"
  rm -rf "$copy"
  echo "$pkg_stamp" >"$venv/.cachecar-package"
  say "installed clients/python into $venv"
}
