#!/usr/bin/env bash
# Builds bay's container image FROM scratch out of the release binaries:
# bay-proxy and bay-tracker, the shared libraries they link, the CA
# certificates, and a non-root user (bay, 65532). No base image is pulled.
#
#   cargo build --release --bins
#   deploy/image/build.sh                      # tags localhost/bay:VERSION and localhost/bay:latest
#   deploy/image/build.sh --bin-dir target/debug --tag localhost/bay:dev
#
# Run it with the program and its flags (or BAY_PROXY_* / BAY_TRACKER_*
# variables, or --config with a mounted TOML file):
#   podman run --network host localhost/bay bay-tracker serve --listen 0.0.0.0:6880 ...
#
# BAY_PODMAN_ARGS adds global flags to every podman call (another
# storage root, for tests).
set -euo pipefail
cd "$(dirname "$0")/../.."

bin_dir=${CARGO_TARGET_DIR:-target}/release
tags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --tag) tags+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
[ ${#tags[@]} -gt 0 ] || tags=("localhost/bay:$version" "localhost/bay:latest")

for program in bay-proxy bay-tracker; do
  if [ ! -x "$bin_dir/$program" ]; then
    echo "$bin_dir/$program does not exist: build it first (cargo build --release --bins)" >&2
    exit 1
  fi
done

context=$(mktemp -d "${TMPDIR:-/tmp}/bay-image-XXXXXX")
trap 'rm -rf "$context"' EXIT
root=$context/rootfs
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/etc/bay" "$root/tmp" \
  "$context/state/bay-proxy" "$context/state/bay-tracker"
chmod 1777 "$root/tmp"

for program in bay-proxy bay-tracker; do
  # Debug info stays in the build; the image needs only the code.
  objcopy --strip-debug "$bin_dir/$program" "$root/usr/local/bin/$program"
  # Every library the dynamic loader will map, the loader itself included.
  ldd "$bin_dir/$program" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' |
    while read -r lib; do cp -L --parents "$lib" "$root/"; done
done

cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
bay:x:65532:65532:bay:/var/lib/bay-proxy:/sbin/nologin
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
bay:x:65532:
GROUP
echo "hosts: files dns" > "$root/etc/nsswitch.conf"

cat > "$context/Containerfile" <<CONTAINERFILE
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 state/ /var/lib/
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /var/lib/bay-proxy
# 5000: bay-proxy's registry; 6880: bay-tracker's HTTP; 6881/6882: peers.
EXPOSE 5000 6880 6881 6882
STOPSIGNAL SIGTERM
LABEL org.opencontainers.image.title="bay" \
      org.opencontainers.image.version="$version" \
      org.opencontainers.image.description="bay-proxy and bay-tracker: container image layers spread peer to peer"
CMD ["bay-proxy", "--help"]
CONTAINERFILE

tag_args=()
for t in "${tags[@]}"; do tag_args+=(--tag "$t"); done
# shellcheck disable=SC2086 # BAY_PODMAN_ARGS is a list of flags
podman ${BAY_PODMAN_ARGS:-} build --quiet --pull=never --format oci "${tag_args[@]}" "$context" >/dev/null
echo "built ${tags[*]}"
