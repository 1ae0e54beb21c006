# -*- coding: utf-8 -*-
"""First VM tests: the guest boots from its own GRUB, answers Ansible over SSH, and boots a
newer kernel installed from a local .deb once (kernel_boot state=once), then the old one again."""

from __future__ import annotations

import os
import re
import time

from conftest import record


def _kernel_release_of_deb(path):
    # linux-image-6.1.0-56-cloud-amd64_6.1.192-2_amd64.deb -> 6.1.0-56-cloud-amd64
    return re.match(r'linux-image-(.+?)_', os.path.basename(path)).group(1)


def _ad_hoc_stdout(proc):
    # one-line output: "vmguest | CHANGED | rc=0 | (stdout) 6.1.0-47-cloud-amd64"
    return proc.stdout.strip().splitlines()[-1].split('(stdout)', 1)[-1].strip()


def test_boots_old_kernel_and_answers_ansible(guest, ansible, vm_image, request):
    start = time.monotonic()
    proc = ansible('ansible.builtin.command', 'uname -r')
    record(request, 'ansible ad-hoc uname -r', time.monotonic() - start)
    assert _ad_hoc_stdout(proc) == vm_image.old_release
    # the guest boots through GRUB from its own disk, on the serial console
    console = guest.console()
    assert 'Linux version %s' % vm_image.old_release in console
    # no network but the forwarded SSH port: no default route out of qemu's restricted slirp
    assert guest.run('ip -4 addr show eth0').stdout.count('10.0.2.15') == 1


def _install_new_kernel(ansible, new_kernel_deb, request):
    start = time.monotonic()
    ansible('ansible.builtin.copy', 'src=%s dest=/var/tmp/%s' % (new_kernel_deb, os.path.basename(new_kernel_deb)))
    record(request, 'copy .deb into guest', time.monotonic() - start)
    start = time.monotonic()
    ansible('ansible.builtin.apt', 'deb=/var/tmp/%s' % os.path.basename(new_kernel_deb))
    record(request, 'apt install new kernel (.deb)', time.monotonic() - start)


def test_new_kernel_boots_once_then_old_again(guest, ansible, vm_image, new_kernel_deb, request):
    new_release = _kernel_release_of_deb(new_kernel_deb)
    old_release = vm_image.old_release
    assert new_release != old_release
    _install_new_kernel(ansible, new_kernel_deb, request)

    start = time.monotonic()
    proc = ansible('nodeops.memcg.kernel_boot', 'release=%s state=once fallback_release=%s' % (new_release, old_release))
    record(request, 'kernel_boot state=once', time.monotonic() - start)
    assert 'CHANGED' in proc.stdout, proc.stdout
    env = guest.run('grub-editenv list').stdout
    assert 'next_entry=' in env and new_release in env, env
    assert re.search(r'saved_entry=.*%s' % re.escape(old_release), env), env

    record(request, 'reboot into new kernel', guest.reboot())
    assert guest.run('uname -r').stdout.strip() == new_release
    # GRUB cleared next_entry while booting it: the new kernel was booted once only
    env = guest.run('grub-editenv list').stdout
    assert not re.search(r'^next_entry=.+', env, re.M), env

    record(request, 'reboot back to the default', guest.reboot())
    assert guest.run('uname -r').stdout.strip() == old_release


def test_unbootable_new_kernel_falls_back_to_old(guest, ansible, vm_image, new_kernel_deb, request):
    """The safety net: a target kernel that panics (its initramfs made unbootable; the guest boots
    with panic=10) comes back on the old kernel, because it was set to boot once only."""
    new_release = _kernel_release_of_deb(new_kernel_deb)
    old_release = vm_image.old_release
    _install_new_kernel(ansible, new_kernel_deb, request)
    # garbage instead of the initramfs: the kernel finds no root=UUID=... and panics
    guest.run('head -c 1048576 /dev/urandom > /boot/initrd.img-%s' % new_release)
    ansible('nodeops.memcg.kernel_boot', 'release=%s state=once fallback_release=%s' % (new_release, old_release))

    record(request, 'reboot: panic, back on the old kernel', guest.reboot())
    assert guest.run('uname -r').stdout.strip() == old_release
    console = guest.console()
    assert 'Linux version %s' % new_release in console
    assert 'Kernel panic' in console
    env = guest.run('grub-editenv list').stdout
    assert not re.search(r'^next_entry=.+', env, re.M), env
    assert re.search(r'saved_entry=.*%s' % re.escape(old_release), env), env


def test_cgroup_v2_then_v1(guest, request):
    """bookworm boots with cgroup v2; systemd.unified_cgroup_hierarchy=0 gives the v1 memory
    hierarchy the probe and the mitigation need to be tested on."""
    mounts = guest.run('findmnt -rn -o FSTYPE /sys/fs/cgroup').stdout.split()
    assert mounts == ['cgroup2'], mounts
    guest.set_kernel_args('systemd.unified_cgroup_hierarchy=0')
    record(request, 'reboot with cgroup v1', guest.reboot())
    assert 'systemd.unified_cgroup_hierarchy=0' in guest.run('cat /proc/cmdline').stdout
    assert guest.run('findmnt -rn -o FSTYPE /sys/fs/cgroup/memory').stdout.split() == ['cgroup']
    memory = [line.split() for line in guest.run('cat /proc/cgroups').stdout.splitlines() if line.startswith('memory')]
    assert memory and int(memory[0][1]) > 0, memory  # a v1 hierarchy id
