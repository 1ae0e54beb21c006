# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.modules import drop_caches
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree
from ansible_collections.nodeops.memcg.tests.unit.utils.module_harness import run_module

OLD = 1000000000
LIVE = len(tree.KUBEPODS_V1)
DROP = 'proc/sys/vm/drop_caches'
REAPER = 'sys/kernel/mm/memcg_reaper'


def node(tmp_path, dying=6000, reaper_background=None, release='5.4.0-100-generic'):
    """A v1 node under tmp_path with a regular drop_caches file (and the reaper when reaper_background is set)."""
    root = tree.build_node(tmp_path, memory_num_cgroups=LIVE + dying, release=release, cmdline='ro quiet\0')
    files = {DROP: '0\n'}
    if reaper_background is not None:
        files.update({REAPER + '/reap': '', REAPER + '/reap_background': reaper_background,
                      REAPER + '/scan_interval': '5\n', REAPER + '/pages_scan': '1310720\n'})
    for path, text in files.items():
        os.utime(tree.write(root, path, text), (OLD, OLD))
    return root


def state_of(root, path):
    full = os.path.join(root, path)
    with open(full) as handle:
        return handle.read(), os.stat(full).st_mtime


def untouched(root, path, content):
    return state_of(root, path) == (content, OLD)


def drop(root, check_mode=False, **args):
    args.setdefault('settle_seconds', 0)
    args['root'] = root
    result, failed = run_module(drop_caches.main, args, check_mode=check_mode)
    assert not failed, result.get('msg')
    return result


def documented_return_keys():
    return set(yaml.safe_load(drop_caches.RETURN))


def test_check_mode_touches_nothing(tmp_path):
    root = node(tmp_path)
    result = drop(root, check_mode=True)
    assert result['changed'] is True
    assert result['would_drop'] is True and result['dropped'] is False
    assert result['after'] is None and result['delta'] is None
    assert result['gate']['verdict'] == 'warn' and result['gate']['open'] is True
    assert result['gate']['decision'] == 'Verdict warn reaches min_verdict warn: would drop caches (level 2).'
    assert result['before']['memcg'] == {'total': LIVE + 6000, 'live': LIVE, 'dying': 6000}
    assert result['sync']['ran'] is False
    assert untouched(root, DROP, '0\n')


def test_real_run_writes_the_level_and_measures_after(tmp_path):
    root = node(tmp_path)
    result = drop(root)
    assert result['changed'] is True and result['dropped'] is True and result['would_drop'] is True
    assert state_of(root, DROP)[0] == '2'
    assert result['level'] == 2
    assert result['after']['memcg'] == result['before']['memcg']  # a fixture tree releases nothing
    assert result['delta']['dying'] == 0 and result['delta']['slab_kb'] == 0
    assert result['sync'] == {'requested': True, 'ran': False,
                              'note': 'root is %s, not /: sync skipped (a tree under another root needs none)' % root}
    assert result['reaper']['available'] is False
    assert set(result) - {'invocation'} == documented_return_keys()


@pytest.mark.parametrize('level', [1, 3])
def test_other_levels(tmp_path, level):
    root = node(tmp_path)
    result = drop(root, level=level)
    assert result['level'] == level and state_of(root, DROP)[0] == str(level)


def test_gated_off_then_forced(tmp_path):
    root = node(tmp_path, dying=12)
    result = drop(root)
    assert result['gate']['verdict'] == 'ok'
    assert result['changed'] is False and result['dropped'] is False and result['after'] is None
    assert untouched(root, DROP, '0\n')

    result = drop(root, force=True)
    assert result['gate']['forced'] is True
    assert result['changed'] is True and result['dropped'] is True
    assert state_of(root, DROP)[0] == '2'


def test_thresholds_open_the_gate_and_min_verdict_closes_it(tmp_path):
    root = node(tmp_path, dying=12)
    result = drop(root, thresholds={'warn_dying': 10}, min_verdict='critical')
    assert result['gate']['verdict'] == 'warn' and result['changed'] is False
    assert result['gate']['thresholds']['warn_dying'] == 10
    assert untouched(root, DROP, '0\n')
    result = drop(root, thresholds={'warn_dying': 10})
    assert result['dropped'] is True
    assert result['gate']['reasons'] == ['12 dying memory cgroups exceed warn_dying (10).']


@pytest.mark.parametrize('mode, reap, dropped', [
    ('before', '1', '2'),
    ('instead', '1', '0\n'),
    ('never', '', '2'),
])
def test_reaper_modes(tmp_path, mode, reap, dropped):
    root = node(tmp_path, reaper_background='0\n')
    result = drop(root, reaper=mode)
    assert result['changed'] is True
    assert result['reaper']['available'] is True
    assert result['reaper']['reaped'] is (reap == '1')
    assert result['dropped'] is (dropped == '2')
    assert state_of(root, REAPER + '/reap')[0] == reap
    assert state_of(root, DROP)[0] == dropped
    assert untouched(root, REAPER + '/reap_background', '0\n')


def test_reaper_check_mode_and_background(tmp_path):
    root = node(tmp_path, dying=12, reaper_background='0\n')
    result = drop(root, check_mode=True, reaper_background=True)
    assert result['changed'] is True
    assert result['reaper']['background'] == {'requested': True, 'before': 0, 'after': 1}
    assert untouched(root, REAPER + '/reap_background', '0\n')

    result = drop(root, reaper_background=True)
    assert result['changed'] is True and result['dropped'] is False  # the gate is closed
    assert state_of(root, REAPER + '/reap_background')[0] == '1'
    assert untouched(root, REAPER + '/reap', '')

    result = drop(root, reaper_background=True)
    assert result['changed'] is False
    assert result['reaper']['background'] == {'requested': True, 'before': 1, 'after': 1}


@pytest.mark.parametrize('args, named', [
    ({'level': 4}, '4'),
    ({'thresholds': {'warn_dying': -5}}, 'warn_dying must not be negative, got -5'),
    ({'thresholds': {'warn_read_ms': 2000}}, 'warn_read_ms'),
    ({'min_verdict': 'major'}, 'major'),
    ({'settle_seconds': -1.5}, 'settle_seconds must be between 0 and 300, got -1.5'),
    ({'cpu_interval': -1}, 'cpu_interval must be between 0 and 60 seconds, got -1.0'),
    ({'cpu_interval': float('inf')}, 'cpu_interval must be a finite number, got inf'),
    ({'read_timeout': 0.5}, 'read_timeout must be over critical_read_ms (1.0 s)'),
    ({'reaper': 'always'}, 'always'),
    ({'stat_reads': 9}, '9'),
])
def test_bad_input_fails_naming_the_value_and_writes_nothing(tmp_path, args, named):
    root = node(tmp_path, reaper_background='0\n')
    args = dict(args, root=root, force=True, reaper_background=True)
    result, failed = run_module(drop_caches.main, args)
    assert failed
    assert named in result['msg']
    assert untouched(root, DROP, '0\n')
    assert untouched(root, REAPER + '/reap', '')
    assert untouched(root, REAPER + '/reap_background', '0\n')


def test_missing_drop_caches_file_fails_with_the_path(tmp_path):
    root = node(tmp_path)
    os.remove(os.path.join(root, DROP))
    result, failed = run_module(drop_caches.main, {'root': root, 'settle_seconds': 0})
    assert failed
    assert os.path.join(root, DROP) in result['msg']
    assert 'MemcgError' in result['exception']
    assert not os.path.exists(os.path.join(root, DROP))


class FakeModule(object):
    def __init__(self, path='/usr/bin/sync', rc=0, err=''):
        self.path, self.rc, self.err = path, rc, err
        self.commands = []

    def get_bin_path(self, name):
        assert name == 'sync'
        return self.path

    def run_command(self, args):
        self.commands.append(args)
        return self.rc, '', self.err


def test_sync_runs_the_binary_as_an_argument_list():
    module = FakeModule()
    drop_caches.sync_with(module)()
    assert module.commands == [['/usr/bin/sync']]


def test_sync_failures_raise():
    with pytest.raises(MemcgError) as caught:
        drop_caches.sync_with(FakeModule(rc=1, err='sync: error syncing\n'))()
    assert str(caught.value) == '/usr/bin/sync failed with rc 1: sync: error syncing'
    with pytest.raises(MemcgError) as caught:
        drop_caches.sync_with(FakeModule(path=None))()
    assert 'sync command was not found' in str(caught.value)
