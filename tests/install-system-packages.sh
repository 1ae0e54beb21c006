#!/usr/bin/env bash
# Installs the Debian packages tests/run-all.sh needs that are missing (as root, through apt-get;
# `apt-get update` first). Does nothing when all are there. Called by .ci/run and by run-all.sh.
#  - git: lists the files of the collection copy (git ls-files);
#  - shellcheck: ansible-test sanity skips its shellcheck test when it is missing;
#  - python3-venv: only when python3 cannot make a venv with pip (Debian's own python3);
#  - prometheus (promtool) and prometheus-node-exporter: the alert rules' promtool tests and the
#    scrape end to end (tests/integration/test_prometheus_*.py) start them on loopback;
#  - the vm stage (tests/vm/README.md): qemu runs the guest; debootstrap, GRUB's i386-pc images,
#    mkfs.ext4 -d and sfdisk build its disk; ssh and scp reach it; apt-get download fetches the
#    newer kernel's .deb (hence the fresh package lists);
#  - openssh-server and sudo: the SSH fleet test (tests/integration/ssh_fleet.py) runs an sshd per
#    host and `become` through sudo (neither is started as a service: the test starts sshd itself).
#  - linux-perf: the diagnose tests sample a stand-in kubelet's kernel call graphs with perf;
#    strace: the diagnose API test proves no process of the run opens a listening socket.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
packages=(git shellcheck qemu-system-x86 qemu-utils debootstrap grub-pc-bin grub2-common e2fsprogs fdisk
  openssh-client openssh-server sudo prometheus prometheus-node-exporter linux-perf strace)
if ! "${PYTHON:-python3}" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  packages+=(python3-venv)
fi
missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if ((EUID != 0)) || ! command -v apt-get >/dev/null; then
  echo "missing Debian packages: ${missing[*]} (install them as root with apt-get)" >&2
  exit 1
fi
echo "==> apt-get install ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
