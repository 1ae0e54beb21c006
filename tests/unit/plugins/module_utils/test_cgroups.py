# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import shutil

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils import cgroups
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree


def fake_clock(*values):
    ticks = iter(values)
    return lambda: next(ticks)


# mountinfo and layout

def test_parse_mountinfo_fields_and_optional_fields():
    mounts = cgroups.parse_mountinfo(tree.MOUNTINFO_CENTOS7_V1)
    memory = [m for m in mounts if m['mount_point'] == '/sys/fs/cgroup/memory'][0]
    assert memory == {'mount_root': '/', 'mount_point': '/sys/fs/cgroup/memory', 'fstype': 'cgroup',
                      'source': 'cgroup', 'super_options': ['rw', 'memory']}
    systemd = [m for m in mounts if m['mount_point'] == '/sys/fs/cgroup/systemd'][0]
    assert 'name=systemd' in systemd['super_options']


def test_parse_mountinfo_unescapes_octal_and_handles_no_optional_fields():
    mounts = cgroups.parse_mountinfo(tree.MOUNTINFO_ESCAPED)
    assert mounts[0]['fstype'] == 'xfs'
    assert mounts[1]['mount_point'] == '/host view/memory'
    assert mounts[2]['mount_point'] == '/srv/my cgroups/memory'


def test_parse_mountinfo_malformed_line_names_it():
    with pytest.raises(MemcgError, match='mountinfo line 1'):
        cgroups.parse_mountinfo('36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root\n')


@pytest.mark.parametrize('layout, expected', [
    ('v1', {'layout': 'v1', 'memory_mount': '/sys/fs/cgroup/memory', 'unified_mount': None}),
    ('hybrid', {'layout': 'hybrid', 'memory_mount': '/sys/fs/cgroup/memory',
                'unified_mount': '/sys/fs/cgroup/unified'}),
    ('v2', {'layout': 'v2', 'memory_mount': None, 'unified_mount': '/sys/fs/cgroup'}),
])
def test_detect_layout(tmp_path, layout, expected):
    root = tree.build_node(tmp_path, layout=layout)
    assert cgroups.detect_layout(root) == expected


def test_detect_layout_v2_without_memory_controller_is_none(tmp_path):
    root = tree.build_node(tmp_path, layout='v2')
    tree.write(root, '/sys/fs/cgroup/cgroup.controllers', 'cpuset cpu io pids\n')
    assert cgroups.detect_layout(root) == {'layout': 'none', 'memory_mount': None,
                                           'unified_mount': '/sys/fs/cgroup'}


def test_detect_layout_without_cgroups_is_none(tmp_path):
    tree.write(tmp_path, '/proc/self/mountinfo', '29 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n')
    assert cgroups.detect_layout(str(tmp_path))['layout'] == 'none'


def test_detect_layout_prefers_whole_hierarchy_over_bind_mount(tmp_path):
    tree.write(tmp_path, '/proc/self/mountinfo', tree.MOUNTINFO_ESCAPED)
    assert cgroups.detect_layout(str(tmp_path))['memory_mount'] == '/srv/my cgroups/memory'


def test_missing_mountinfo_names_path(tmp_path):
    with pytest.raises(MemcgError, match='mountinfo'):
        cgroups.detect_layout(str(tmp_path))


# /proc/cgroups and cgroup.stat

def test_parse_proc_cgroups():
    rows = cgroups.parse_proc_cgroups(tree.PROC_CGROUPS_CENTOS7.format(memory=68700))
    assert rows['memory'] == {'hierarchy': 3, 'num_cgroups': 68700, 'enabled': True}
    assert len(rows) == 12


def test_memory_num_cgroups_disabled_is_none(tmp_path):
    tree.write(tmp_path, '/proc/cgroups', '#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t1\t0\n')
    assert cgroups.memory_num_cgroups(str(tmp_path)) is None


def test_parse_proc_cgroups_malformed():
    with pytest.raises(MemcgError, match='malformed'):
        cgroups.parse_proc_cgroups('memory\t3\tmany\t1\n')


def test_parse_flat_keyed():
    assert cgroups.parse_flat_keyed(tree.CGROUP_STAT_DESCENDANTS_ONLY) == {
        'nr_descendants': 87, 'nr_dying_descendants': 412}


# directory counting

def test_count_dirs_counts_root_and_skips_files_and_symlinks(tmp_path):
    root = tree.build_node(tmp_path)
    top = os.path.join(root, 'sys/fs/cgroup/memory')
    os.symlink(os.path.join(top, 'kubepods.slice'), os.path.join(top, 'link-to-kubepods'))
    assert cgroups.count_dirs(top) == len(tree.KUBEPODS_V1)
    assert cgroups.count_dirs(top, cgroups.subdirs_listdir) == len(tree.KUBEPODS_V1)


def test_count_dirs_tolerates_vanished_directories(tmp_path):
    root = tree.build_node(tmp_path)
    top = os.path.join(root, 'sys/fs/cgroup/memory')
    gone = os.path.join(top, 'kubepods.slice')

    def list_then_remove(path):
        children = cgroups.subdirs_listdir(path)
        if path == top:
            shutil.rmtree(gone)  # rmdir by kubelet between listing and descending
        return children

    assert cgroups.count_dirs(top, list_then_remove) == 4  # root, system.slice (+ kubelet.service), user.slice


def test_count_dirs_missing_top_is_an_error(tmp_path):
    with pytest.raises(MemcgError, match='cannot list'):
        cgroups.count_dirs(str(tmp_path / 'nope'))


def test_count_dirs_top_vanished_is_an_error(tmp_path):
    def raising(path):
        raise OSError(errno.ENOENT, 'No such file or directory')
    with pytest.raises(MemcgError):
        cgroups.count_dirs(str(tmp_path), raising)


def test_count_many_dirs_quickly(tmp_path):
    top = tmp_path / 'memory'
    for i in range(50):
        for j in range(40):
            (top / ('pod%d' % i) / ('c%d' % j)).mkdir(parents=True)
    assert cgroups.count_dirs(str(top)) == 1 + 50 + 50 * 40


# memcg counts

def test_count_memcgs_v1(tmp_path):
    root = tree.build_node(tmp_path, memory_num_cgroups=68700)
    assert cgroups.count_memcgs(cgroups.detect_layout(root), root) == {
        'total': 68700, 'live': 8, 'dying': 68692, 'source': 'proc_cgroups_minus_live_dirs'}


def test_count_memcgs_hybrid_clamps_dying_at_zero(tmp_path):
    root = tree.build_node(tmp_path, layout='hybrid', memory_num_cgroups=5)  # created during the walk
    assert cgroups.count_memcgs(cgroups.detect_layout(root), root) == {
        'total': 5, 'live': 8, 'dying': 0, 'source': 'proc_cgroups_minus_live_dirs'}


def test_count_memcgs_v2_prefers_memory_counter(tmp_path):
    root = tree.build_node(tmp_path, layout='v2', cgroup_dirs=('', 'system.slice', 'kubepods'))
    assert cgroups.count_memcgs(cgroups.detect_layout(root), root) == {
        'total': 401, 'live': 3, 'dying': 398, 'source': 'cgroup.stat:nr_dying_subsys_memory'}


def test_count_memcgs_v2_falls_back_to_dying_descendants(tmp_path):
    root = tree.build_node(tmp_path, layout='v2', cgroup_dirs=('', 'kubepods'),
                           cgroup_stat=tree.CGROUP_STAT_DESCENDANTS_ONLY)
    assert cgroups.count_memcgs(cgroups.detect_layout(root), root) == {
        'total': 414, 'live': 2, 'dying': 412, 'source': 'cgroup.stat:nr_dying_descendants'}


def test_count_memcgs_none_layout():
    layout = {'layout': 'none', 'memory_mount': None, 'unified_mount': None}
    assert cgroups.count_memcgs(layout) == {'total': None, 'live': None, 'dying': None, 'source': 'unavailable'}


# kubepods lookup and read timing

def test_find_kubepods_systemd_driver(tmp_path):
    root = tree.build_node(tmp_path)
    assert cgroups.find_kubepods(cgroups.detect_layout(root), root) == '/sys/fs/cgroup/memory/kubepods.slice'


def test_find_kubepods_cgroupfs_driver_v2(tmp_path):
    root = tree.build_node(tmp_path, layout='v2', cgroup_dirs=('', 'kubepods', 'kubepods/burstable'))
    assert cgroups.find_kubepods(cgroups.detect_layout(root), root) == '/sys/fs/cgroup/kubepods'


def test_find_kubepods_absent(tmp_path):
    root = tree.build_node(tmp_path, cgroup_dirs=('', 'system.slice'))
    assert cgroups.find_kubepods(cgroups.detect_layout(root), root) is None


def test_time_read_reports_each_read(tmp_path):
    path = tree.write(tmp_path, '/m/memory.stat', tree.MEMORY_STAT_V1)
    result = cgroups.time_read('/m/memory.stat', reads=2, warn_ms=100, root=str(tmp_path),
                               clock=fake_clock(10.0, 10.1, 20.0, 20.1005))
    assert os.path.exists(path)
    assert result == {'path': '/m/memory.stat', 'reads': 2, 'ms': [100.0, 100.5], 'max_ms': 100.5, 'slow': True,
                      'timed_out': False}


def test_time_read_exactly_at_threshold_is_not_slow(tmp_path):
    tree.write(tmp_path, '/m/memory.stat', tree.MEMORY_STAT_V1)
    result = cgroups.time_read('/m/memory.stat', 1, 100, str(tmp_path), fake_clock(1.0, 1.1))
    assert result['max_ms'] == 100.0 and result['slow'] is False


def test_time_read_missing_file_is_none(tmp_path):
    assert cgroups.time_read('/m/memory.stat', root=str(tmp_path)) is None


@pytest.mark.parametrize('reads', [0, 6])
def test_time_read_count_is_capped(tmp_path, reads):
    with pytest.raises(MemcgError, match='between 1 and 5'):
        cgroups.time_read('/m/memory.stat', reads, root=str(tmp_path))


def test_read_latency_v1_times_root_and_kubepods(tmp_path):
    root = tree.build_node(tmp_path)
    latency = cgroups.read_latency(cgroups.detect_layout(root), reads=3, root=root)
    assert latency['root']['path'] == '/sys/fs/cgroup/memory/memory.stat'
    assert latency['kubepods']['path'] == '/sys/fs/cgroup/memory/kubepods.slice/memory.stat'
    assert latency['root']['reads'] == 3 and len(latency['root']['ms']) == 3
    assert latency['root']['slow'] is False


def test_read_latency_v2_root_without_memory_stat_is_null(tmp_path):
    root = tree.build_node(tmp_path, layout='v2', cgroup_dirs=('', 'kubepods.slice'))
    latency = cgroups.read_latency(cgroups.detect_layout(root), reads=1, root=root)
    assert latency['root'] is None
    assert latency['kubepods']['path'] == '/sys/fs/cgroup/kubepods.slice/memory.stat'


def test_read_latency_v2_root_with_memory_stat_is_timed(tmp_path):
    root = tree.build_node(tmp_path, layout='v2', cgroup_dirs=('',), v2_root_stat=True)
    latency = cgroups.read_latency(cgroups.detect_layout(root), reads=1, root=root)
    assert latency['root']['path'] == '/sys/fs/cgroup/memory.stat'
    assert latency['kubepods'] is None


def test_read_latency_disabled(tmp_path):
    root = tree.build_node(tmp_path)
    assert cgroups.read_latency(cgroups.detect_layout(root), reads=0, root=root) == {'root': None, 'kubepods': None}


def test_escaped_mount_point_is_counted_under_root(tmp_path):
    tree.write(tmp_path, '/proc/self/mountinfo', tree.MOUNTINFO_ESCAPED)
    tree.write(tmp_path, '/proc/cgroups', tree.PROC_CGROUPS_CENTOS7.format(memory=10))
    for path in ('', 'a', 'b'):
        tree.make_cgroup(tmp_path, os.path.join('/srv/my cgroups/memory', path))
    layout = cgroups.detect_layout(str(tmp_path))
    assert cgroups.count_memcgs(layout, str(tmp_path))['dying'] == 7
