# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils import metrics
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError


def parse(text):
    """Sample lines as {'name{labels}': value}; also checks every family has HELP and TYPE first."""
    samples = {}
    declared = set()
    for line in text.splitlines():
        if line.startswith('# TYPE '):
            declared.add(line.split()[2])
        elif line and not line.startswith('#'):
            key, value = line.rsplit(' ', 1)
            assert key.split('{')[0] in declared, line
            samples[key] = float(value)
    return samples


PROBE = {
    'memcg': {'total': 1200, 'live': 200, 'dying': 1000},
    'read_latency': {'root': {'max_ms': 250.0}, 'kubepods': None},
    'slab': {'slab_kb': 2048, 'sreclaimable_kb': 1024, 'sunreclaim_kb': 1024},
    'dentry': {'nr_dentry': 500, 'nr_unused': 100, 'nr_negative': 7},
    'kubelet': {'found': True, 'user_percent': 10.0, 'system_percent': 85.0},
    'kmem_leak': {'suspected': False},
    'verdict': 'warn',
    'kernel': {'release': '4.4.227-1.el7.elrepo.x86_64', 'stream': 'elrepo', 'status': 'severe'},
}


def test_every_measured_value_becomes_a_sample_with_units_converted():
    samples = parse(metrics.render_textfile(PROBE, 1700000000))
    assert samples['nodeops_memcg_dying'] == 1000
    assert samples['nodeops_memcg_memory_stat_read_seconds{cgroup="root"}'] == 0.25
    assert samples['nodeops_memcg_slab_bytes{kind="reclaimable"}'] == 1024 * 1024
    assert samples['nodeops_memcg_dentries{state="negative"}'] == 7
    assert samples['nodeops_memcg_kubelet_cpu_ratio{mode="system"}'] == 0.85
    assert samples['nodeops_memcg_verdict'] == 1
    assert samples['nodeops_memcg_kmem_leak_suspected'] == 0
    assert samples['nodeops_memcg_kernel_status{release="4.4.227-1.el7.elrepo.x86_64",stream="elrepo"}'] == 2
    assert samples['nodeops_memcg_probe_timestamp_seconds'] == 1700000000


def test_unmeasured_values_are_left_out_not_zero():
    text = metrics.render_textfile({'memcg': {'total': 5, 'live': None, 'dying': None},
                                    'read_latency': {'root': None}}, 1)
    samples = parse(text)
    assert 'nodeops_memcg_live' not in samples
    assert not any(key.startswith('nodeops_memcg_memory_stat_read_seconds') for key in samples)
    assert 'nodeops_memcg_dying' not in text


def test_label_values_are_escaped():
    text = metrics.render_textfile({'kernel': {'release': 'a"b\\c', 'stream': 'x', 'status': 'unknown'}}, 1)
    assert 'release="a\\"b\\\\c"' in text
    assert text.endswith('\n')


def test_textfile_path_needs_an_absolute_directory():
    assert metrics.textfile_path('/var/lib/node_exporter') == '/var/lib/node_exporter/nodeops_memcg.prom'
    with pytest.raises(MemcgError, match="textfile_dir must be an absolute path, got 'textfiles'"):
        metrics.textfile_path('textfiles')


def test_write_textfile_replaces_the_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / metrics.PROBE_TEXTFILE
    path.write_text(u'old\n')
    os.chmod(str(path), 0o600)
    metrics.write_textfile(str(path), u'new\n')
    assert path.read_text() == u'new\n'
    assert os.stat(str(path)).st_mode & 0o777 == 0o644  # node_exporter must read it
    assert os.listdir(str(tmp_path)) == [metrics.PROBE_TEXTFILE]


def test_write_textfile_into_a_missing_directory_names_the_path(tmp_path):
    path = str(tmp_path / 'missing' / metrics.PROBE_TEXTFILE)
    with pytest.raises(MemcgError, match='cannot write the textfile %s' % path):
        metrics.write_textfile(path, u'x\n')
