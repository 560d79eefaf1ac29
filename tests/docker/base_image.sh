# Sourced by tests/docker/image_test.sh after podman_env.sh: makes the two
# base images the Dockerfile names, debian:bookworm and debian:bookworm-slim,
# without a registry. debootstrap (minbase, as the official images are made)
# builds a bookworm root filesystem from the Debian mirror apt already uses;
# it gets the official images' apt and dpkg settings (all three bookworm
# suites, unsafe-io for speed, cleaned caches; slim: no docs, man pages or
# locales) and is imported under the names Docker resolves them to
# (docker.io/library/debian:TAG), in our own storage only.
#
# The root filesystems are cached as tarballs in $CACHECAR_CACHE (default
# ~/.cache/cachecar/debian-base), made again when older than 14 days or when
# this recipe changes (BASE_RECIPE).

BASE_RECIPE=1
base_cache="${CACHECAR_CACHE:-$HOME/.cache/cachecar}/debian-base"

# The mirror apt uses here (first URI of the main Debian source).
base_mirror() {
  local uri
  uri="$(grep -hs '^URIs:' /etc/apt/sources.list.d/debian.sources | awk '{print $2}' | grep -v security | head -1)"
  [ -n "$uri" ] || uri="$(grep -hs '^deb ' /etc/apt/sources.list | awk '$3 !~ /security/ {print $2; exit}')"
  echo "${uri:-http://deb.debian.org/debian}"
}

# base_official_settings ROOT: what the official image adds on top of debootstrap.
base_official_settings() {
  local root="$1" mirror="$2"
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  echo 'force-unsafe-io' >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/log/* "$root"/tmp/* "$root"/root/.bash_history
  : >"$root/etc/hostname"
  : >"$root/etc/resolv.conf"
}

# base_slim ROOT: bookworm-slim's dpkg excludes, applied to what is installed.
base_slim() {
  local root="$1"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/groff/* "$root"/usr/share/info/* \
    "$root"/usr/share/lintian/* "$root"/usr/share/linda/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
}

# base_tarballs: makes (or reuses) $base_cache/bookworm{,-slim}-rN.tar.
base_tarballs() {
  local full="$base_cache/bookworm-r$BASE_RECIPE.tar" slim="$base_cache/bookworm-slim-r$BASE_RECIPE.tar"
  mkdir -p "$base_cache"
  (
    flock 9
    if [ -s "$full" ] && [ -s "$slim" ] && [ -z "$(find "$full" -mtime +14)" ]; then exit 0; fi
    local tmp mirror
    tmp="$(mktemp -d "$base_cache/make.XXXXXX")"
    mirror="$(base_mirror)"
    echo "base: debootstrap --variant=minbase bookworm from $mirror" >&2
    mkdir -p "$base_cache/debs"
    if ! debootstrap --variant=minbase --cache-dir="$base_cache/debs" bookworm "$tmp/root" "$mirror" \
      >"$tmp/debootstrap.log" 2>&1; then
      tail -20 "$tmp/debootstrap.log" >&2
      rm -rf "$tmp"
      exit 1
    fi
    base_official_settings "$tmp/root" "$mirror"
    tar -C "$tmp/root" --numeric-owner -cf "$tmp/full.tar" .
    base_slim "$tmp/root"
    tar -C "$tmp/root" --numeric-owner -cf "$tmp/slim.tar" .
    mv "$tmp/full.tar" "$full" && mv "$tmp/slim.tar" "$slim"
    rm -rf "$tmp"
  ) 9>"$base_cache/.lock"
}

# base_images: debian:bookworm and debian:bookworm-slim in our storage.
base_images() {
  base_tarballs || return 1
  local tag file
  for tag in bookworm bookworm-slim; do
    file="$base_cache/$tag-r$BASE_RECIPE.tar"
    # Re-import when the tarball is newer than the image (a refreshed base).
    if pm image exists "docker.io/library/debian:$tag" &&
      [ "$(cat "$pm_work/base-$tag.stamp" 2>/dev/null)" = "$(stat -c %Y "$file")" ]; then
      continue
    fi
    pm import --change 'CMD ["bash"]' "$file" "docker.io/library/debian:$tag" >/dev/null || return 1
    stat -c %Y "$file" >"$pm_work/base-$tag.stamp"
  done
}
