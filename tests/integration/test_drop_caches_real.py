# -*- coding: utf-8 -*-
"""drop_caches through real ansible-playbook on this machine's kernel, with real dying memcgs.

What this kernel does (seen while writing the test, 200 dying memcgs whose files still exist):
`echo 3` without sync released none (the pages were dirty), `sync; echo 2` released none (page
cache pins them, not slab), `sync; echo 3` released them. So the open-gate run uses level 3 with
sync and asserts that some were released and that every figure matches the kernel's own counters,
never a fixed count. /proc/vmstat's drop_pagecache and drop_slab count writes to drop_caches:
they show whether the module wrote the file (other drop_caches writers on the machine would
disturb that, so the counters are only compared across one module run each).
"""

from __future__ import annotations

import json
import os

import pytest

from conftest import localhost_inventory, run_playbook
import memcg_lab

DYING = 200
TOLERANCE = 20  # other cgroups come and go on the machine while the test runs


def vmstat_drops():
    """(drop_pagecache, drop_slab) from /proc/vmstat: how often drop_caches was written."""
    with open('/proc/vmstat') as vmstat:
        counters = dict(line.split() for line in vmstat)
    return int(counters['drop_pagecache']), int(counters['drop_slab'])


def drop(env, tmp_path, name, args, check_mode=False):
    """Run nodeops.memcg.drop_caches with args in a one-task playbook; return its registered result."""
    out = tmp_path / ('%s.json' % name)
    playbook = tmp_path / ('%s.yml' % name)
    playbook.write_text(
        '- hosts: localhost\n'
        '  gather_facts: false\n'
        '  tasks:\n'
        '    - name: Drop caches when the probe says so\n'
        '      nodeops.memcg.drop_caches: %s\n'
        '      check_mode: %s\n'
        '      register: dropped\n'
        '    - name: Keep the result\n'
        '      ansible.builtin.copy:\n'
        '        content: "{{ dropped | to_json }}"\n'
        '        dest: %s\n'
        '        mode: "0600"\n'
        % (json.dumps(args), 'true' if check_mode else 'false', json.dumps(str(out))))
    completed = run_playbook(env, str(playbook), localhost_inventory(str(tmp_path)), {})
    assert completed.returncode == 0, completed.stdout
    return json.loads(out.read_text())


@pytest.mark.usefixtures('require_root_v1')
def test_drop_caches_on_the_real_kernel(ansible_env, tmp_path):
    baseline = memcg_lab.memory_num_cgroups()
    with memcg_lab.MemcgLab() as lab:
        lab.add_dying(DYING)  # their files stay: page cache keeps the memcgs dying
        created = memcg_lab.memory_num_cgroups()
        assert created - baseline >= 0.9 * DYING, (baseline, created)
        # warn from half the memcgs made here on (a healthy machine has a few dying ones of its own)
        warn = {'warn_dying': DYING // 2, 'warn_dying_ratio': 10 ** 6, 'critical_dying': 10 ** 7}

        # check mode: decides to drop, writes nothing
        drops = vmstat_drops()
        checked = drop(ansible_env, tmp_path, 'check', {'level': 3, 'thresholds': warn}, check_mode=True)
        assert vmstat_drops() == drops, 'check mode wrote drop_caches'
        assert checked['changed'] is True and checked['would_drop'] is True
        assert checked['dropped'] is False and checked['after'] is None and checked['delta'] is None
        assert checked['gate']['verdict'] == 'warn' and checked['gate']['open'] is True, checked['gate']
        assert 'would drop caches (level 3)' in checked['gate']['decision']
        assert checked['sync']['ran'] is False
        assert abs(checked['before']['memcg']['total'] - created) <= TOLERANCE

        # real run: sync, drop page cache and slab, settle, measure again
        kernel_before = memcg_lab.memory_num_cgroups()
        drops = vmstat_drops()
        result = drop(ansible_env, tmp_path, 'drop', {'level': 3, 'thresholds': warn, 'settle_seconds': 1.0})
        kernel_after = memcg_lab.memory_num_cgroups()
        pagecache, slab = vmstat_drops()
        assert pagecache > drops[0] and slab > drops[1], 'level 3 drops page cache and slab (/proc/vmstat)'
        assert result['changed'] is True and result['dropped'] is True and result['level'] == 3
        assert result['gate']['verdict'] == 'warn' and result['gate']['forced'] is False
        assert any('warn_dying' in reason for reason in result['gate']['reasons']), result['gate']
        assert result['sync'] == {'requested': True, 'ran': True, 'note': 'ran sync before drop_caches'}
        assert result['reaper']['available'] is False  # not an Alibaba kernel: reported, not an error

        before, after, delta = result['before'], result['after'], result['delta']
        assert abs(before['memcg']['total'] - kernel_before) <= TOLERANCE, (before, kernel_before)
        assert before['memcg']['dying'] >= 0.9 * DYING, before
        assert abs(after['memcg']['total'] - kernel_after) <= TOLERANCE, (after, kernel_after)
        for key in ('dying', 'total'):
            assert delta[key] == after['memcg'][key] - before['memcg'][key]
        for key in ('slab_kb', 'sreclaimable_kb', 'sunreclaim_kb'):
            assert before['slab'][key] > 0 and after['slab'][key] > 0
            assert delta[key] == after['slab'][key] - before['slab'][key]
        assert before['root_read_ms'] is not None and after['root_read_ms'] is not None
        assert delta['root_read_ms'] == round(after['root_read_ms'] - before['root_read_ms'], 3)
        # After sync, level 3 frees the clean page cache that pinned them: some must be gone.
        assert delta['dying'] < 0, ('sync; echo 3 released no dying memcg', before, after)
        print('real kernel %s: dying %d -> %d (delta %d), SReclaimable %d -> %d kB, '
              'root memory.stat %.3f -> %.3f ms' % (
                  os.uname().release, before['memcg']['dying'], after['memcg']['dying'], delta['dying'],
                  before['slab']['sreclaimable_kb'], after['slab']['sreclaimable_kb'],
                  before['root_read_ms'], after['root_read_ms']))
    assert not os.path.exists(lab.parent) and not os.path.exists(lab.data_dir)

    # re-run with the default thresholds: this machine is healthy, the gate stays closed
    drops = vmstat_drops()
    again = drop(ansible_env, tmp_path, 'rerun', {'settle_seconds': 1.0})
    assert vmstat_drops() == drops, 'a closed gate wrote drop_caches'
    assert again['gate']['verdict'] == 'ok' and again['gate']['open'] is False, again['gate']
    assert again['changed'] is False and again['dropped'] is False and again['would_drop'] is False
    assert again['after'] is None and again['delta'] is None
    assert again['sync']['ran'] is False
    assert abs(again['before']['memcg']['total'] - memcg_lab.memory_num_cgroups()) <= TOLERANCE


def test_bad_input_is_refused_before_anything_runs(ansible_env, tmp_path):
    drops = vmstat_drops()
    for args, named in (({'level': 4}, 'got: 4'), ({'settle_seconds': -1}, 'settle_seconds'),
                        ({'min_verdict': 'major'}, 'major'), ({'thresholds': {'warn_dying': -1}}, 'warn_dying')):
        playbook = tmp_path / 'bad.yml'
        playbook.write_text(
            '- hosts: localhost\n  gather_facts: false\n  tasks:\n'
            '    - nodeops.memcg.drop_caches: %s\n' % json.dumps(dict(args, force=True)))
        completed = run_playbook(ansible_env, str(playbook), localhost_inventory(str(tmp_path)), {})
        assert completed.returncode != 0, completed.stdout
        assert named in completed.stdout, completed.stdout
    assert vmstat_drops() == drops
