# -*- coding: utf-8 -*-
"""The probe and the mitigation inside the guest, on real dying memcgs made in the guest: first
under cgroup v2 (bookworm's default), then, after a reboot with
systemd.unified_cgroup_hierarchy=0, under the v1 memory hierarchy. One guest, two boots."""

from __future__ import annotations

import json
import os
import re
import time

from conftest import REPO_ROOT, record

MEMCG_LAB = os.path.join(REPO_ROOT, 'tests', 'integration', 'memcg_lab.py')
MITIGATE = os.path.join(REPO_ROOT, 'playbooks', 'mitigate.yml')
DYING = 200


def _module_result(proc):
    # ad-hoc one-line output: "vmguest | SUCCESS => {...}"
    return json.loads(proc.stdout.strip().splitlines()[-1].split('=>', 1)[1])


def _vmstat_drops(guest):
    fields = dict(line.split() for line in guest.run('cat /proc/vmstat').stdout.splitlines())
    return int(fields['drop_pagecache']), int(fields['drop_slab'])


def _probe_and_mitigate(guest, ansible, tmp_path, request, hierarchy):
    lab = json.loads(guest.run(['python3', '/root/memcg_lab.py', str(DYING), '/var/tmp/memcg-lab']).stdout)
    assert lab['unified'] is (hierarchy == 'v2'), lab

    start = time.monotonic()
    probe = _module_result(ansible('nodeops.memcg.memcg_probe', 'cpu_interval=0'))
    record(request, 'memcg_probe (%s)' % hierarchy, time.monotonic() - start)
    memcg = probe['memcg']
    if hierarchy == 'v2':
        assert probe['cgroup']['layout'] == 'v2', probe['cgroup']
        assert memcg['source'] == 'cgroup.stat:nr_dying_descendants', memcg
        stat = guest.run('cat /sys/fs/cgroup/cgroup.stat').stdout
        kernel_dying = int(re.search(r'^nr_dying_descendants (\d+)$', stat, re.M).group(1))
        assert abs(memcg['dying'] - kernel_dying) <= 20, (memcg, stat)
    else:
        assert probe['cgroup']['layout'] in ('v1', 'hybrid'), probe['cgroup']
        assert probe['cgroup']['memory_mount'] == '/sys/fs/cgroup/memory', probe['cgroup']
        assert abs(memcg['total'] - lab['memory_num_cgroups']) <= 20, (memcg, lab)
    assert memcg['dying'] >= 0.9 * DYING, memcg
    assert memcg['total'] == memcg['live'] + memcg['dying'], memcg

    # the gate opens at half the dying memcgs made; the drop is real and shows in /proc/vmstat
    drops = _vmstat_drops(guest)
    report_dir = tmp_path / ('report-' + hierarchy)
    start = time.monotonic()
    result = ansible.playbook(MITIGATE, {
        'mitigate_hosts': 'workers', 'mitigate_report_dir': str(report_dir), 'mitigate_batch_pause': 0,
        'mitigate_thresholds': {'warn_dying': DYING // 2}, 'mitigate_allow_level_3': True,
    })
    record(request, 'mitigate.yml (%s)' % hierarchy, time.monotonic() - start)
    assert result.returncode == 0, result.stdout[-8000:]
    with open(report_dir / 'mitigate.json') as handle:
        row = json.load(handle)['nodes'][0]
    assert row['host'] == guest.name and row['status'] in ('mitigated', 'not_improved'), row
    assert row['before']['dying'] >= 0.9 * DYING and row['after'] is not None, row
    assert row['levels'][0] == 2, row
    after = _vmstat_drops(guest)
    assert after[1] > drops[1], (drops, after)  # level 2 dropped slab in the guest's kernel
    return row


def test_probe_and_mitigation_see_dying_memcgs_under_cgroup_v2_then_v1(guest, ansible, tmp_path, request):
    guest.copy_in(MEMCG_LAB, '/root/memcg_lab.py')
    assert guest.run('findmnt -rn -o FSTYPE /sys/fs/cgroup').stdout.split() == ['cgroup2']
    _probe_and_mitigate(guest, ansible, tmp_path, request, 'v2')

    guest.set_kernel_args('systemd.unified_cgroup_hierarchy=0')
    record(request, 'reboot with cgroup v1', guest.reboot())
    assert 'systemd.unified_cgroup_hierarchy=0' in guest.run('cat /proc/cmdline').stdout
    assert guest.run('findmnt -rn -o FSTYPE /sys/fs/cgroup/memory').stdout.split() == ['cgroup']
    _probe_and_mitigate(guest, ansible, tmp_path, request, 'v1')
