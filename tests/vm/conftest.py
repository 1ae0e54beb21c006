# -*- coding: utf-8 -*-
"""Fixtures for the VM tests: the cached base image, a fresh guest per test, Ansible against it.

Needs root and the Debian packages listed in tests/vm/README.md. The base image is built on
first use (several minutes) and cached outside git (tests/vm/build_image.sh).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import guest as vm  # noqa: E402

REQUIRED_TOOLS = ['qemu-system-x86_64', 'qemu-img', 'debootstrap', 'grub-mkimage', 'sfdisk', 'mkfs.ext4', 'ssh', 'scp']
# the newer kernel, installed in the guest from a .deb fetched on the host
NEW_KERNEL_PACKAGE = os.environ.get('VM_NEW_KERNEL', 'linux-image-6.1.0-56-cloud-amd64')


def pytest_configure(config):
    config._vm_timings = []


def record(request, what, seconds):
    """Timings end up in the terminal summary (and later in docs)."""
    request.config._vm_timings.append((request.node.name or '(session)', what, seconds))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    timings = getattr(config, '_vm_timings', [])
    if timings:
        terminalreporter.section('VM timings')
        for test, what, seconds in timings:
            terminalreporter.write_line('%-40s %-32s %7.1f s' % (test, what, seconds))


@pytest.fixture(scope='session')
def vm_image(request):
    if os.geteuid() != 0:
        pytest.fail('VM tests need root (debootstrap, chroot)')
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail('VM tests need %s (apt-get install qemu-system-x86 qemu-utils debootstrap grub-pc-bin '
                    'grub2-common fdisk e2fsprogs openssh-client)' % ', '.join(missing))
    start = time.monotonic()
    image = vm.build_image()
    record(request, 'base image (build or cache hit)', time.monotonic() - start)
    return image


@pytest.fixture(scope='session')
def new_kernel_deb(request):
    start = time.monotonic()
    path = vm.fetch_deb(NEW_KERNEL_PACKAGE)
    record(request, 'apt-get download new kernel', time.monotonic() - start)
    return path


@pytest.fixture(scope='session')
def vm_accel(vm_image, request):
    start = time.monotonic()
    accel = 'kvm' if vm.kvm_works(vm_image) else 'tcg'
    record(request, 'KVM probe -> %s' % accel, time.monotonic() - start)
    return accel


@pytest.fixture
def guest(vm_image, vm_accel, request):
    """A fresh overlay of the base image, booted, with SSH up. Stopped by pid afterwards; its work
    directory is removed, except the serial console and qemu's log when the test failed."""
    workdir = tempfile.mkdtemp(prefix='nodeops-memcg-vm-')
    g = vm.Guest(vm_image, workdir, accel=vm_accel)
    g.start()
    try:
        record(request, 'boot to SSH (%s)' % vm_accel, g.wait_ssh())
        yield g
    finally:
        g.stop()
        report = getattr(request.node, 'rep_call', None)
        if report is not None and report.failed:
            os.remove(g.overlay)
            print('kept %s (serial console: %s)' % (workdir, g.console_path))
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, 'rep_' + rep.when, rep)


@pytest.fixture
def ansible(guest, collections_path, tmp_path):
    """ansible(module, args) -> CompletedProcess: an ad-hoc module run against the guest.

    ansible.playbook(path, variables, env=None) runs a playbook on an inventory of the guest (group
    `workers`) and localhost (where the reports are written); ansible.start_playbook(path, variables,
    log, env=None) starts it in a process group of its own and returns the Popen."""
    inventory = guest.inventory(str(tmp_path / 'inventory.ini'))
    config = tmp_path / 'ansible.cfg'
    config.write_text('')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_CONFIG=str(config),
               ANSIBLE_HOST_KEY_CHECKING='False', ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='False',
               ANSIBLE_LOCAL_TEMP=str(tmp_path / 'ansible-tmp'))
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')

    def run(module, args='', check=True, timeout=900, extra=()):
        cmd = ['ansible', guest.name, '-i', inventory, '-m', module, '-o'] + (['-a', args] if args else []) + list(extra)
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError('ansible %s %s failed (%d):\n%s' % (module, args, proc.returncode, proc.stdout[-4000:]))
        return proc

    def playbook_command(path, variables):
        hosts = tmp_path / 'playbook-hosts.ini'
        hosts.write_text(
            'localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable
            + open(guest.inventory(str(tmp_path / 'guest.ini'), group='workers')).read())
        return ['ansible-playbook', '-i', str(hosts), path, '-e', json.dumps(variables)]

    def playbook(path, variables, extra_env=None, timeout=1800):
        return subprocess.run(playbook_command(path, variables), env=dict(env, **(extra_env or {})),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)

    def start_playbook(path, variables, log, extra_env=None):
        """The playbook as a process group of its own (so a test can kill the whole controller), output to log."""
        return subprocess.Popen(playbook_command(path, variables), env=dict(env, **(extra_env or {})), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    run.playbook = playbook
    run.start_playbook = start_playbook
    return run
