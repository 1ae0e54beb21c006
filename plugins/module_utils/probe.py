# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The memcg probe: collect() gathers the facts once, evaluate() turns them into a verdict.

collect() is the single entry point for every module that measures a node (memcg_probe, and
drop_caches for its before/after numbers). Its cost is bounded: one directory walk, at most
MAX_STAT_READS reads of each memory.stat, one CPU sample of kubelet. Result keys: docs/probe.md.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import numbers
import re

from ansible_collections.nodeops.memcg.plugins.module_utils import cgroups, procfs
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.kernel_policy import classify

# Starting points from KERNEL_FACTS.md (engineering judgement; every one can be overridden).
# warn_kubelet_system_percent is percent of one CPU spent by kubelet in the kernel: a healthy
# kubelet uses a few percent in total; half a CPU of stime points at kernel-side stat reads.
DEFAULT_THRESHOLDS = {
    'warn_dying': 5000,
    'warn_dying_ratio': 10,
    'warn_dying_ratio_min': 1000,
    'warn_read_ms': 100,
    'critical_dying': 20000,
    'critical_read_ms': 1000,
    'warn_kubelet_system_percent': 50,
}
# The thresholds option of the modules that run the probe (doc fragment nodeops.memcg.thresholds).
THRESHOLDS_OPTION = dict(type='dict', options=dict(
    warn_dying=dict(type='int'),
    warn_dying_ratio=dict(type='float'),
    warn_dying_ratio_min=dict(type='int'),
    warn_read_ms=dict(type='float'),
    critical_dying=dict(type='int'),
    critical_read_ms=dict(type='float'),
    warn_kubelet_system_percent=dict(type='float'),
))
# (warn key, critical key) pairs that must be ordered.
_ORDERED = (('warn_dying', 'critical_dying'), ('warn_read_ms', 'critical_read_ms'))
# Kernel statuses on which dying memcgs make memory.stat reads slow (unknown: assume the worst).
_READS_SCALE = ('severe', 'degraded', 'unknown')

EL7_KERNEL = re.compile(r'^3\.10\.0-.*\.el7')
KMEM_NEAR_CAP = 60000  # the memcg id space ends at 65,535; mkdir fails with ENOSPC there
NOKMEM = 'cgroup.memory=nokmem'
SLUB_FAILURE = 'SLUB: Unable to allocate memory on node -1'


def _is_number(value):
    # numbers.Real covers Python 2 long; bool is an int but not a threshold; NaN compares false.
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)


def validate_thresholds(thresholds=None):
    """Merge thresholds over DEFAULT_THRESHOLDS and check them; None values mean the default.

    Raises MemcgError naming the key for unknown keys, non-numbers, negatives, and a warn
    threshold above its critical one.
    """
    merged = dict(DEFAULT_THRESHOLDS)
    for key, value in sorted((thresholds or {}).items()):
        if key not in DEFAULT_THRESHOLDS:
            raise MemcgError('unknown threshold %r; known thresholds: %s'
                             % (key, ', '.join(sorted(DEFAULT_THRESHOLDS))))
        if value is None:
            continue
        if not _is_number(value):
            raise MemcgError('threshold %s must be a number, got %r' % (key, value))
        if value < 0:
            raise MemcgError('threshold %s must not be negative, got %r' % (key, value))
        merged[key] = value
    for warn, critical in _ORDERED:
        if merged[warn] > merged[critical]:
            raise MemcgError('threshold %s (%r) must not exceed %s (%r)'
                             % (warn, merged[warn], critical, merged[critical]))
    return merged


def kmem_leak_signs(release, num_cgroups, cmdline, dmesg_text=None):
    """Signs of the RHEL 7 kmem accounting leak: {'suspected': bool, 'signs': [str]}.

    Only 3.10.0-*.el7 kernels have it. Suspected when, on such a kernel booted without
    cgroup.memory=nokmem, the memory cgroup count nears 65,535 or dmesg shows the SLUB failure.
    """
    if not release or not EL7_KERNEL.match(release):
        return {'suspected': False, 'signs': []}
    signs = ['kernel %s is a RHEL 7 3.10.0 kernel with kmem accounting' % release]
    lacks_nokmem = NOKMEM not in (cmdline or '').split()
    if lacks_nokmem:
        signs.append('kernel command line lacks %s' % NOKMEM)
    symptoms = 0
    if num_cgroups is not None and num_cgroups > KMEM_NEAR_CAP:
        signs.append('memory num_cgroups %d is near the 65535 limit (over %d)' % (num_cgroups, KMEM_NEAR_CAP))
        symptoms += 1
    if dmesg_text and SLUB_FAILURE in dmesg_text:
        signs.append('dmesg shows "%s"' % SLUB_FAILURE)
        symptoms += 1
    return {'suspected': bool(lacks_nokmem and symptoms), 'signs': signs}


def _dying_reasons(memcg, thresholds, reads_scale):
    reasons = []
    dying, live = memcg.get('dying'), memcg.get('live')
    if dying is None:
        return 'ok', reasons
    level = 'ok'
    if dying > thresholds['critical_dying']:
        if reads_scale:
            level = 'critical'
            reasons.append('%d dying memory cgroups exceed critical_dying (%s); on this kernel '
                           'every memory.stat read walks them.' % (dying, thresholds['critical_dying']))
        else:
            level = 'warn'
            reasons.append('%d dying memory cgroups exceed critical_dying (%s); the kernel is '
                           'fixed, so reads no longer scale with them, but each one still holds memory.'
                           % (dying, thresholds['critical_dying']))
    elif dying > thresholds['warn_dying']:
        level = 'warn'
        reasons.append('%d dying memory cgroups exceed warn_dying (%s).' % (dying, thresholds['warn_dying']))
    # A ratio over a handful of cgroups is noise: it counts only from warn_dying_ratio_min up.
    if live is not None and dying >= thresholds['warn_dying_ratio_min'] \
            and dying > thresholds['warn_dying_ratio'] * live:
        level = level if level != 'ok' else 'warn'
        reasons.append('%d dying memory cgroups exceed warn_dying_ratio (%s) times the %d live ones.'
                       % (dying, thresholds['warn_dying_ratio'], live))
    return level, reasons


def _read_reasons(name, latency, thresholds, reads_scale):
    if not latency:
        return 'ok', []
    max_ms, path = latency['max_ms'], latency['path']
    if max_ms > thresholds['critical_read_ms']:
        if reads_scale:
            return 'critical', ['The %s memory.stat read (%s) took %s ms, over critical_read_ms (%s ms).'
                                % (name, path, max_ms, thresholds['critical_read_ms'])]
        return 'warn', ['The %s memory.stat read (%s) took %s ms, over critical_read_ms (%s ms); the '
                        'kernel is fixed, so dying memory cgroups should not slow reads: look for another cause.'
                        % (name, path, max_ms, thresholds['critical_read_ms'])]
    if max_ms > thresholds['warn_read_ms']:
        return 'warn', ['The %s memory.stat read (%s) took %s ms, over warn_read_ms (%s ms).'
                        % (name, path, max_ms, thresholds['warn_read_ms'])]
    return 'ok', []


def evaluate(facts, thresholds, kernel_status):
    """Return (verdict, reasons) for collected facts; pure.

    facts: a dict with the collect() keys memcg, read_latency, kubelet, kmem_leak (missing ones
    are skipped). thresholds: a validate_thresholds() result. kernel_status: severe, degraded,
    fixed or unknown. Critical needs a kernel whose reads scale with dying memcgs (anything but
    fixed); on a fixed kernel the same conditions give warn.
    """
    reads_scale = kernel_status in _READS_SCALE or kernel_status is None
    levels = []
    reasons = []

    level, found = _dying_reasons(facts.get('memcg') or {}, thresholds, reads_scale)
    levels.append(level)
    reasons.extend(found)

    latency = facts.get('read_latency') or {}
    for name in ('root', 'kubepods'):
        level, found = _read_reasons(name, latency.get(name), thresholds, reads_scale)
        levels.append(level)
        reasons.extend(found)

    kubelet = facts.get('kubelet') or {}
    system = kubelet.get('system_percent')
    if system is not None and system > thresholds['warn_kubelet_system_percent']:
        levels.append('warn')
        reasons.append('kubelet (pid %s) spent %s%% of a CPU in the kernel, over warn_kubelet_system_percent (%s%%).'
                       % (kubelet.get('pid'), system, thresholds['warn_kubelet_system_percent']))

    kmem = facts.get('kmem_leak') or {}
    if kmem.get('suspected'):
        levels.append('warn')
        reasons.append('RHEL 7 kmem accounting leak suspected: %s.' % '; '.join(kmem.get('signs') or []))

    for verdict in ('critical', 'warn'):
        if verdict in levels:
            return verdict, reasons
    return 'ok', reasons


def _kubelet(root, name, pid, interval_s, ticks_per_s, clock, sleep):
    if pid is None:
        pids = procfs.find_pids(name, root)
        pid = pids[0] if pids else None
    result = {'found': False, 'pid': pid, 'interval_s': interval_s, 'cpu_percent': None,
              'user_percent': None, 'system_percent': None, 'vanished': False}
    if pid is None or procfs.read_pid_stat(pid, root) is None:
        return result
    result['found'] = True
    if interval_s > 0:
        result.update(procfs.sample_cpu(pid, interval_s, root, ticks_per_s, clock, sleep))
    return result


def collect(root='/', kubelet_name='kubelet', kubelet_pid=None, cpu_interval_s=1.0, stat_reads=1,
            thresholds=None, kernel_overrides=None, clock=None, sleep=None, ticks_per_s=None):
    """Measure the node under root once and return the memcg_probe result dict (without changed).

    stat_reads: reads of each memory.stat (0 disables timing, at most cgroups.MAX_STAT_READS).
    cpu_interval_s: kubelet CPU sample length (0 disables sampling). clock, sleep, ticks_per_s:
    injectable for tests. dmesg is not read (it needs a command); kmem_leak uses the rest.
    """
    if not 0 <= stat_reads <= cgroups.MAX_STAT_READS:
        raise MemcgError('stat_reads must be between 0 and %d, got %r' % (cgroups.MAX_STAT_READS, stat_reads))
    if cpu_interval_s < 0:
        raise MemcgError('cpu_interval must not be negative, got %r' % cpu_interval_s)
    applied = validate_thresholds(thresholds)
    release = procfs.read_osrelease(root)
    kernel = classify(release, kernel_overrides)

    cgroup = cgroups.detect_layout(root)
    result = {
        'kernel': kernel,
        'cgroup': cgroup,
        'memcg': cgroups.count_memcgs(cgroup, root),
        'read_latency': cgroups.read_latency(cgroup, stat_reads, applied['warn_read_ms'], root, clock),
        'slab': procfs.read_meminfo_slab(root),
        'dentry': procfs.read_dentry_state(root),
        'slabinfo': procfs.read_slabinfo(root),
        'kubelet': _kubelet(root, kubelet_name, kubelet_pid, cpu_interval_s, ticks_per_s, clock, sleep),
        'thresholds': applied,
    }
    result['kmem_leak'] = kmem_leak_signs(release, result['memcg']['total'], procfs.read_cmdline(root))
    result['verdict'], result['reasons'] = evaluate(result, applied, kernel.get('status'))
    return result
