# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import time

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils import bounded, probe
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree

T = probe.DEFAULT_THRESHOLDS


def facts(dying=None, live=1000, root_ms=None, kubepods_ms=None, system_percent=None, kmem=False):
    def latency(name, ms):
        if ms is None:
            return None
        return {'path': '/sys/fs/cgroup/memory/%smemory.stat' % name, 'reads': 1, 'ms': [ms], 'max_ms': ms,
                'slow': ms > T['warn_read_ms']}
    return {
        'memcg': {'total': None if dying is None else dying + live, 'live': live, 'dying': dying,
                  'source': 'proc_cgroups_minus_live_dirs'},
        'read_latency': {'root': latency('', root_ms), 'kubepods': latency('kubepods/', kubepods_ms)},
        'kubelet': {'found': system_percent is not None, 'pid': 4321, 'interval_s': 1.0,
                    'cpu_percent': system_percent, 'user_percent': 0.0, 'system_percent': system_percent},
        'kmem_leak': {'suspected': kmem, 'signs': ['memory num_cgroups 65000 is near the 65535 limit'] if kmem else []},
    }


# thresholds

def test_validate_thresholds_defaults_and_merge():
    assert probe.validate_thresholds() == T
    merged = probe.validate_thresholds({'warn_dying': 100, 'critical_read_ms': None})
    assert merged['warn_dying'] == 100 and merged['critical_read_ms'] == 1000


@pytest.mark.parametrize('bad, message', [
    ({'warn_dyin': 1}, "unknown threshold 'warn_dyin'"),
    ({'warn_dying': -1}, 'warn_dying must not be negative, got -1'),
    ({'warn_read_ms': 'fast'}, "warn_read_ms must be a number, got 'fast'"),
    ({'critical_dying': True}, 'critical_dying must be a number, got True'),
    ({'warn_dying_ratio': float('nan')}, 'warn_dying_ratio must be a number'),
    ({'warn_dying': 30000}, r'warn_dying \(30000\) must not exceed critical_dying \(20000\)'),
    ({'warn_read_ms': 5, 'critical_read_ms': 4}, r'warn_read_ms \(5\) must not exceed critical_read_ms \(4\)'),
])
def test_validate_thresholds_errors_name_the_key(bad, message):
    with pytest.raises(MemcgError, match=message):
        probe.validate_thresholds(bad)


# verdict rules

def test_ok_when_nothing_crossed():
    assert probe.evaluate(facts(dying=10, root_ms=1.5, kubepods_ms=1.0, system_percent=2.0), T, 'severe') == ('ok', [])


def test_ok_with_nothing_measured():
    assert probe.evaluate({}, T, 'unknown') == ('ok', [])


@pytest.mark.parametrize('dying, verdict', [(5000, 'ok'), (5001, 'warn'), (20000, 'warn'), (20001, 'critical')])
def test_dying_boundaries_on_severe_kernel(dying, verdict):
    result, reasons = probe.evaluate(facts(dying=dying, live=10000), T, 'severe')
    assert result == verdict
    assert len(reasons) == (0 if verdict == 'ok' else 1)


def test_dying_reason_names_value_and_threshold():
    verdict, reasons = probe.evaluate(facts(dying=5001, live=10000), T, 'severe')
    assert reasons == ['5001 dying memory cgroups exceed warn_dying (5000).']


@pytest.mark.parametrize('status', ['severe', 'degraded', 'unknown', None])
def test_critical_dying_on_kernels_whose_reads_scale(status):
    verdict, reasons = probe.evaluate(facts(dying=68460, live=240), T, status)
    assert verdict == 'critical'
    assert '68460 dying memory cgroups exceed critical_dying (20000)' in reasons[0]


def test_critical_dying_on_fixed_kernel_is_warn():
    verdict, reasons = probe.evaluate(facts(dying=68460, live=10000), T, 'fixed')
    assert verdict == 'warn'
    assert reasons == ['68460 dying memory cgroups exceed critical_dying (20000); the kernel is fixed, '
                       'so reads no longer scale with them, but each one still holds memory.']


@pytest.mark.parametrize('dying, live, verdict', [(1000, 100, 'ok'), (1001, 100, 'warn')])
def test_dying_ratio_boundary(dying, live, verdict):
    result, reasons = probe.evaluate(facts(dying=dying, live=live), T, 'severe')
    assert result == verdict
    if verdict == 'warn':
        assert reasons == ['1001 dying memory cgroups exceed warn_dying_ratio (10) times the 100 live ones.']


@pytest.mark.parametrize('dying, verdict', [(999, 'ok'), (1000, 'warn')])
def test_dying_ratio_counts_only_from_its_minimum(dying, verdict):
    # 999 dying beside 2 live is 500x, but a handful of zombies on a small node is noise.
    assert probe.evaluate(facts(dying=dying, live=2), T, 'severe')[0] == verdict


def test_ratio_and_count_both_reported():
    verdict, reasons = probe.evaluate(facts(dying=68460, live=240), T, 'fixed')
    assert verdict == 'warn'
    assert len(reasons) == 2 and '(10) times the 240 live ones' in reasons[1]


@pytest.mark.parametrize('ms, verdict', [(100.0, 'ok'), (100.001, 'warn'), (1000.0, 'warn'), (1000.5, 'critical')])
def test_root_read_boundaries_on_severe_kernel(ms, verdict):
    assert probe.evaluate(facts(root_ms=ms), T, 'degraded')[0] == verdict


def test_slow_read_reason_names_path_value_and_threshold():
    verdict, reasons = probe.evaluate(facts(root_ms=9000.0), T, 'severe')
    assert verdict == 'critical'
    assert reasons == ['The root memory.stat read (/sys/fs/cgroup/memory/memory.stat) took 9000.0 ms, '
                       'over critical_read_ms (1000 ms).']


def test_critical_read_on_fixed_kernel_is_warn():
    verdict, reasons = probe.evaluate(facts(root_ms=1500.0), T, 'fixed')
    assert verdict == 'warn'
    assert 'the kernel is fixed' in reasons[0] and '1500.0 ms' in reasons[0]


def test_kubepods_read_counts_when_root_is_not_timed():
    verdict, reasons = probe.evaluate(facts(kubepods_ms=250.0), T, 'severe')
    assert verdict == 'warn'
    assert reasons[0].startswith('The kubepods memory.stat read')


@pytest.mark.parametrize('system, verdict', [(50.0, 'ok'), (50.01, 'warn')])
def test_kubelet_system_cpu_boundary(system, verdict):
    result, reasons = probe.evaluate(facts(system_percent=system), T, 'severe')
    assert result == verdict
    if verdict == 'warn':
        assert reasons == ['kubelet (pid 4321) spent 50.01% of a CPU in the kernel, over warn_kubelet_system_percent (50%).']


def test_kmem_leak_is_at_least_warn():
    verdict, reasons = probe.evaluate(facts(kmem=True), T, 'fixed')
    assert verdict == 'warn'
    assert reasons[0].startswith('RHEL 7 kmem accounting leak suspected: memory num_cgroups 65000')


def test_custom_thresholds_apply():
    thresholds = probe.validate_thresholds({'warn_dying': 10, 'critical_dying': 20})
    assert probe.evaluate(facts(dying=21, live=1000), thresholds, 'severe')[0] == 'critical'


# kmem leak signs

EL7 = '3.10.0-1160.el7.x86_64'


def test_kmem_leak_suspected_near_cap_without_nokmem():
    result = probe.kmem_leak_signs(EL7, 65000, tree.CMDLINE_EL7.strip('\0'))
    assert result['suspected'] is True
    assert result['signs'] == [
        'kernel 3.10.0-1160.el7.x86_64 is a RHEL 7 3.10.0 kernel with kmem accounting',
        'kernel command line lacks cgroup.memory=nokmem',
        'memory num_cgroups 65000 is near the 65535 limit (over 60000)',
    ]


def test_kmem_leak_exactly_at_60000_is_not_near_cap():
    assert probe.kmem_leak_signs(EL7, 60000, 'ro quiet')['suspected'] is False


def test_kmem_leak_dmesg_sign():
    dmesg = '[12345.678] SLUB: Unable to allocate memory on node -1 (gfp=0x8020)\n'
    result = probe.kmem_leak_signs(EL7, 3000, 'ro quiet', dmesg)
    assert result['suspected'] is True
    assert result['signs'][-1] == 'dmesg shows "SLUB: Unable to allocate memory on node -1"'


def test_kmem_leak_not_suspected_with_nokmem():
    result = probe.kmem_leak_signs(EL7, 65000, 'ro quiet cgroup.memory=nokmem')
    assert result['suspected'] is False
    assert 'kernel command line lacks cgroup.memory=nokmem' not in result['signs']


@pytest.mark.parametrize('release', ['4.4.227-1.el7.elrepo.x86_64', '4.18.0-193.el8.x86_64', '5.15.0-91-generic', ''])
def test_kmem_leak_only_on_el7_3_10(release):
    assert probe.kmem_leak_signs(release, 65000, 'ro') == {'suspected': False, 'signs': []}


# collect on fixture nodes

DESIGN_KEYS = {'kernel', 'cgroup', 'memcg', 'read_latency', 'slab', 'dentry', 'slabinfo', 'kubelet',
               'kmem_leak', 'verdict', 'reasons', 'thresholds', 'read_timeout', 'kernel_log'}


def collect(root, clock_values, **kwargs):
    """collect() with a fake clock and no sleep.

    Each memory.stat read runs in a forked child (bounded.run) holding a copy of the clock, so
    every read and then the CPU sample in this process see the clock from its first value.
    """
    ticks = iter(clock_values)
    return probe.collect(root, clock=lambda: next(ticks), sleep=lambda s: None, ticks_per_s=100, **kwargs)


def test_collect_v1_el7_node(tmp_path):
    root = tree.build_node(tmp_path, memory_num_cgroups=65000, kubelet=(4321, 12, 188))
    result = collect(root, [0.0, 0.01], cpu_interval_s=2.0)
    assert set(result) == DESIGN_KEYS
    assert result['kernel']['status'] == 'severe'
    assert result['cgroup'] == {'layout': 'v1', 'memory_mount': '/sys/fs/cgroup/memory', 'unified_mount': None}
    assert result['memcg'] == {'total': 65000, 'live': 8, 'dying': 64992, 'source': 'proc_cgroups_minus_live_dirs'}
    assert result['read_latency']['root'] == {'path': '/sys/fs/cgroup/memory/memory.stat', 'reads': 1,
                                              'ms': [10.0], 'max_ms': 10.0, 'slow': False,
                                              'timed_out': False}
    assert result['read_latency']['kubepods'] == {'path': '/sys/fs/cgroup/memory/kubepods.slice/memory.stat',
                                                  'reads': 1, 'ms': [10.0], 'max_ms': 10.0, 'slow': False,
                                                  'timed_out': False}
    assert result['slab'] == {'slab_kb': 1412332, 'sreclaimable_kb': 1301220, 'sunreclaim_kb': 111112}
    assert result['dentry'] == {'nr_dentry': 1152113, 'nr_unused': 1108811, 'nr_negative': 0}
    assert result['slabinfo']['dentry']['num_objs'] == 1160000
    # the stat file does not change in the fixture: found, sampled, zero CPU
    assert result['kubelet'] == {'found': True, 'pid': 4321, 'interval_s': 2.0, 'cpu_percent': 0.0,
                                 'user_percent': 0.0, 'system_percent': 0.0, 'vanished': False,
                                 'timed_out': False}
    assert result['kmem_leak']['suspected'] is True
    assert result['verdict'] == 'critical'
    assert result['reasons'][0].startswith('64992 dying memory cgroups exceed critical_dying (20000)')
    assert result['thresholds'] == T


def test_collect_fixed_kernel_v2_node(tmp_path):
    root = tree.build_node(tmp_path, layout='v2', release='5.15.0-91-generic', cmdline='ro quiet\0',
                           cgroup_dirs=('', 'kubepods.slice'), kubelet=None, slabinfo=None)
    result = collect(root, [0.0, 0.01], cpu_interval_s=0, stat_reads=1)
    assert result['kernel']['status'] == 'fixed'
    assert result['cgroup']['layout'] == 'v2'
    assert result['memcg'] == {'total': 400, 'live': 2, 'dying': 398, 'source': 'cgroup.stat:nr_dying_subsys_memory'}
    assert result['read_latency']['root'] is None
    assert result['read_latency']['kubepods']['max_ms'] == 10.0
    assert result['slabinfo'] is None
    assert result['kubelet'] == {'found': False, 'pid': None, 'interval_s': 0, 'cpu_percent': None,
                                 'user_percent': None, 'system_percent': None, 'vanished': False,
                                 'timed_out': False}
    assert result['kmem_leak'] == {'suspected': False, 'signs': []}
    assert result['verdict'] == 'ok'  # 398 > 10 x 2 live, but under warn_dying_ratio_min
    assert result['reasons'] == []


def test_collect_no_timing_and_given_pid(tmp_path):
    root = tree.build_node(tmp_path, layout='hybrid', memory_num_cgroups=9, kubelet=None)
    tree.add_process(root, 777, 'hyperkube')
    result = probe.collect(root, kubelet_pid=777, cpu_interval_s=0, stat_reads=0)
    assert result['read_latency'] == {'root': None, 'kubepods': None}
    assert result['kubelet']['found'] is True and result['kubelet']['pid'] == 777
    assert result['kubelet']['cpu_percent'] is None
    assert result['verdict'] == 'ok'


def test_collect_given_pid_that_does_not_exist(tmp_path):
    root = tree.build_node(tmp_path, kubelet=None)
    result = probe.collect(root, kubelet_pid=31337, cpu_interval_s=0, stat_reads=0)
    assert result['kubelet']['found'] is False and result['kubelet']['pid'] == 31337


@pytest.mark.parametrize('kwargs, message', [
    ({'stat_reads': 6}, 'stat_reads must be between 0 and 5'),
    ({'cpu_interval_s': -1}, 'cpu_interval must be between 0 and 60 seconds, got -1'),
    ({'thresholds': {'critical_read_ms': -5}}, 'critical_read_ms must not be negative'),
])
def test_collect_rejects_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(MemcgError, match=message):
        probe.collect(str(tmp_path), **kwargs)


# time-bounded reads and strict options

def _replace_with_fifo(root, path):
    full = os.path.join(root, path.lstrip('/'))
    os.unlink(full)
    os.mkfifo(full)


def test_collect_with_a_memory_stat_that_never_answers_is_critical_on_time(tmp_path):
    root = tree.build_node(tmp_path, memory_num_cgroups=10, kubelet=None)
    _replace_with_fifo(root, '/sys/fs/cgroup/memory/memory.stat')
    start = time.time()
    result = probe.collect(root, cpu_interval_s=0, read_timeout_s=1.5)
    assert time.time() - start < 1.5 + bounded.KILL_GRACE_S + 1
    latency = result['read_latency']['root']
    assert latency['timed_out'] is True and latency['timeout_s'] == 1.5 and latency['reader']['reaped'] is True
    assert result['read_latency']['kubepods'] is None
    assert result['verdict'] == 'critical'
    assert result['reasons'] == ['The root memory.stat read (/sys/fs/cgroup/memory/memory.stat) did not finish '
                                 'within 1.5 s (read_timeout); it was abandoned after %s ms.' % latency['waited_ms']]


def test_timed_out_read_on_a_fixed_kernel_is_warn():
    latency = {'path': '/sys/fs/cgroup/memory.stat', 'reads': 0, 'ms': [], 'max_ms': 5001.0, 'slow': True,
               'timed_out': True, 'timeout_s': 5.0, 'waited_ms': 5001.0, 'reader': {'pid': 9, 'reaped': True}}
    verdict, reasons = probe.evaluate({'read_latency': {'root': latency}}, T, 'fixed')
    assert verdict == 'warn' and 'did not finish within 5.0 s' in reasons[0] and 'another cause' in reasons[0]


def test_collect_kubelet_whose_stat_blocks_is_timed_out_and_warn(tmp_path):
    root = tree.build_node(tmp_path, memory_num_cgroups=10, kubelet=(4321, 1, 1))
    _replace_with_fifo(root, '/proc/4321/stat')
    result = probe.collect(root, cpu_interval_s=1, stat_reads=0, read_timeout_s=1.2)
    kubelet = result['kubelet']
    assert kubelet['found'] is True and kubelet['timed_out'] is True and kubelet['cpu_percent'] is None
    assert result['verdict'] == 'warn'
    assert result['reasons'] == ['Reading /proc/4321/stat of kubelet did not finish within 1.2 s (read_timeout): '
                                 'the process is stuck in the kernel.']


def test_read_timeout_default_is_critical_read_ms_plus_margin(tmp_path):
    root = tree.build_node(tmp_path, memory_num_cgroups=10, kubelet=None)
    assert probe.collect(root, cpu_interval_s=0, stat_reads=0)['read_timeout'] == 5.0
    assert probe.validate_options(thresholds={'critical_read_ms': 8000})[1] == 12.0


@pytest.mark.parametrize('kwargs, message', [
    ({'cpu_interval_s': float('inf')}, 'cpu_interval must be a finite number, got inf'),
    ({'cpu_interval_s': float('nan')}, 'cpu_interval must be a finite number, got nan'),
    ({'cpu_interval_s': 1e9}, r'cpu_interval must be between 0 and 60 seconds, got 1000000000.0'),
    ({'cpu_interval_s': 60.5}, 'cpu_interval must be between 0 and 60 seconds, got 60.5'),
    ({'stat_reads': True}, 'stat_reads must be between 0 and 5, got True'),
    ({'read_timeout_s': 0.5}, r'read_timeout must be over critical_read_ms \(1.0 s\).*got 0.5'),
    ({'read_timeout_s': 1.0}, r'read_timeout must be over critical_read_ms \(1.0 s\).*got 1.0'),
    ({'read_timeout_s': float('inf')}, 'read_timeout must be a finite number, got inf'),
    ({'read_timeout_s': float('nan')}, 'read_timeout must be a finite number, got nan'),
    ({'read_timeout_s': 601}, 'read_timeout must be over 0.0 and at most 600.0 seconds, got 601'),
    ({'root': ''}, "root must not be empty; leave it out for '/'"),
    ({'kernel_overrides': [{'match': 'el7', 'version_pattern': r'^(\d+)?', 'fixed_from': '5.2'}]},
     r'policy_overrides\[0\]: version_pattern .* optional'),
])
def test_collect_refuses_bad_options_before_reading(tmp_path, kwargs, message):
    # tmp_path is an empty tree: any read would fail with another message.
    with pytest.raises(MemcgError, match=message):
        probe.collect(kwargs.pop('root', str(tmp_path)), **kwargs)


def test_collect_reads_the_kernel_log_for_the_slub_sign(tmp_path):
    root = tree.build_node(tmp_path, memory_num_cgroups=1000, kubelet=None)
    tree.write(root, '/dev/kmsg', '6,1,10,-;Linux version 3.10.0-1160.el7.x86_64\n'
                                  '4,2,20,-;SLUB: Unable to allocate memory on node -1 (gfp=0x8020)\n'
                                  ' SUBSYSTEM=mm\n')
    result = probe.collect(root, cpu_interval_s=0, stat_reads=0)
    assert result['kernel_log']['source'] == '/dev/kmsg' and result['kernel_log']['records'] == 2
    assert result['kmem_leak']['suspected'] is True
    assert 'dmesg shows "SLUB: Unable to allocate memory on node -1"' in result['kmem_leak']['signs']
    assert result['verdict'] == 'warn'


def test_collect_without_a_kernel_log_says_so(tmp_path):
    root = tree.build_node(tmp_path, memory_num_cgroups=10, kubelet=None)
    result = probe.collect(root, cpu_interval_s=0, stat_reads=0)
    assert result['kernel_log']['source'] == 'unavailable'
    assert result['kernel_log']['note'].startswith('there is no /dev/kmsg under ')
