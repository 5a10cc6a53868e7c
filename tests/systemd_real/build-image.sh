#!/usr/bin/env bash
# Build (once) the minimal Debian 12 root that tests/test_systemd_real.py boots with systemd as
# PID 1 in systemd-nspawn, and print its path. The image is cached under /var/cache (about
# 4-5 minutes to debootstrap, then reused); a half-built image is never used, because it is
# built beside the cache and renamed into place only when complete. Needs root.
#
#   tests/systemd_real/build-image.sh          # prints /var/cache/recsched-ci/bookworm-<key>
#
# Change IMAGE_PACKAGES or IMAGE_REVISION and the key changes, so the next run rebuilds.
set -euo pipefail

IMAGE_REVISION=2
IMAGE_SUITE=bookworm
# What the README's install steps and operations commands need, and nothing else: systemd as
# PID 1, dbus (systemctl show/status over the bus), Python with venv, CA certificates (pip),
# sudo and jq (the README's commands use both), procps (ps, for the secret check).
IMAGE_PACKAGES=systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates,sudo,jq,procps
CACHE_ROOT=${RECSCHED_IMAGE_CACHE:-/var/cache/recsched-ci}

key=$(printf '%s\n' "$IMAGE_REVISION" "$IMAGE_SUITE" "$IMAGE_PACKAGES" | sha256sum | cut -c1-12)
image="$CACHE_ROOT/$IMAGE_SUITE-$key"
if [ -x "$image/lib/systemd/systemd" ] && [ -f "$image/.recsched-image-complete" ]; then
  echo "$image"
  exit 0
fi

for tool in debootstrap systemd-nspawn; do
  if ! command -v "$tool" >/dev/null; then
    echo "build-image: $tool is missing (apt-get install systemd-container debootstrap)" >&2
    exit 3
  fi
done

# The mirror this machine's own apt sources name (deb822 or one-line format).
mirror=$(grep -hoE '^URIs:[[:space:]]*\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null \
           | awk '{print $2}' | grep -v security | head -n1 || true)
if [ -z "$mirror" ]; then
  mirror=$(grep -hoE '^deb[[:space:]]+\S+' /etc/apt/sources.list 2>/dev/null \
             | awk '{print $2}' | grep -v security | head -n1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$CACHE_ROOT"
work=$(mktemp -d "$CACHE_ROOT/.build-XXXXXX")
# An interrupted debootstrap leaves /proc (and more) mounted inside the root: unmount before
# removing, or rm would walk into the host's /proc.
cleanup() {
  awk -v w="$work/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r mnt; do umount -l "$mnt" || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
echo "build-image: debootstrap $IMAGE_SUITE from $mirror into $work (a few minutes, once)" >&2
debootstrap --variant=minbase --include="$IMAGE_PACKAGES" "$IMAGE_SUITE" "$work/root" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

# pip inside the container must trust what the host trusts (this host reaches PyPI through a
# TLS-intercepting proxy whose CA is among the host's local certificates).
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$work/root/usr/local/share/ca-certificates/"
  chroot "$work/root" update-ca-certificates >/dev/null
fi
# A quiet, fast boot: no getty on the read-only console, a machine id, a hostname.
chroot "$work/root" systemctl mask console-getty.service getty@tty1.service \
  systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
: >"$work/root/etc/machine-id"
echo recsched-ci >"$work/root/etc/hostname"
# What an installed Debian has and debootstrap does not write: `localhost` in /etc/hosts.
printf '127.0.0.1\tlocalhost\n127.0.1.1\trecsched-ci\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$work/root/etc/hosts"
rm -rf "$work/root/var/cache/apt/archives/"*.deb
touch "$work/root/.recsched-image-complete"

rm -rf "$image"
mv "$work/root" "$image"
echo "$image"
