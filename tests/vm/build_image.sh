#!/usr/bin/env bash
# Build (or reuse) the cached base image of the VM tests: a small Debian bookworm guest booting
# with GRUB from its own disk, an older linux-image-6.1.0-N-cloud-amd64, openssh, python3,
# python3-apt and dbus, and root's SSH key made by this build.
#
#   tests/vm/build_image.sh            build when needed; print the image directory last
#   tests/vm/build_image.sh --force    rebuild even when the cached image exists
#
# Needs root and: debootstrap, qemu-utils, grub-pc-bin, grub2-common, e2fsprogs (mkfs.ext4 -d),
# fdisk (sfdisk), openssh-client (ssh-keygen), and Debian's package archive through apt's mirror.
#
# Cache: $NODEOPS_MEMCG_VM_CACHE (default /var/cache/nodeops-memcg-vm), outside git. The image
# lives in base-<key>/, where <key> hashes this script and the settings below, so a changed recipe
# builds a new image (old ones are left; delete the cache directory to reclaim the space).
# Contents: base.qcow2, id_ed25519(.pub) (root's key in the guest), manifest.json.
#
# Settings (environment): VM_SUITE (bookworm), VM_MIRROR (deb.debian.org's Debian archive),
# VM_OLD_KERNEL (the kernel package booted first), VM_DISK_SIZE (4G).
#
# No loop devices (losetup -P does not work on this machine): the root file system is made from
# a directory with mkfs.ext4 -d, then an MBR disk is assembled with sfdisk and dd, with GRUB's
# boot.img in the MBR and a core.img (grub-mkimage) in the gap before the first partition.
set -euo pipefail

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
CACHE=${NODEOPS_MEMCG_VM_CACHE:-/var/cache/nodeops-memcg-vm}
SUITE=${VM_SUITE:-bookworm}
MIRROR=${VM_MIRROR:-http://deb.debian.org/debian}
OLD_KERNEL=${VM_OLD_KERNEL:-linux-image-6.1.0-47-cloud-amd64}
DISK_SIZE=${VM_DISK_SIZE:-4G}
FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

PACKAGES=(systemd-sysv udev dbus kmod openssh-server python3 python3-apt iproute2
  initramfs-tools zstd "$OLD_KERNEL")

log() { printf '[build_image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

((EUID == 0)) || die "needs root (debootstrap, chroot)"
for tool in debootstrap qemu-img grub-mkimage mkfs.ext4 sfdisk ssh-keygen chroot; do
  command -v "$tool" >/dev/null || die "missing $tool (apt-get install debootstrap qemu-utils grub-pc-bin grub2-common e2fsprogs fdisk openssh-client)"
done
[[ -f /usr/lib/grub/i386-pc/boot.img ]] || die "missing /usr/lib/grub/i386-pc (apt-get install grub-pc-bin)"

KEY=$({
  cat "$SCRIPT"
  printf '%s\n' "$SUITE" "$MIRROR" "$OLD_KERNEL" "$DISK_SIZE" "${PACKAGES[*]}"
} | sha256sum | cut -c1-16)
OUT=$CACHE/base-$KEY
mkdir -p "$CACHE"

exec 9>"$CACHE/.lock"
flock 9 # one build at a time; a second caller waits and then reuses the result

if [[ -f $OUT/manifest.json && $FORCE == 0 ]]; then
  log "cached: $OUT"
  printf '%s\n' "$OUT"
  exit 0
fi

START=$SECONDS
WORK=$(mktemp -d "$CACHE/build.XXXXXX")
ROOT=$WORK/rootfs
cleanup() {
  local m
  for m in dev/pts dev proc sys; do
    if mountpoint -q "$ROOT/$m" 2>/dev/null; then umount -l "$ROOT/$m" || true; fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { log "$1 ($((SECONDS - START)) s)"; }

step "debootstrap $SUITE ($OLD_KERNEL)"
mkdir -p "$CACHE/debootstrap-debs" # downloaded packages, reused by the next build
debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap-debs" --include="$(IFS=,; echo "${PACKAGES[*]}")" \
  "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
OLD_RELEASE=$(basename "$(ls -d "$ROOT"/lib/modules/*)")
[[ -f $ROOT/boot/vmlinuz-$OLD_RELEASE && -f $ROOT/boot/initrd.img-$OLD_RELEASE ]] \
  || die "no kernel/initramfs for $OLD_RELEASE in the rootfs"

step "grub-pc in the chroot (installed nowhere; the disk gets GRUB below)"
mount -t proc proc "$ROOT/proc"
mount -t sysfs sys "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts"
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" # no daemons started in the chroot
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
# grub-mkconfig cannot probe the root device in a chroot: no-op it during the install
in_root dpkg-divert --local --rename --add /usr/sbin/update-grub >/dev/null
ln -s /bin/true "$ROOT/usr/sbin/update-grub"
in_root debconf-set-selections <<'EOF'
grub-pc grub-pc/install_devices multiselect
grub-pc grub-pc/install_devices_empty boolean true
EOF
in_root apt-get install -y -qq --no-install-recommends grub-pc >"$WORK/grub-pc.log" 2>&1 \
  || { tail -30 "$WORK/grub-pc.log" >&2; die "installing grub-pc in the chroot failed"; }
rm "$ROOT/usr/sbin/update-grub"
in_root dpkg-divert --local --rename --remove /usr/sbin/update-grub >/dev/null
rm "$ROOT/usr/sbin/policy-rc.d"
in_root apt-get clean
for m in dev/pts dev sys proc; do umount "$ROOT/$m"; done

step "guest configuration"
echo vmguest >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tvmguest\n' >"$ROOT/etc/hosts"
printf 'LABEL=root\t/\text4\terrors=remount-ro\t0\t1\n' >"$ROOT/etc/fstab"
# the only network: qemu user networking (restrict=on), static address, SSH forwarded to it
mkdir -p "$ROOT/etc/systemd/network"
cat >"$ROOT/etc/systemd/network/10-qemu.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
EOF
ln -sf /lib/systemd/system/systemd-networkd.service "$ROOT/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
ln -sf /dev/null "$ROOT/etc/systemd/system/systemd-networkd-wait-online.service"
# no clock or apt timers wanted in a short-lived test guest
ln -sf /dev/null "$ROOT/etc/systemd/system/apt-daily.timer"
ln -sf /dev/null "$ROOT/etc/systemd/system/apt-daily-upgrade.timer"
# initramfs with the modules this machine needs only: 45 s instead of ~3 min in a TCG guest
echo 'MODULES=dep' >"$ROOT/etc/initramfs-tools/conf.d/nodeops-modules-dep.conf"
# GRUB as Debian ships it, with a serial console, a short menu timeout and panic=10 (a kernel that
# panics reboots, and GRUB then boots the default entry: the boot-once safety net); GRUB_DEFAULT stays
# Debian's 0 so kernel_boot has to switch it to saved, as on a real node
sed -i -e 's/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=1/' \
  -e 's/^GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX="console=ttyS0,115200n8 net.ifnames=0 panic=10"/' \
  -e 's/^GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT=""/' "$ROOT/etc/default/grub"
cat >>"$ROOT/etc/default/grub" <<'EOF'
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
EOF
# root's SSH key, made here and kept beside the image
ssh-keygen -q -t ed25519 -N '' -C nodeops-memcg-vm -f "$WORK/id_ed25519"
install -d -m 700 "$ROOT/root/.ssh"
install -m 600 "$WORK/id_ed25519.pub" "$ROOT/root/.ssh/authorized_keys"
echo 'UseDNS no' >"$ROOT/etc/ssh/sshd_config.d/nodeops.conf"
# GRUB's modules where grub.cfg's insmod finds them, its environment block for grub-reboot,
# and a first grub.cfg (update-grub in the guest replaces it)
mkdir -p "$ROOT/boot/grub/i386-pc"
cp /usr/lib/grub/i386-pc/*.mod /usr/lib/grub/i386-pc/*.lst "$ROOT/boot/grub/i386-pc/"
grub-editenv "$ROOT/boot/grub/grubenv" create
cat >"$ROOT/boot/grub/grub.cfg" <<EOF
# first boot only: replaced by update-grub inside the guest
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=1
search --no-floppy --label --set=root root
menuentry 'Debian GNU/Linux, with Linux $OLD_RELEASE' {
  insmod gzio
  insmod part_msdos
  insmod ext2
  linux /boot/vmlinuz-$OLD_RELEASE root=LABEL=root ro console=ttyS0,115200n8 net.ifnames=0 panic=10
  initrd /boot/initrd.img-$OLD_RELEASE
}
EOF
rm -f "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*_Packages

step "disk: ext4 from the directory, MBR, GRUB boot.img and core.img"
SIZE_BYTES=$(numfmt --from=iec "$DISK_SIZE")
PART_START=2048 # sectors: 1 MiB gap for core.img
PART_BYTES=$((SIZE_BYTES - PART_START * 512))
mkfs.ext4 -q -L root -d "$ROOT" "$WORK/root.ext4" "$((PART_BYTES / 1024))k"
truncate -s "$SIZE_BYTES" "$WORK/disk.raw"
echo "start=$PART_START, type=83, bootable" | sfdisk -q "$WORK/disk.raw"
grub-mkimage -O i386-pc -o "$WORK/core.img" -p '(hd0,msdos1)/boot/grub' \
  biosdisk part_msdos ext2 search search_label search_fs_uuid normal configfile linux gzio echo test serial terminal
CORE_SECTORS=$((($(stat -c %s "$WORK/core.img") + 511) / 512))
((CORE_SECTORS < PART_START - 1)) || die "core.img too large for the MBR gap"
dd if=/usr/lib/grub/i386-pc/boot.img of="$WORK/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$WORK/core.img" of="$WORK/disk.raw" bs=512 seek=1 conv=notrunc status=none
dd if="$WORK/root.ext4" of="$WORK/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm "$WORK/root.ext4"
qemu-img convert -O qcow2 "$WORK/disk.raw" "$WORK/base.qcow2"
rm "$WORK/disk.raw"

step "manifest"
python3 - "$WORK/manifest.json" <<EOF
import json, sys, time
json.dump({
    'key': '$KEY',
    'suite': '$SUITE',
    'old_kernel_package': '$OLD_KERNEL',
    'old_release': '$OLD_RELEASE',
    'disk_size': '$DISK_SIZE',
    'packages': '${PACKAGES[*]}'.split(),
    'built_at': int(time.time()),
    'build_seconds': $((SECONDS - START)),
}, open(sys.argv[1], 'w'), indent=2)
EOF
rm -rf "$OUT"
mkdir -p "$OUT"
mv "$WORK/base.qcow2" "$WORK/id_ed25519" "$WORK/id_ed25519.pub" "$WORK/manifest.json" "$OUT/"
chmod 600 "$OUT/id_ed25519"
step "done: $OUT"
printf '%s\n' "$OUT"
