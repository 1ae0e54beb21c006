# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shutil

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils import procfs
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree


def fake_clock(*values):
    ticks = iter(values)
    return lambda: next(ticks)


def test_meminfo_slab():
    assert procfs.parse_meminfo_slab(tree.MEMINFO) == {
        'slab_kb': 1412332, 'sreclaimable_kb': 1301220, 'sunreclaim_kb': 111112}


def test_meminfo_slab_missing_lines_are_none():
    assert procfs.parse_meminfo_slab('MemTotal:       16266180 kB\nSlab:   12 kB\n') == {
        'slab_kb': 12, 'sreclaimable_kb': None, 'sunreclaim_kb': None}


def test_read_meminfo_slab_from_tree(tmp_path):
    root = tree.build_node(tmp_path)
    assert procfs.read_meminfo_slab(root)['sunreclaim_kb'] == 111112


def test_dentry_state():
    assert procfs.parse_dentry_state(tree.DENTRY_STATE) == {
        'nr_dentry': 1152113, 'nr_unused': 1108811, 'nr_negative': 0}
    assert procfs.parse_dentry_state('18271\t16925\t45\t0\t3223\t0\n')['nr_negative'] == 3223


@pytest.mark.parametrize('text', ['1 2 3\n', 'a b c d e f\n'])
def test_dentry_state_malformed(text):
    with pytest.raises(MemcgError, match='dentry-state'):
        procfs.parse_dentry_state(text)


def test_slabinfo_keeps_dentry_and_inode_caches():
    assert procfs.parse_slabinfo(tree.SLABINFO) == {
        'xfs_inode': {'active_objs': 1040115, 'num_objs': 1040587, 'objsize': 1024},
        'sock_inode_cache': {'active_objs': 1870, 'num_objs': 2064, 'objsize': 640},
        'shmem_inode_cache': {'active_objs': 2214, 'num_objs': 2448, 'objsize': 680},
        'proc_inode_cache': {'active_objs': 10250, 'num_objs': 12282, 'objsize': 672},
        'inode_cache': {'active_objs': 21744, 'num_objs': 22854, 'objsize': 600},
        'dentry': {'active_objs': 1152000, 'num_objs': 1160000, 'objsize': 192},
    }


def test_slabinfo_missing_is_none(tmp_path):
    assert procfs.read_slabinfo(str(tmp_path)) is None


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads a mode 000 file anyway')
def test_slabinfo_unreadable_is_none(tmp_path):
    path = tree.write(tmp_path, '/proc/slabinfo', tree.SLABINFO)
    os.chmod(path, 0)
    assert procfs.read_slabinfo(str(tmp_path)) is None


def test_cmdline_and_osrelease(tmp_path):
    root = tree.build_node(tmp_path)
    assert procfs.read_osrelease(root) == '3.10.0-1160.el7.x86_64'
    assert procfs.read_cmdline(root).endswith('LANG=en_US.UTF-8')
    assert '\0' not in procfs.read_cmdline(root)


def test_osrelease_missing_names_path(tmp_path):
    with pytest.raises(MemcgError, match='osrelease'):
        procfs.read_osrelease(str(tmp_path))


def test_find_pids_by_comm(tmp_path):
    root = tree.build_node(tmp_path, kubelet=(4321, 0, 0))
    tree.add_process(root, 987, 'kubelet')
    tree.add_process(root, 55, 'containerd')
    tree.write(root, '/proc/self/comm', 'kubelet\n')  # not a pid directory
    assert procfs.find_pids('kubelet', root) == [987, 4321]
    assert procfs.find_pids('dockerd', root) == []


def test_find_pids_compares_truncated_comm(tmp_path):
    tree.add_process(tmp_path, 77, 'cluster-autosca')  # the kernel keeps 15 characters
    assert procfs.find_pids('cluster-autoscaler', str(tmp_path)) == [77]


def test_parse_pid_stat_comm_with_spaces_and_parens():
    stat = procfs.parse_pid_stat(tree.pid_stat(4321, 'kube let) x', 104455, 98765))
    assert stat == {'pid': 4321, 'comm': 'kube let) x', 'state': 'S', 'utime': 104455, 'stime': 98765}


@pytest.mark.parametrize('text', ['', '4321 kubelet S 1 2 3', '4321 (kubelet) S 1 2'])
def test_parse_pid_stat_malformed(text):
    with pytest.raises(MemcgError, match='malformed'):
        procfs.parse_pid_stat(text)


def test_read_pid_stat_gone_is_none(tmp_path):
    assert procfs.read_pid_stat(999999, str(tmp_path)) is None


def test_cpu_percent_pure():
    before = {'utime': 1000, 'stime': 5000}
    after = {'utime': 1010, 'stime': 5190}
    assert procfs.cpu_percent(before, after, 2.0, 100) == {
        'cpu_percent': 100.0, 'user_percent': 5.0, 'system_percent': 95.0}


def test_cpu_percent_zero_elapsed():
    sample = {'utime': 1, 'stime': 1}
    assert procfs.cpu_percent(sample, sample, 0, 100)['cpu_percent'] is None


def test_sample_cpu_over_interval(tmp_path):
    root = str(tmp_path)
    tree.add_process(root, 4321, 'kubelet', 1000, 5000)
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        tree.add_process(root, 4321, 'kubelet', 1003, 5097)  # one second of kubelet work

    result = procfs.sample_cpu(4321, 1.0, root, ticks_per_s=100, clock=fake_clock(50.0, 51.0), sleep=sleep)
    assert slept == [1.0]
    assert result == {'cpu_percent': 100.0, 'user_percent': 3.0, 'system_percent': 97.0, 'vanished': False}


def test_sample_cpu_process_vanished(tmp_path):
    root = str(tmp_path)
    tree.add_process(root, 4321, 'kubelet', 1000, 5000)

    def sleep(seconds):
        shutil.rmtree(os.path.join(root, 'proc', '4321'))

    result = procfs.sample_cpu(4321, 1.0, root, ticks_per_s=100, clock=fake_clock(0.0, 1.0), sleep=sleep)
    assert result == {'cpu_percent': None, 'user_percent': None, 'system_percent': None, 'vanished': True}


def test_sample_cpu_pid_reused(tmp_path):
    root = str(tmp_path)
    tree.add_process(root, 4321, 'kubelet', 1000, 5000)

    def sleep(seconds):
        tree.add_process(root, 4321, 'sh', 0, 1)

    result = procfs.sample_cpu(4321, 1.0, root, ticks_per_s=100, clock=fake_clock(0.0, 1.0), sleep=sleep)
    assert result['vanished'] is True


def test_clock_ticks_is_positive():
    assert procfs.clock_ticks() > 0
