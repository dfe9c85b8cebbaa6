#!/usr/bin/env bash
# Installs the programs bay's tests and demo drive. Idempotent; needs root
# (or sudo) for apt-get.
set -euo pipefail

packages=(
  python3-libtorrent   # reference BitTorrent v2 peer
  docker-registry      # CNCF distribution, the real upstream registry
  nginx-light          # HTTP baseline and test server
  curl wrk             # HTTP clients for server tests
  opentracker          # a real tracker for the announce client's tests
  python3
  skopeo               # image client
  openssl              # the token server signs its tokens with it
  apache2-utils        # htpasswd -B for the registry's htpasswd auth tests
  containerd           # image client daemon (driven with ctr)
  podman               # image client (vfs storage); builds and plays bay's image
  catatonit            # the pause process of the pods podman kube play runs
  python3-yaml         # turns the Kubernetes manifests into pods to play
  systemd              # systemd-analyze verify of the units
  python3-venv         # a private venv for kubernetes-validate (below)
  docker.io            # dockerd and docker CLI
  iproute2             # ip netns, tc, ss for the namespace hosts
  iperf3 iputils-ping  # checks of the namespace links
  python3-matplotlib   # plots of the cluster benchmark
  chromium             # status pages checked in a real browser
  fonts-dejavu-core    # a font for the pages' screenshots
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The downloaded packages are not needed once installed; on a small
  # disk the build needs the room.
  $sudo apt-get clean
fi

# The packaged nginx and registry start services on install; the tests run
# their own instances on loopback ports, so stop the packaged ones.
for svc in nginx docker-registry; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

# Kubernetes' own JSON schemas, shipped inside the package, check the
# manifests offline; Debian packages no such validator.
if ! [ -x /opt/bay-tools/bin/kubernetes-validate ]; then
  python3 -m venv /opt/bay-tools
  /opt/bay-tools/bin/pip install --quiet kubernetes-validate
fi

if ! command -v cargo-fuzz >/dev/null 2>&1 && ! [ -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
  cargo install cargo-fuzz --locked
fi
if ! command -v cargo-deny >/dev/null 2>&1 && ! [ -x "$HOME/.cargo/bin/cargo-deny" ]; then
  cargo install cargo-deny --locked
fi
