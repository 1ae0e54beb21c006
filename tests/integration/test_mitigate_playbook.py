# -*- coding: utf-8 -*-
"""playbooks/mitigate.yml end to end: on fixture nodes (batching, gating, failures) and the real kernel."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

from conftest import REPO_ROOT, localhost_inventory, run_playbook
import memcg_lab

sys.path.insert(0, os.path.join(REPO_ROOT, 'tests', 'unit'))
from fixtures import memcg_tree  # noqa: E402  pylint: disable=wrong-import-position

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'mitigate.yml')
DROP = 'proc/sys/vm/drop_caches'


def fixture_node(base, name, num_cgroups):
    """A node tree whose dying count is num_cgroups minus its 8 live dirs; drop_caches a plain file."""
    root = memcg_tree.build_node(base / name, memory_num_cgroups=num_cgroups, release='5.4.0-150-generic',
                                 kubelet=None)
    memcg_tree.write(root, '/' + DROP, '')
    return root


def fixture_inventory(tmp_path, nodes):
    """Every node is this machine over the local connection, each with its own mitigate_root tree."""
    lines = ['[all:vars]', 'ansible_connection=local', 'ansible_python_interpreter=%s' % sys.executable, '[all]']
    lines += ['%s mitigate_root=%s' % (name, root) for name, root in sorted(nodes.items())]
    path = tmp_path / 'fixture-inventory.ini'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def load_report(report_dir):
    with open(os.path.join(report_dir, 'mitigate.json')) as handle:
        report = json.load(handle)
    return report, {node['host']: node for node in report['nodes']}


def drops_written(nodes):
    return {name for name, root in nodes.items() if open(os.path.join(root, DROP)).read()}


def test_only_needing_nodes_drop_in_batches_of_max_parallel(ansible_env, tmp_path):
    # 6,000 memcgs beside 8 live directories: dying is over the default warn_dying (5,000); 50 is not.
    nodes = {name: fixture_node(tmp_path, name, count) for name, count in
             (('n1', 6000), ('n2', 50), ('n3', 6000), ('n4', 6000), ('n5', 50))}
    inventory = fixture_inventory(tmp_path, nodes)
    extra = {'mitigate_report_dir': str(tmp_path / 'report'), 'mitigate_max_parallel': 2,
             'mitigate_batch_pause': 1, 'mitigate_settle_seconds': 0}

    check = run_playbook(ansible_env, PLAYBOOK, inventory, extra, '--check')
    assert check.returncode == 0, check.stdout
    assert drops_written(nodes) == set(), 'check mode wrote drop_caches'
    assert not os.path.exists(tmp_path / 'report'), 'check mode wrote the report'
    assert 'would_mitigate' in check.stdout

    result = run_playbook(ansible_env, PLAYBOOK, inventory, extra)
    assert result.returncode == 0, result.stdout
    assert drops_written(nodes) == {'n1', 'n3', 'n4'}
    assert all(open(os.path.join(nodes[name], DROP)).read() == '2' for name in ('n1', 'n3', 'n4'))
    # n1, n3 then n4: two batches of the drop play, one pause between them.
    drop_play = result.stdout.split('PLAY [Drop caches on the nodes that need it')[1:]
    assert len(drop_play) == 2, result.stdout
    assert sorted(re.findall(r'changed: \[(n\d)\]', drop_play[0].split('TASK [nodeops.memcg.mitigate : Add')[0])) == ['n1', 'n3']
    assert result.stdout.count('Pausing for 1 seconds') == 1
    report, rows = load_report(tmp_path / 'report')
    assert [rows[name]['status'] for name in sorted(rows)] == [
        'not_improved', 'not_needed', 'not_improved', 'not_improved', 'not_needed']
    assert report['summary']['hosts'] == 5 and report['summary']['not_needed'] == 2
    assert rows['n1']['before']['total'] == 6000 and rows['n1']['before']['dying'] == 6000 - 8
    assert rows['n1']['levels'] == [2]


def test_require_improvement_fails_a_node_that_did_not_get_better(ansible_env, tmp_path):
    # A fixture tree's figures do not move when drop_caches is written: the node cannot improve.
    nodes = {'stuck': fixture_node(tmp_path, 'stuck', 30000), 'fine': fixture_node(tmp_path, 'fine', 40)}
    result = run_playbook(ansible_env, PLAYBOOK, fixture_inventory(tmp_path, nodes), {
        'mitigate_report_dir': str(tmp_path / 'report'), 'mitigate_require_improvement': True,
        'mitigate_allow_level_3': True, 'mitigate_batch_pause': 0, 'mitigate_settle_seconds': 0})
    assert result.returncode != 0
    assert ('stuck: did not improve after drop_caches level 2, 3: verdict warn -> warn, '
            'dying memcgs 29992 -> 29992') in result.stdout
    assert re.search(r'fine\s+: ok=\d+ .*failed=0', result.stdout), result.stdout
    rows = load_report(tmp_path / 'report')[1]  # written before the failure
    assert rows['stuck']['status'] == 'not_improved' and rows['fine']['status'] == 'not_needed'


def test_bad_level_is_refused_before_anything_is_written(ansible_env, tmp_path):
    nodes = {'n1': fixture_node(tmp_path, 'n1', 30000)}
    result = run_playbook(ansible_env, PLAYBOOK, fixture_inventory(tmp_path, nodes),
                          {'mitigate_level': 4, 'mitigate_report_dir': ''})
    assert result.returncode != 0
    assert 'mitigate_level' in result.stdout and '4' in result.stdout
    assert drops_written(nodes) == set()


def vmstat_drops():
    with open('/proc/vmstat') as vmstat:
        fields = dict(line.split() for line in vmstat)
    return int(fields.get('drop_pagecache', 0)), int(fields.get('drop_slab', 0))


@pytest.mark.usefixtures('require_root_v1')
def test_real_kernel_mitigation_with_before_after_and_gated_rerun(ansible_env, tmp_path):
    report_dir = str(tmp_path / 'report')
    inventory = localhost_inventory(str(tmp_path))
    with memcg_lab.MemcgLab() as lab:
        lab.add_dying(300)
        baseline = memcg_lab.memory_num_cgroups()
        need = {'mitigate_report_dir': report_dir, 'mitigate_allow_level_3': True, 'mitigate_batch_pause': 0,
                'mitigate_thresholds': {'warn_dying': 100}}
        result = run_playbook(ansible_env, PLAYBOOK, inventory, need)
        assert result.returncode == 0, result.stdout
        rows = load_report(report_dir)[1]
        row = rows['localhost']
        assert row['status'] in ('mitigated', 'not_improved'), row
        assert abs(row['before']['total'] - baseline) <= 20
        assert row['before']['dying'] >= 290
        assert row['after'] is not None and row['levels'][0] == 2

    # Healthy now, default thresholds: the gate stays shut and nothing is written to drop_caches.
    drops = vmstat_drops()
    rerun = run_playbook(ansible_env, PLAYBOOK, inventory, {'mitigate_report_dir': report_dir})
    assert rerun.returncode == 0, rerun.stdout
    assert vmstat_drops() == drops
    assert re.search(r'localhost\s+: ok=\d+\s+changed=0', rerun.stdout), rerun.stdout
    assert load_report(report_dir)[1]['localhost']['status'] == 'not_needed'
