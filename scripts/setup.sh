#!/usr/bin/env bash
# Installs what gemelo's lab, demo and tests need on Debian 12 (as root), then builds.
# Safe to run again: it installs only what is missing.
set -euo pipefail

PACKAGES=(
  # the production fabric and the twin switch: userspace Open vSwitch
  openvswitch-switch openvswitch-common
  # namespaces, veths, nsenter/unshare
  iproute2 util-linux procps
  # daemons that lab hosts run
  openssh-server openssh-client lighttpd vsftpd inetutils-telnetd snmpd snmp
  mosquitto mosquitto-clients lldpd python3 python3-pymodbus busybox-static
  # clients the demo and the tests use
  curl nmap mbpoll iperf3 tshark tcpdump netcat-openbsd ethtool iputils-ping
  # peers and harness of the benchmarks
  openvswitch-testcontroller
  # libvirt twin hosts: LXC containers and QEMU (TCG) guests booting Debian's
  # kernel with an initramfs gemelo writes (busybox, stripped decoy); never
  # dnsmasq (libvirt's default NAT network must not be able to start)
  libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu
  libvirt-daemon-driver-lxc qemu-system-x86 linux-image-amd64 cpio binutils
  # building the virt crate
  libvirt-dev pkg-config
)

if [ "$(id -u)" != 0 ]; then
  echo "setup: run as root (the lab creates namespaces and OVS instances)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: no Rust toolchain found; installing Debian's (needs rustc >= 1.80)"
  apt-get install -y -q --no-install-recommends cargo rustc
fi

cd "$(dirname "$0")/.."
cargo build --workspace --locked --bins
