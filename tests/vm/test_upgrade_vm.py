# -*- coding: utf-8 -*-
"""playbooks/upgrade.yml against a real guest (first cut): the guest is node `vmguest` of the
fake Kubernetes API, its Ready condition follows the guest (NodeHeartbeat), the policy override
marks the guest's older kernel severe, and the newer kernel is installed from a local .deb."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from conftest import REPO_ROOT, record
from guest import NodeHeartbeat

pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'upgrade.yml')


def _release_of_deb(path):
    return re.match(r'linux-image-(.+?)_', os.path.basename(path)).group(1)


def _playbook(ansible, kube_env, tmp_path, guest, variables, timeout=1800):
    inventory = tmp_path / 'hosts.ini'
    inventory.write_text(
        'localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable
        + open(guest.inventory(str(tmp_path / 'guest.ini'), group='workers')).read())
    env = dict(ansible.env, **{k: kube_env[k] for k in ('KUBECONFIG', 'KUBECACHEDIR', 'NO_PROXY', 'no_proxy')
                               if k in kube_env})
    env['PATH'] = kube_env['PATH']
    command = ['ansible-playbook', '-i', str(inventory), PLAYBOOK, '-e', json.dumps(variables)]
    return subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, check=False)


def test_upgrade_playbook_reboots_the_guest_into_the_new_kernel(
        guest, ansible, vm_image, new_kernel_deb, fake_kube, kube_env, kubeconfig, kubectl_bin, tmp_path, request):
    old, new = vm_image.old_release, _release_of_deb(new_kernel_deb)
    fake_kube.add_node(guest.name, kernel=old)
    fake_kube.add_pod('web-1', guest.name, owner='ReplicaSet/web', labels={'app': 'web'})
    fake_kube.add_daemonset('node-exporter', nodes=[guest.name])
    variables = {
        'kernel_upgrade_hosts': 'workers', 'kernel_upgrade_kubectl': kubectl_bin,
        'kernel_upgrade_kubeconfig': kubeconfig, 'kernel_upgrade_kubelet_service': '',
        'kernel_upgrade_report_dir': str(tmp_path / 'report'),
        'kernel_upgrade_policy_overrides': [{'match': '^' + re.escape(old) + '$', 'status': 'severe'}],
        'kernel_upgrade_local_package': new_kernel_deb,
        'kernel_upgrade_target_release': new,
        'kernel_upgrade_ready_timeout': 300, 'kernel_upgrade_daemonsets_timeout': 120,
        'kernel_upgrade_drain_timeout': 60,
    }
    with NodeHeartbeat(guest, fake_kube, guest.name, interval=3, sample='grub-editenv list') as beat:
        start = time.monotonic()
        result = _playbook(ansible, kube_env, tmp_path, guest, variables)
        record(request, 'upgrade.yml, first run', time.monotonic() - start)
        (tmp_path / 'first-run.log').write_text(result.stdout)
        assert result.returncode == 0, result.stdout[-8000:]
        assert guest.run('uname -r').stdout.strip() == new
        node = fake_kube.node(guest.name)
        assert node['status']['nodeInfo']['kernelVersion'] == new
        assert not node['spec'].get('unschedulable')
        env = guest.run('grub-editenv list').stdout
        assert re.search(r'saved_entry=.*%s' % re.escape(new), env), env
        with open(tmp_path / 'report' / 'upgrade.json') as f:
            doc = json.load(f)
        row = doc['nodes'][0]
        assert row['status'] == 'upgraded' and row['kernel_before'] == old and row['kernel_after'] == new
        assert [s['step'] for s in row['timeline']] == ['cordon', 'drain', 'boot', 'ready', 'finalize', 'uncordon']
        for step in row['timeline']:
            record(request, 'timeline: ' + step['step'], step['seconds'])
        # GRUB's default moved to the new kernel only after the health gate: seen running the new
        # kernel with the old default, and never with the new default before the ready step ended
        steps = {s['step']: s for s in row['timeline']}
        new_default = [(t, k) for t, k, out in beat.samples if re.search(r'saved_entry=.*%s' % re.escape(new), out)]
        assert new_default and min(t for t, _k in new_default) >= steps['ready']['ended'] - 1, (new_default, steps)
        assert any(k == new and re.search(r'saved_entry=.*%s' % re.escape(old), out) for _t, k, out in beat.samples)

        writes = len([m for m in fake_kube.mutations if not m.dry_run])
        start = time.monotonic()
        again = _playbook(ansible, kube_env, tmp_path, guest, variables)
        record(request, 'upgrade.yml, second run', time.monotonic() - start)
        assert again.returncode == 0, again.stdout[-8000:]
        assert len([m for m in fake_kube.mutations if not m.dry_run]) == writes


# an initramfs-tools post-update hook that replaces the image of one release with garbage: the
# kernel then finds no root file system and panics (the guest boots with panic=10)
BREAK_INITRAMFS = r'''#!/bin/sh
# test only: make the initramfs of %(release)s unbootable
[ "$1" = "%(release)s" ] && head -c 1048576 /dev/urandom > "$2"
exit 0
'''


def test_unbootable_target_fails_the_playbook_and_comes_back_on_the_old_kernel(
        guest, ansible, vm_image, new_kernel_deb, fake_kube, kube_env, kubeconfig, kubectl_bin, tmp_path, request):
    old, new = vm_image.old_release, _release_of_deb(new_kernel_deb)
    fake_kube.add_node(guest.name, kernel=old)
    fake_kube.add_pod('web-1', guest.name, owner='ReplicaSet/web', labels={'app': 'web'})
    hook = tmp_path / 'zz-break'
    hook.write_text(BREAK_INITRAMFS % {'release': new})
    guest.run('mkdir -p /etc/initramfs/post-update.d')
    guest.copy_in(str(hook), '/etc/initramfs/post-update.d/zz-break')
    guest.run('chmod 755 /etc/initramfs/post-update.d/zz-break')
    variables = {
        'kernel_upgrade_hosts': 'workers', 'kernel_upgrade_kubectl': kubectl_bin,
        'kernel_upgrade_kubeconfig': kubeconfig, 'kernel_upgrade_kubelet_service': '',
        'kernel_upgrade_report_dir': str(tmp_path / 'report'),
        'kernel_upgrade_policy_overrides': [{'match': '^' + re.escape(old) + '$', 'status': 'severe'}],
        'kernel_upgrade_local_package': new_kernel_deb,
        'kernel_upgrade_target_release': new,
        'kernel_upgrade_ready_timeout': 300, 'kernel_upgrade_drain_timeout': 60,
    }
    with NodeHeartbeat(guest, fake_kube, guest.name, interval=3):
        start = time.monotonic()
        result = _playbook(ansible, kube_env, tmp_path, guest, variables)
        record(request, 'upgrade.yml, unbootable target', time.monotonic() - start)
    (tmp_path / 'run.log').write_text(result.stdout)
    assert result.returncode != 0, result.stdout[-8000:]
    flat = ' '.join(result.stdout.split())
    assert 'expected kernel %s after the reboot, but the node runs %s' % (new, old) in flat, result.stdout[-8000:]
    assert 'Kernel panic' in guest.console()
    assert guest.run('uname -r').stdout.strip() == old
    env = guest.run('grub-editenv list').stdout
    assert re.search(r'saved_entry=.*%s' % re.escape(old), env), env
    node = fake_kube.node(guest.name)
    assert node['spec'].get('unschedulable') is True
    assert 'boot' in (node['metadata'].get('annotations') or {}).get('nodeops.memcg/failure', '')
