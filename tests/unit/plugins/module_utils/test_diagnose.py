# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils import diagnose
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

# perf script -F comm,tid,ip,sym output as perf 6.1 prints it (a 3.10 reader and a Go runtime sample).
PERF_TEXT = '''kubelet  4242
\tffffffff811c2b10 mem_cgroup_iter+0x30
\tffffffff811c5a41 memcg_stat_show+0x1a1
\tffffffff81204f10 seq_read+0x110
\tffffffff8120a2b3 vfs_read+0x93
\t          4b2c1d syscall.Syscall
\t          4b0000 [unknown]

kubelet  4243
\tffffffff811b0010 mem_cgroup_read_stat
\tffffffff811c5a41 memcg_stat_show+0x1a1
\tffffffff81204f10 seq_read+0x110

kubelet  4244
\t          43f0a1 runtime.scanobject
\t          43e000 runtime.gcDrain

kubelet  4245
\tffffffff8109a000 [unknown]
'''


def test_kernel_generation_and_the_function_table():
    assert diagnose.kernel_generation('3.10.0-1160.el7.x86_64') == '3.10'
    assert diagnose.kernel_generation('4.19.0-25-amd64') == '4.x'
    assert diagnose.kernel_generation('5.4.17-2136.el7uek') == '5.x'
    assert diagnose.kernel_generation('6.18.44-fc') == '6.x'
    assert diagnose.kernel_generation('2.6.32-754.el6') is None
    assert diagnose.stat_functions('3.10.0-1160.el7.x86_64') == ('3.10', diagnose.STAT_FUNCTIONS['3.10'])
    generation, names = diagnose.stat_functions('garbage')
    assert generation is None and 'memcg1_stat_format' in names and 'memcg_stat_show' in names


def test_perf_script_is_parsed_and_the_share_counted_once_per_sample():
    samples = diagnose.parse_perf_script(PERF_TEXT)
    assert [sample['tid'] for sample in samples] == [4242, 4243, 4244, 4245]
    assert samples[0]['frames'][0] == (True, 'mem_cgroup_iter')
    assert samples[0]['frames'][-1] == (False, None)
    found = diagnose.perf_evidence(samples, diagnose.STAT_FUNCTIONS['3.10'])
    assert found['samples'] == 4 and found['kernel_samples'] == 3 and found['stat_samples'] == 2
    assert found['share_percent'] == 50.0 and found['kernel_symbols'] is True
    # the innermost stat function of each sample
    assert found['stat_functions_seen'] == [{'function': 'mem_cgroup_iter', 'samples': 1},
                                            {'function': 'mem_cgroup_read_stat', 'samples': 1}]
    assert {'function': 'runtime.scanobject', 'samples': 1} in found['top_functions']
    assert diagnose.parse_perf_script(PERF_TEXT, max_samples=1)[0]['tid'] == 4242
    assert len(diagnose.parse_perf_script(PERF_TEXT, max_samples=1)) == 1


def test_perf_without_kernel_symbols_is_noticed():
    found = diagnose.perf_evidence(diagnose.parse_perf_script('kubelet 1\n\tffffffff8109a000 [unknown]\n'), ['x'])
    assert found['kernel_samples'] == 1 and found['kernel_symbols'] is False and found['share_percent'] == 0.0


def snapshot(state='S', stack=(), wchan=None, stat_open=()):
    return {'threads': [{'tid': 1, 'state': state, 'stack': list(stack), 'wchan': wchan}],
            'stat_open': list(stat_open), 'stack_readable': True}


def test_fallback_counts_stacks_wchan_and_open_memory_stat():
    snaps = [snapshot('R', stat_open=['/sys/fs/cgroup/memory/memory.stat']),
             snapshot('D', stack=['mem_cgroup_iter', 'memcg_stat_show', 'seq_read']),
             snapshot('S', wchan='memcg_stat_show'),
             snapshot('S', stack=['futex_wait_queue', 'do_futex'])]
    found = diagnose.fallback_evidence(snaps, diagnose.STAT_FUNCTIONS['3.10'])
    assert found['samples'] == 4 and found['stat_samples'] == 3 and found['share_percent'] == 75.0
    assert found['open_samples'] == 1 and found['stack_samples'] == 2 and found['running_samples'] == 1
    assert found['open_files'] == [{'path': '/sys/fs/cgroup/memory/memory.stat', 'samples': 1}]
    assert {'function': 'mem_cgroup_iter', 'samples': 1} in found['stat_functions_seen']


def test_parse_stack():
    text = '[<0>] mem_cgroup_iter+0x30/0x60\n[<0>] memcg_stat_show+0x1a1/0x5e0\n'
    assert diagnose.parse_stack(text) == ['mem_cgroup_iter', 'memcg_stat_show']
    assert diagnose.parse_stack(None) == []


def test_task_snapshot_of_this_process_sees_an_open_memory_stat(tmp_path):
    proc = tmp_path / 'proc' / '77'
    (proc / 'task' / '77').mkdir(parents=True)
    (proc / 'task' / '77' / 'stat').write_text('77 (kubelet) R 1 2 3')
    (proc / 'task' / '77' / 'stack').write_text('[<0>] memcg_stat_show+0x1/0x2\n')
    (proc / 'task' / '77' / 'wchan').write_text('0')
    (proc / 'fd').mkdir()
    os.symlink('/sys/fs/cgroup/memory/kubepods/memory.stat', str(proc / 'fd' / '5'))
    os.symlink('/dev/null', str(proc / 'fd' / '0'))
    snap = diagnose.task_snapshot(77, root=str(tmp_path))
    assert snap == {'threads': [{'tid': 77, 'state': 'R', 'stack': ['memcg_stat_show'], 'wchan': None}],
                    'stat_open': ['/sys/fs/cgroup/memory/kubepods/memory.stat'], 'stack_readable': True}
    assert diagnose.task_snapshot(78, root=str(tmp_path)) is None


THRESHOLDS = diagnose.validate_thresholds()
BUSY = {'found': True, 'pid': 9, 'cpu_percent': 98.0, 'user_percent': 4.0, 'system_percent': 94.0}


@pytest.mark.parametrize('kubelet, evidence, expected, phrase', [
    ({'found': False, 'pid': None}, {}, 'unknown', 'not running'),
    (dict(BUSY, cpu_percent=None), {}, 'unknown', 'exited'),
    (dict(BUSY, cpu_percent=3.0, system_percent=1.0), {'method': 'perf', 'share_percent': 90, 'samples': 9},
     'not this', 'busy_cpu_percent'),
    (BUSY, {'method': 'none', 'error': 'perf is not installed on this node'}, 'unknown', 'perf is not installed'),
    (BUSY, {'method': 'perf', 'share_percent': 93.4, 'samples': 1980}, 'confirmed', '93.4% of 1980 perf samples'),
    (BUSY, {'method': 'proc', 'share_percent': 80.0, 'samples': 100}, 'confirmed', '/proc samples'),
    (dict(BUSY, user_percent=90.0, system_percent=8.0), {'method': 'proc', 'share_percent': 80.0, 'samples': 100},
     'likely', 'system_share_percent'),
    (BUSY, {'method': 'perf', 'share_percent': 12.0, 'samples': 100}, 'likely', 'likely_share_percent'),
    (BUSY, {'method': 'perf', 'share_percent': 2.0, 'samples': 100}, 'not this', 'look elsewhere'),
])
def test_conclusions(kubelet, evidence, expected, phrase):
    conclusion, reasons = diagnose.conclude(kubelet, evidence, THRESHOLDS)
    assert conclusion == expected
    assert phrase in ' '.join(reasons)


@pytest.mark.parametrize('thresholds, message', [
    ({'nope': 1}, "unknown diagnose threshold 'nope'"),
    ({'busy_cpu_percent': -1}, 'busy_cpu_percent must be a number >= 0, got -1'),
    ({'busy_cpu_percent': True}, 'busy_cpu_percent must be a number'),
    ({'likely_share_percent': 50}, 'likely_share_percent (50) must not exceed confirm_share_percent (25)'),
])
def test_bad_thresholds(thresholds, message):
    with pytest.raises(MemcgError) as error:
        diagnose.validate_thresholds(thresholds)
    assert message in str(error.value)


def counts(total, live):
    return {'total': total, 'live': live, 'dying': total - live, 'source': 'proc_cgroups_minus_live_dirs'}


def test_rates_and_forecast_on_a_rhel7_node():
    rate = diagnose.rates(counts(40000, 300), counts(40050, 310), 30.0)
    assert rate['created'] == 50 and rate['created_per_hour'] == 6000.0
    assert rate['dying_delta'] == 40 and rate['dying_per_hour'] == 4800.0
    found = diagnose.forecast(counts(40050, 310), rate, 20000, '3.10.0-1160.el7.x86_64')
    assert found['hours_to_critical'] == 0.0
    assert found['id_limit'] == 65535 and found['hours_to_id_limit'] == round((65535 - 40050) / 4800.0, 2)
    assert found['hours_back_after_drop'] == round(39740 / 4800.0, 2)
    assert 'already exceed critical_dying' in found['summary'][0]
    assert 'fails every cgroup mkdir at 65535' in found['summary'][1]


def test_forecast_when_growing_below_critical_and_when_not_growing():
    rate = diagnose.rates(counts(1000, 100), counts(1100, 100), 3600.0)
    found = diagnose.forecast(counts(1100, 100), rate, 20000, '5.15.0-91-generic')
    assert found['hours_to_critical'] == 190.0 and found['id_limit'] is None and found['hours_to_id_limit'] is None
    assert 'crosses critical_dying (20000) in 190.0 hours' in found['summary'][0]
    assert 'back in 10.0 hours' in found['summary'][1]
    assert diagnose.hours_text(0.25) == '15 min' and diagnose.hours_text(2) == '2.0 hours'
    flat = diagnose.rates(counts(1000, 100), counts(990, 100), 60.0)
    found = diagnose.forecast(counts(990, 100), flat, 20000, '5.15.0-91-generic')
    assert found['hours_to_critical'] is None and found['hours_back_after_drop'] is None
    assert 'did not grow' in found['summary'][0]
    unknown = diagnose.rates({'total': None}, counts(1, 1), 10.0)
    assert unknown['dying_per_hour'] is None
    assert 'no forecast' in diagnose.forecast(counts(1, 1), unknown, 20000, '')['summary'][0]


def make_tree(root, dirs):
    for path in dirs:
        os.makedirs(os.path.join(root, path.lstrip('/')))


@pytest.mark.parametrize('dirs, expected', [
    (['/m/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podb.slice/cri-containerd-1.scope',
      '/m/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poda.slice',
      '/m/kubepods.slice/kubepods-podc.slice', '/m/kubepods.slice/kubepods-pode.slice'],
     [('root', '/m'), ('kubepods', '/m/kubepods.slice'),
      ('qos:burstable', '/m/kubepods.slice/kubepods-burstable.slice'),
      ('qos:besteffort', '/m/kubepods.slice/kubepods-besteffort.slice'),
      ('pod', '/m/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poda.slice'),
      ('pod', '/m/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podb.slice'),
      ('pod', '/m/kubepods.slice/kubepods-podc.slice')]),
    (['/m/kubepods/burstable/pod1234-56', '/m/kubepods/besteffort', '/m/kubepods/pod99'],
     [('root', '/m'), ('kubepods', '/m/kubepods'), ('qos:burstable', '/m/kubepods/burstable'),
      ('qos:besteffort', '/m/kubepods/besteffort'), ('pod', '/m/kubepods/burstable/pod1234-56'),
      ('pod', '/m/kubepods/pod99')]),
    (['/m/system.slice'], [('root', '/m')]),
])
def test_stat_levels_for_both_cgroup_drivers(tmp_path, dirs, expected):
    make_tree(str(tmp_path), dirs)
    cgroup = {'layout': 'v1', 'memory_mount': '/m', 'unified_mount': None}
    assert diagnose.stat_levels(cgroup, root=str(tmp_path), max_pods=3) == expected


def test_time_levels_reads_until_the_deadline(tmp_path):
    make_tree(str(tmp_path), ['/m/kubepods'])
    (tmp_path / 'm' / 'memory.stat').write_text('cache 1\n')
    levels = [('root', '/m'), ('kubepods', '/m/kubepods')]
    rows = diagnose.time_levels(levels, deadline=10 ** 9, warn_ms=100, root=str(tmp_path))
    assert [row['status'] for row in rows] == ['read', 'missing']
    assert rows[0]['ms'] >= 0 and rows[0]['path'] == '/m/memory.stat'
    rows = diagnose.time_levels(levels, deadline=0, warn_ms=100, root=str(tmp_path), clock=lambda: 1.0)
    assert [row['status'] for row in rows] == ['skipped', 'skipped']


def test_call_with_timeout():
    assert diagnose.call_with_timeout(lambda: 42, 5) == ('done', 42)
    outcome, error = diagnose.call_with_timeout(lambda: 1 // 0, 5)
    assert outcome == 'error' and isinstance(error, ZeroDivisionError)
    assert diagnose.call_with_timeout(lambda: __import__('time').sleep(2), 0.05) == ('timeout', None)


def test_transient_units_and_live_by_top(tmp_path):
    assert diagnose.transient_units(str(tmp_path)) is None
    transient = tmp_path / 'run' / 'systemd' / 'transient'
    transient.mkdir(parents=True)
    for name in ('run-r1.scope', 'run-r2.scope', 'run-u3.service'):
        (transient / name).write_text('')
    assert diagnose.transient_units(str(tmp_path)) == {'total': 3, 'by_type': {'scope': 2, 'service': 1}}
    make_tree(str(tmp_path), ['/m/kubepods/burstable', '/m/system.slice'])
    cgroup = {'layout': 'v1', 'memory_mount': '/m', 'unified_mount': None}
    assert diagnose.live_by_top(cgroup, str(tmp_path)) == {'kubepods': 2, 'system.slice': 1}


@pytest.mark.parametrize('kwargs, message', [
    ({'duration_s': 0}, 'duration must be positive'),
    ({'duration_s': 10, 'timeout_s': 12}, 'timeout (12 s) must exceed duration (10 s) by at least 5 s'),
    ({'method': 'ebpf'}, "method must be auto, perf or proc, got 'ebpf'"),
    ({'max_pods': -1}, 'max_pods must not be negative'),
])
def test_collect_refuses_bad_input_before_measuring(kwargs, message):
    with pytest.raises(MemcgError) as error:
        diagnose.collect(root='/nonexistent-root', **kwargs)
    assert message in str(error.value)


def test_collect_falls_back_to_proc_when_perf_fails(tmp_path):
    """A real diagnosis of this test process, with a 'perf' that always fails (/bin/false)."""
    result = diagnose.collect(kubelet_pid=os.getpid(), duration_s=0.3, timeout_s=6, perf='/bin/false',
                              sleep_binary='sleep', workdir=str(tmp_path))
    evidence = result['evidence']
    assert evidence['tried'] == ['perf', 'proc'] and evidence['method'] == 'proc', evidence
    assert evidence['error'].startswith('perf: perf record failed (rc 1)'), evidence['error']
    assert evidence['samples'] >= 1 and result['kubelet']['found'] and result['timing']['within_budget']
    assert 'open memory.stat file' in evidence['visibility']
