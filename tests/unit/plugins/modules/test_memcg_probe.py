# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

import pytest

from ansible_collections.nodeops.memcg.plugins.modules import kernel_check
from ansible_collections.nodeops.memcg.plugins.modules.memcg_probe import main
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree
from ansible_collections.nodeops.memcg.tests.unit.utils.module_harness import run_module

from ansible_collections.nodeops.memcg.tests.unit.plugins.modules.test_kernel_check import DPKG_OUTPUT, FakeTools

RESULT_KEYS = {'changed', 'kernel', 'cgroup', 'memcg', 'read_latency', 'slab', 'dentry', 'slabinfo',
               'kubelet', 'kmem_leak', 'verdict', 'reasons', 'thresholds', 'installed_kernels',
               'boot_default', 'textfile'}


def measured(result):
    """The result without the parts that vary run to run (timings)."""
    result = dict(result)
    result['read_latency'] = dict((name, None if value is None else value['path'])
                                  for name, value in result['read_latency'].items())
    result.pop('invocation', None)
    return result


def test_probe_el7_node(tmp_path):
    root = tree.build_node(tmp_path, memory_num_cgroups=68700)
    result, failed = run_module(main, {'root': root, 'cpu_interval': 0})
    assert not failed, result.get('msg')
    assert RESULT_KEYS <= set(result)
    assert result['changed'] is False
    assert (result['installed_kernels'], result['boot_default'], result['textfile']) == ([], None, None)
    assert result['kernel']['release'] == '3.10.0-1160.el7.x86_64'
    assert result['kernel']['status'] == 'severe'
    assert result['cgroup']['layout'] == 'v1'
    assert result['memcg'] == {'total': 68700, 'live': 8, 'dying': 68692, 'source': 'proc_cgroups_minus_live_dirs'}
    assert result['read_latency']['root']['reads'] == 1
    assert result['kubelet']['found'] is True and result['kubelet']['pid'] == 4321
    assert result['kmem_leak']['suspected'] is True
    assert result['verdict'] == 'critical'
    assert result['reasons'][0].startswith('68692 dying memory cgroups exceed critical_dying (20000)')


def test_check_mode_returns_the_same(tmp_path):
    root = tree.build_node(tmp_path, layout='hybrid', memory_num_cgroups=12)
    args = {'root': root, 'cpu_interval': 0, 'stat_reads': 2}
    normal, failed = run_module(main, args)
    assert not failed
    checked, failed = run_module(main, args, check_mode=True)
    assert not failed
    assert checked['changed'] is False
    assert measured(checked) == measured(normal)
    assert checked['read_latency']['kubepods']['reads'] == 2


def test_thresholds_and_policy_overrides_are_applied(tmp_path):
    root = tree.build_node(tmp_path, release='5.4.17-2136.300.7.el8uek.x86_64', memory_num_cgroups=30,
                           cmdline='ro quiet\0')
    override = {'match': r'el8uek', 'stream': 'lab', 'status': 'severe', 'reason': 'lab override',
                'source': 'test'}
    result, failed = run_module(main, {'root': root, 'cpu_interval': 0, 'stat_reads': 0,
                                       'thresholds': {'warn_dying': 10, 'critical_dying': 20},
                                       'policy_overrides': [override]})
    assert not failed, result.get('msg')
    assert result['kernel']['stream'] == 'lab' and result['kernel']['status'] == 'severe'
    assert result['thresholds']['warn_dying'] == 10 and result['thresholds']['warn_read_ms'] == 100
    assert result['verdict'] == 'critical'
    assert result['reasons'][0].startswith('22 dying memory cgroups exceed critical_dying (20)')


@pytest.mark.parametrize('thresholds, named', [
    ({'warn_dying': -5}, 'warn_dying'),
    ({'warn_read_ms': 2000}, 'warn_read_ms'),
    ({'critical_dying': 'lots'}, 'critical_dying'),
    ({'warn_dyin': 5}, 'warn_dyin'),
])
def test_bad_thresholds_fail_naming_the_key(tmp_path, thresholds, named):
    root = tree.build_node(tmp_path)
    result, failed = run_module(main, {'root': root, 'cpu_interval': 0, 'thresholds': thresholds})
    assert failed
    assert named in result['msg']


def test_stat_reads_out_of_range_fails(tmp_path):
    result, failed = run_module(main, {'root': str(tmp_path), 'stat_reads': 6})
    assert failed
    assert 'stat_reads' in result['msg']


def test_missing_proc_fails_with_path_and_traceback(tmp_path):
    result, failed = run_module(main, {'root': str(tmp_path), 'cpu_interval': 0})
    assert failed
    assert 'osrelease' in result['msg']
    assert 'MemcgError' in result['exception']


def test_list_installed_returns_what_kernel_check_returns(tmp_path):
    root = tree.build_node(tmp_path, release='4.19.0-26-amd64')
    os.makedirs(os.path.join(root, 'boot/grub'))
    with open(os.path.join(root, 'boot/grub/grubenv'), 'w') as handle:
        handle.write('saved_entry=gnulinux-4.19.0-26-amd64-advanced-0a1b\n')
    tools = FakeTools({'rpm': (0, '', ''), 'dpkg-query': (0, DPKG_OUTPUT, '')})
    with tools.patch():
        probe, failed = run_module(main, {'root': root, 'cpu_interval': 0, 'list_installed': True})
        assert not failed, probe.get('msg')
        check, failed = run_module(kernel_check.main, {'root': root})
    assert not failed
    assert [kernel['release'] for kernel in probe['installed_kernels']] == [
        '4.19.0-26-amd64', '5.10.0-0.deb10.16-amd64']
    assert probe['boot_default'] == '4.19.0-26-amd64'
    assert (probe['installed_kernels'], probe['boot_default']) == (check['installed_kernels'], check['boot_default'])
    assert probe['kernel'] == check['kernel']
    assert probe['changed'] is False


def textfile_setup(tmp_path):
    root = tree.build_node(tmp_path / 'node', memory_num_cgroups=68700)
    textfile_dir = tmp_path / 'textfile'
    textfile_dir.mkdir()
    return {'root': root, 'cpu_interval': 0, 'textfile_dir': str(textfile_dir)}, textfile_dir


def test_textfile_check_mode_reports_changed_and_writes_nothing(tmp_path):
    args, textfile_dir = textfile_setup(tmp_path)
    result, failed = run_module(main, args, check_mode=True)
    assert not failed, result.get('msg')
    assert result['changed'] is True
    assert result['textfile'] == {'path': str(textfile_dir / 'nodeops_memcg.prom'), 'written': False}
    assert os.listdir(str(textfile_dir)) == []


def test_textfile_is_written_atomically_and_rewritten_on_every_run(tmp_path):
    args, textfile_dir = textfile_setup(tmp_path)
    path = textfile_dir / 'nodeops_memcg.prom'
    stamps = []
    for dummy in range(2):
        result, failed = run_module(main, args)
        assert not failed, result.get('msg')
        # The content carries the probe time: every run is a change.
        assert result['changed'] is True
        assert result['textfile'] == {'path': str(path), 'written': True}
        assert os.listdir(str(textfile_dir)) == ['nodeops_memcg.prom']  # no temp file left
        text = path.read_text()
        assert re.search(r'^nodeops_memcg_total 68700$', text, re.M)
        assert re.search(r'^nodeops_memcg_verdict 2$', text, re.M)
        assert oct(os.stat(str(path)).st_mode & 0o777) == oct(0o644)
        stamps.append(re.search(r'^nodeops_memcg_probe_timestamp_seconds (\S+)$', text, re.M).group(1))
    assert float(stamps[1]) >= float(stamps[0]) > 0


@pytest.mark.parametrize('directory, named', [('relative/dir', "'relative/dir'"), ('/nonexistent/nodeops', '/nonexistent/nodeops')])
def test_bad_textfile_dir_fails_naming_it(tmp_path, directory, named):
    root = tree.build_node(tmp_path)
    result, failed = run_module(main, {'root': root, 'cpu_interval': 0, 'textfile_dir': directory})
    assert failed
    assert 'textfile' in result['msg'] and named in result['msg'], result['msg']


@pytest.mark.parametrize('args, message', [
    ({'root': ''}, "root must not be empty; leave it out for '/'"),
    ({'cpu_interval': float('inf')}, 'cpu_interval must be a finite number, got inf'),
    ({'cpu_interval': float('nan')}, 'cpu_interval must be a finite number, got nan'),
    ({'cpu_interval': 1e9}, 'cpu_interval must be between 0 and 60 seconds, got 1000000000.0'),
    ({'read_timeout': 0}, r'read_timeout must be over critical_read_ms (1.0 s)'),
    ({'read_timeout': 1e6}, 'read_timeout must be over 0.0 and at most 600.0 seconds, got 1000000.0'),
])
def test_strict_options_fail_before_reading(tmp_path, args, message):
    # tmp_path holds no /proc: an option that got through would fail on a read instead.
    result, failed = run_module(main, dict({'root': str(tmp_path)}, **args))
    assert failed and message in result['msg']


def test_memory_stat_that_never_answers_returns_on_time(tmp_path):
    root = tree.build_node(tmp_path, memory_num_cgroups=10, kubelet=None)
    stat_file = tree.write(root, '/sys/fs/cgroup/memory/memory.stat', '')
    os.unlink(stat_file)
    os.mkfifo(stat_file)
    result, failed = run_module(main, {'root': root, 'cpu_interval': 0, 'read_timeout': 1.2})
    assert not failed
    assert result['read_latency']['root']['timed_out'] is True and result['verdict'] == 'critical'
    assert result['read_timeout'] == 1.2
