#!/usr/bin/env bash
# Checks the README's promise that its two commands work as root on a fresh Debian 12 machine:
# bootstraps a minimal Debian 12 (debootstrap --variant=minbase) into a directory, clones this
# checkout's HEAD into it and runs the commands there in a chroot, from nothing installed.
#
#   sudo bash scripts/check-fresh-debian.sh [demo|test|both] [DIR]
#
# Needs root, network access to a Debian mirror (DEBIAN_MIRROR, deb.debian.org by default) and
# about 6 GB in DIR (new or empty; a new directory under /var/tmp by default, kept for
# inspection; KEEP=0 removes it). DEBIAN_SECURITY_MIRROR sets the security archive. `both` takes about 30 minutes on 2 cores; the tests' own knobs (FCGI_SKIP_*,
# FUZZ_SECONDS, FCGI_SOAK_SECONDS, DEMO_JOBS) pass through.
set -euo pipefail
what=${1:-both}

case "$what" in
  demo | test | both) ;;
  *)
    echo "usage: $0 [demo|test|both] [DIR]" >&2
    exit 2
    ;;
esac
if [ "$(id -u)" != 0 ]; then
  echo "check-fresh-debian: needs root (debootstrap, chroot, mounts)" >&2
  exit 2
fi
# Absolute before the cd below, so that a relative DIR is not taken inside the checkout.
root=$(realpath -m "${2:-$(mktemp -d /var/tmp/asio-fcgi-fresh.XXXXXX)}")
cd "$(dirname "$0")/.."
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
if [ -n "$(ls -A "$root" 2> /dev/null)" ]; then
  echo "check-fresh-debian: $root is not empty; give a new or empty directory" >&2
  exit 2
fi
repo=$PWD

command -v debootstrap > /dev/null || {
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
}

mounted=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  # Unmount in reverse order; never leave the host's /dev bound into a directory.
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[i]}" 2> /dev/null || umount -l "${mounted[i]}" || true
  done
  if [ "${KEEP:-1}" = 0 ]; then
    if findmnt -rn -o TARGET | awk -v r="$root/" 'index($0, r) == 1 { m = 1 } END { exit !m }'; then
      echo "check-fresh-debian: something is still mounted under $root; not removing it" >&2
    else
      rm -rf --one-file-system "$root"
    fi
  fi
}
trap cleanup EXIT
mount_into() {  # type-or-bind source target
  mkdir -p "$3"
  if [ "$1" = bind ]; then
    mount --bind "$2" "$3"
    # Where /dev is shared (systemd), mounts made under the bind would appear on the host too
    # (a tmpfs over its /dev/shm): receive, never send.
    mount --make-rslave "$3"
  else
    mount -t "$1" "$2" "$3"
  fi
  mounted+=("$3")
}

echo "check-fresh-debian: bootstrapping Debian 12 into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" > "$root.debootstrap.log" 2>&1 || {
  tail -20 "$root.debootstrap.log" >&2
  exit 1
}
# What a Debian 12 machine's sources hold: the release, its updates and security.
rm -f "$root/etc/apt/sources.list"
cat > "$root/etc/apt/sources.list.d/debian.sources" << EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount_into proc proc "$root/proc"
mount_into sysfs sys "$root/sys"
mount_into bind /dev "$root/dev"
mount_into bind /dev/pts "$root/dev/pts"
mount_into tmpfs tmpfs "$root/dev/shm"
git clone -q "$repo" "$root/root/asio-fcgi"
echo "check-fresh-debian: testing $(git -C "$root/root/asio-fcgi" log --oneline -1)"

# Only the environment a root login on a fresh machine has, plus the tests' knobs.
env_args=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb)
for v in FCGI_SKIP_FUZZ FCGI_SKIP_SANITIZERS FCGI_SKIP_SOAK FUZZ_SECONDS FCGI_SOAK_SECONDS DEMO_JOBS; do
  if [ -n "${!v:-}" ]; then env_args+=("$v=${!v}"); fi
done
run_in_root() {  # script log
  local rc=0
  echo "check-fresh-debian: bash $1 (log: $2)"
  chroot "$root" /usr/bin/env -i "${env_args[@]}" \
    bash -c "cd /root/asio-fcgi && bash $1" > "$2" 2>&1 || rc=$?
  tail -5 "$2"
  echo "check-fresh-debian: bash $1 exited $rc"
  return "$rc"
}
status=0
if [ "$what" != test ]; then
  run_in_root scripts/demo.sh "$root.demo.log" || status=1
fi
if [ "$what" != demo ]; then
  run_in_root scripts/test.sh "$root.test.log" || status=1
fi
exit "$status"
