# -*- coding: utf-8 -*-
"""playbooks/upgrade.yml against a real guest: the guest is node `vmguest` of the fake Kubernetes
API, its Ready condition follows the guest (NodeHeartbeat), a policy override marks the guest's
older kernel severe, and the newer kernel is installed from a local .deb (the guest has no network)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

from conftest import REPO_ROOT, record
from guest import NodeHeartbeat

pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'upgrade.yml')
CORDONED_BY = 'nodeops.memcg/cordoned-by'


def _release_of_deb(path):
    # linux-image-6.1.0-56-cloud-amd64_6.1.192-2_amd64.deb -> 6.1.0-56-cloud-amd64
    return re.match(r'linux-image-(.+?)_', os.path.basename(path)).group(1)


def _kube(kube_env):
    return {k: kube_env[k] for k in ('KUBECONFIG', 'KUBECACHEDIR', 'NO_PROXY', 'no_proxy', 'PATH') if k in kube_env}


def _new_default(env, release):
    return re.search(r'saved_entry=.*%s' % re.escape(release), env)


def _upgrade(ansible, kube_env, variables):
    return ansible.playbook(PLAYBOOK, variables, extra_env=_kube(kube_env))


def _variables(old, new_kernel_deb, kubectl_bin, kubeconfig, tmp_path):
    """The guest's old kernel marked severe; the new one installed from the local .deb."""
    return {
        'kernel_upgrade_hosts': 'workers', 'kernel_upgrade_kubectl': kubectl_bin,
        'kernel_upgrade_kubeconfig': kubeconfig, 'kernel_upgrade_kubelet_service': '',
        'kernel_upgrade_report_dir': str(tmp_path / 'report'),
        'kernel_upgrade_policy_overrides': [{'match': '^' + re.escape(old) + '$', 'status': 'severe'}],
        'kernel_upgrade_local_package': new_kernel_deb,
        'kernel_upgrade_target_release': _release_of_deb(new_kernel_deb),
        'kernel_upgrade_ready_timeout': 300, 'kernel_upgrade_daemonsets_timeout': 120,
        'kernel_upgrade_drain_timeout': 60,
    }


def test_upgrade_killed_after_the_reboot_is_finished_by_the_next_run(
        guest, ansible, vm_image, new_kernel_deb, fake_kube, kube_env, kubeconfig, kubectl_bin, tmp_path, request):
    """The first run is killed, controller and all, once the guest runs the new kernel (booted once,
    its default not yet committed): no rescue, no report, no lock release. The next run takes the
    node over: health gate, new default, uncordon; no second drain or reboot."""
    old, new = vm_image.old_release, _release_of_deb(new_kernel_deb)
    fake_kube.add_node(guest.name, kernel=old)
    fake_kube.add_pod('web-1', guest.name, owner='ReplicaSet/web', labels={'app': 'web'})
    fake_kube.add_daemonset('node-exporter', nodes=[guest.name])
    variables = _variables(old, new_kernel_deb, kubectl_bin, kubeconfig, tmp_path)
    with NodeHeartbeat(guest, fake_kube, guest.name, interval=3, sample='grub-editenv list') as beat:
        start = time.monotonic()
        log_path = tmp_path / 'killed-run.log'
        with open(log_path, 'w') as log:
            first = ansible.start_playbook(PLAYBOOK, dict(variables, kernel_upgrade_run_id='vm-killed'), log,
                                           extra_env=_kube(kube_env))
            try:
                deadline = time.monotonic() + 1200
                while not any(kernel == new for _t, kernel, _out in beat.samples):
                    assert first.poll() is None, log_path.read_text()[-8000:]
                    assert time.monotonic() < deadline, log_path.read_text()[-8000:]
                    time.sleep(1)
            finally:
                os.killpg(first.pid, signal.SIGKILL)
                first.wait()
        record(request, 'upgrade.yml, first run until killed on the new kernel', time.monotonic() - start)
        # What the killed run left: the new kernel running once, the old default, the node cordoned and drained.
        assert guest.run('uname -r').stdout.strip() == new
        assert not _new_default(guest.run('grub-editenv list').stdout, new)
        node = fake_kube.node(guest.name)
        assert node['spec'].get('unschedulable') is True
        assert node['metadata']['annotations'][CORDONED_BY] == 'vm-killed'
        writes = [m for m in fake_kube.mutations if not m.dry_run and 200 <= m.status < 300]
        cordons = [m.time for m in writes if m.path.endswith('/nodes/' + guest.name)
                   and (m.body or {}).get('spec', {}).get('unschedulable') is True]
        evictions = {m.path.rsplit('/', 2)[-2]: m.time for m in writes if m.path.endswith('/eviction')}
        assert cordons and list(evictions) == ['web-1'] and cordons[0] < evictions['web-1'], writes
        assert fake_kube.pod('web-1') is None
        boot_id = guest.run('cat /proc/sys/kernel/random/boot_id').stdout.strip()

        # The killed run's lock expires (its TTL later; here by its renewTime), and the next run resumes.
        expired = subprocess.run(
            [kubectl_bin, 'patch', 'lease', 'nodeops-memcg-kernel-upgrade', '--namespace', 'kube-system',
             '--type', 'merge', '--patch', '{"spec":{"renewTime":"2020-01-01T00:00:00.000000Z"}}'],
            env=dict(os.environ, **_kube(kube_env)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            check=False)
        assert expired.returncode == 0, expired.stdout
        calls = len(fake_kube.mutations)
        start = time.monotonic()
        result = _upgrade(ansible, kube_env, variables)
        record(request, 'upgrade.yml, the run that resumes', time.monotonic() - start)
        (tmp_path / 'resume-run.log').write_text(result.stdout)
        assert result.returncode == 0, result.stdout[-8000:]
        assert re.search(r"Resumed: \{'%s': 'left by run vm-killed at step \w+; it runs the fixed %s" % (
            guest.name, re.escape(new)), result.stdout), result.stdout[-8000:]
        assert guest.run('cat /proc/sys/kernel/random/boot_id').stdout.strip() == boot_id  # not rebooted again
        assert guest.run('uname -r').stdout.strip() == new
        node = fake_kube.node(guest.name)
        assert node['status']['nodeInfo']['kernelVersion'] == new and not node['spec'].get('unschedulable')
        left = set(node['metadata'].get('annotations', {})) & {
            CORDONED_BY, 'nodeops.memcg/failure', 'nodeops.memcg/step', 'nodeops.memcg/target'}
        assert not left, node  # the node's rollout state is gone with the rollout
        assert not [m for m in fake_kube.mutations[calls:] if m.path.endswith('/eviction')]
        assert _new_default(guest.run('grub-editenv list').stdout, new)
        with open(tmp_path / 'report' / 'upgrade.json') as f:
            row = json.load(f)['nodes'][0]
        assert row['status'] == 'resumed' and row['kernel_after'] == new, row
        for step in row['timeline']:
            record(request, 'resumed timeline: ' + step['step'], step['seconds'])
        # GRUB's default moved to the new kernel only after the resuming run's health gate passed
        steps = {s['step']: s for s in row['timeline']}
        committed = [t for t, _k, out in beat.samples if _new_default(out, new)]
        assert committed and min(committed) >= steps['ready']['ended'] - 1, (committed, steps)

        calls = len(fake_kube.mutations)
        start = time.monotonic()
        again = _upgrade(ansible, kube_env, variables)
        record(request, 'upgrade.yml, a third run', time.monotonic() - start)
        assert again.returncode == 0, again.stdout[-8000:]
        assert fake_kube.mutations[calls:] == []  # not even a dry run


# instead of update-initramfs (diverted): the target release gets 1 MiB of random bytes as its
# initramfs, so its kernel finds no root file system and panics (the guest boots with panic=10);
# this also skips the minutes an initramfs build takes under emulation
FAKE_UPDATE_INITRAMFS = r'''#!/bin/sh
# test only (nodeops.memcg tests/vm): an unbootable initramfs for %(release)s
version= bootdir=/boot
for arg; do
  case "$prev" in -k) version=$arg ;; -b) bootdir=$arg ;; esac
  prev=$arg
done
if [ "$version" = "%(release)s" ]; then
  head -c 1048576 /dev/urandom > "$bootdir/initrd.img-$version"
  exit 0
fi
exec /usr/sbin/update-initramfs.real "$@"
'''


def test_unbootable_target_fails_the_playbook_and_comes_back_on_the_old_kernel(
        guest, ansible, vm_image, new_kernel_deb, fake_kube, kube_env, kubeconfig, kubectl_bin, tmp_path, request):
    old, new = vm_image.old_release, _release_of_deb(new_kernel_deb)
    fake_kube.add_node(guest.name, kernel=old)
    fake_kube.add_pod('web-1', guest.name, owner='ReplicaSet/web', labels={'app': 'web'})
    fake = tmp_path / 'update-initramfs'
    fake.write_text(FAKE_UPDATE_INITRAMFS % {'release': new})
    guest.run('dpkg-divert --local --rename --divert /usr/sbin/update-initramfs.real --add /usr/sbin/update-initramfs')
    guest.copy_in(str(fake), '/usr/sbin/update-initramfs')
    guest.run('chmod 755 /usr/sbin/update-initramfs')
    variables = _variables(old, new_kernel_deb, kubectl_bin, kubeconfig, tmp_path)
    with NodeHeartbeat(guest, fake_kube, guest.name, interval=3):
        start = time.monotonic()
        result = _upgrade(ansible, kube_env, variables)
        record(request, 'upgrade.yml, unbootable target', time.monotonic() - start)
    (tmp_path / 'run.log').write_text(result.stdout)
    assert result.returncode != 0, result.stdout[-8000:]
    flat = ' '.join(result.stdout.split())
    assert 'expected kernel %s after the reboot, but the node runs %s' % (new, old) in flat, result.stdout[-8000:]
    console = guest.console()
    assert 'Linux version %s' % new in console and 'Kernel panic' in console
    assert guest.run('uname -r').stdout.strip() == old
    env = guest.run('grub-editenv list').stdout
    assert re.search(r'saved_entry=.*%s' % re.escape(old), env), env
    node = fake_kube.node(guest.name)
    assert node['spec'].get('unschedulable') is True
    assert 'boot' in (node['metadata'].get('annotations') or {}).get('nodeops.memcg/failure', '')
