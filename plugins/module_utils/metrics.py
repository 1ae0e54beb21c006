# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus textfile rendering of a memcg_probe result.

Used on the controller (filter) and on nodes (memcg_probe's textfile_dir, the self-healing timer
script), so it stays Python 2.7 compatible and imports only the standard library. Names and units:
docs/metrics.md.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import tempfile

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

# The probe's textfile; node_exporter's textfile collector reads every *.prom file of its directory.
PROBE_TEXTFILE = 'nodeops_memcg.prom'

VERDICT_LEVELS = {'ok': 0, 'warn': 1, 'critical': 2}
KERNEL_STATUS_LEVELS = {'fixed': 0, 'degraded': 1, 'severe': 2, 'unknown': -1}

# name -> (type, help); the order is the output order.
METRICS = (
    ('nodeops_memcg_total', 'gauge', 'Memory cgroups the kernel counts, live and dying.'),
    ('nodeops_memcg_live', 'gauge', 'Memory cgroups that still have a directory.'),
    ('nodeops_memcg_dying', 'gauge', 'Removed memory cgroups the kernel still keeps (zombies).'),
    ('nodeops_memcg_memory_stat_read_seconds', 'gauge', 'Slowest timed read of memory.stat, by cgroup.'),
    ('nodeops_memcg_slab_bytes', 'gauge', 'Slab memory from /proc/meminfo, by kind.'),
    ('nodeops_memcg_dentries', 'gauge', 'Dentries from /proc/sys/fs/dentry-state, by state.'),
    ('nodeops_memcg_kubelet_cpu_ratio', 'gauge', 'kubelet CPU use over the sample interval (1 = one CPU), by mode.'),
    ('nodeops_memcg_kmem_leak_suspected', 'gauge', '1 when the RHEL 7 kmem accounting leak signs are present.'),
    ('nodeops_memcg_verdict', 'gauge', 'Probe verdict: 0 ok, 1 warn, 2 critical.'),
    ('nodeops_memcg_kernel_status', 'gauge', 'Kernel fix status: 0 fixed, 1 degraded, 2 severe, -1 unknown.'),
    ('nodeops_memcg_probe_timestamp_seconds', 'gauge', 'Unix time of the probe.'),
)


def _escape(value):
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def _labels(labels):
    if not labels:
        return ''
    return '{' + ','.join('%s="%s"' % (key, _escape(val)) for key, val in sorted(labels.items())) + '}'


def _number(value):
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def _samples(probe):
    """Yield (metric, labels, value) for every value the probe measured; unknowns are left out."""
    memcg = probe.get('memcg') or {}
    for key in ('total', 'live', 'dying'):
        if memcg.get(key) is not None:
            yield 'nodeops_memcg_' + key, {}, memcg[key]
    for cgroup, latency in sorted((probe.get('read_latency') or {}).items()):
        if latency and latency.get('max_ms') is not None:
            yield 'nodeops_memcg_memory_stat_read_seconds', {'cgroup': cgroup}, latency['max_ms'] / 1000.0
    slab = probe.get('slab') or {}
    for kind, key in (('total', 'slab_kb'), ('reclaimable', 'sreclaimable_kb'), ('unreclaimable', 'sunreclaim_kb')):
        if slab.get(key) is not None:
            yield 'nodeops_memcg_slab_bytes', {'kind': kind}, slab[key] * 1024
    dentry = probe.get('dentry') or {}
    for state in ('nr_dentry', 'nr_unused', 'nr_negative'):
        if dentry.get(state) is not None:
            yield 'nodeops_memcg_dentries', {'state': state[3:]}, dentry[state]
    kubelet = probe.get('kubelet') or {}
    for mode in ('user', 'system'):
        percent = kubelet.get(mode + '_percent')
        if percent is not None:
            yield 'nodeops_memcg_kubelet_cpu_ratio', {'mode': mode}, percent / 100.0
    if probe.get('kmem_leak') is not None:
        yield 'nodeops_memcg_kmem_leak_suspected', {}, bool(probe['kmem_leak'].get('suspected'))
    if probe.get('verdict') in VERDICT_LEVELS:
        yield 'nodeops_memcg_verdict', {}, VERDICT_LEVELS[probe['verdict']]
    kernel = probe.get('kernel') or {}
    if kernel.get('status') in KERNEL_STATUS_LEVELS:
        labels = {'release': kernel.get('release', ''), 'stream': kernel.get('stream', '')}
        yield 'nodeops_memcg_kernel_status', labels, KERNEL_STATUS_LEVELS[kernel['status']]


def render_textfile(probe, timestamp):
    """Render a probe result as node_exporter textfile collector content."""
    by_metric = {}
    for name, labels, value in _samples(probe):
        by_metric.setdefault(name, []).append('%s%s %s' % (name, _labels(labels), _number(value)))
    by_metric['nodeops_memcg_probe_timestamp_seconds'] = [
        'nodeops_memcg_probe_timestamp_seconds %s' % _number(float(timestamp))]
    lines = []
    for name, kind, help_text in METRICS:
        if name in by_metric:
            lines.append('# HELP %s %s' % (name, help_text))
            lines.append('# TYPE %s %s' % (name, kind))
            lines.extend(by_metric[name])
    return '\n'.join(lines) + '\n'


def textfile_path(directory):
    """Where the probe's textfile goes; MemcgError unless directory is an absolute path."""
    if not os.path.isabs(directory):
        raise MemcgError('textfile_dir must be an absolute path, got %r' % (directory,))
    return os.path.join(directory, PROBE_TEXTFILE)


def write_textfile(path, text):
    """Replace path with text atomically: a hidden temp file in the same directory, then a rename.

    node_exporter reads only *.prom files, so it never scrapes the temp file half written.
    """
    data = text.encode('utf-8') if not isinstance(text, bytes) else text
    try:
        fd, temp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp',
                                    dir=os.path.dirname(path))
    except (IOError, OSError) as exc:
        raise MemcgError('cannot write the textfile %s: %s' % (path, exc.strerror or exc))
    try:
        try:
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
        os.chmod(temp, 0o644)
        os.rename(temp, path)
    except (IOError, OSError) as exc:
        os.unlink(temp)
        raise MemcgError('cannot write the textfile %s: %s' % (path, exc.strerror or exc))
