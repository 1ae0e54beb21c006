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

from ansible_collections.nodeops.memcg.plugins.module_utils import bounded, cgroups, kernel_log, procfs
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.kernel_policy import classify, validate_policy

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
# The thresholds option of the modules that run the probe (doc fragment nodeops.memcg.probe).
THRESHOLDS_OPTION = dict(type='dict', options=dict(
    warn_dying=dict(type='int'),
    warn_dying_ratio=dict(type='float'),
    warn_dying_ratio_min=dict(type='int'),
    warn_read_ms=dict(type='float'),
    critical_dying=dict(type='int'),
    critical_read_ms=dict(type='float'),
    warn_kubelet_system_percent=dict(type='float'),
))
# The options every module that runs the probe shares (memcg_probe, drop_caches): doc fragments
# nodeops.memcg.probe and nodeops.memcg.policy_overrides.
PROBE_OPTIONS = dict(
    kubelet_name=dict(type='str', default='kubelet'),
    kubelet_pid=dict(type='int'),
    stat_reads=dict(type='int', default=1, choices=[0, 1, 2, 3, 4, 5]),
    thresholds=THRESHOLDS_OPTION,
    read_timeout=dict(type='float'),
    policy_overrides=dict(type='list', elements='dict'),
)
# (warn key, critical key) pairs that must be ordered.
_ORDERED = (('warn_dying', 'critical_dying'), ('warn_read_ms', 'critical_read_ms'))
# Kernel statuses on which dying memcgs make memory.stat reads slow (unknown: assume the worst).
_READS_SCALE = ('severe', 'degraded', 'unknown')

EL7_KERNEL = re.compile(r'^3\.10\.0-.*\.el7')
MAX_CPU_INTERVAL_S = 60
# read_timeout left out: critical_read_ms plus this many seconds, so a timed-out read is always
# over critical_read_ms and a slow but finishing read still gets measured.
READ_TIMEOUT_MARGIN_S = 4
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


def _finite(name, value):
    if not _is_number(value) or math.isinf(value):
        raise MemcgError('%s must be a finite number, got %r' % (name, value))
    return value


def validate_options(cpu_interval_s=1.0, stat_reads=1, read_timeout_s=None, thresholds=None):
    """Check the probe's options before anything is read; return (thresholds, read_timeout_s).

    cpu_interval 0..MAX_CPU_INTERVAL_S, stat_reads 0..cgroups.MAX_STAT_READS, read_timeout over
    critical_read_ms (in seconds) and at most bounded.MAX_TIMEOUT_S (None: critical_read_ms +
    READ_TIMEOUT_MARGIN_S). Raises MemcgError naming the option and the value.
    """
    applied = validate_thresholds(thresholds)
    if not 0 <= _finite('cpu_interval', cpu_interval_s) <= MAX_CPU_INTERVAL_S:
        raise MemcgError('cpu_interval must be between 0 and %d seconds, got %r' % (MAX_CPU_INTERVAL_S, cpu_interval_s))
    if not isinstance(stat_reads, numbers.Integral) or isinstance(stat_reads, bool) \
            or not 0 <= stat_reads <= cgroups.MAX_STAT_READS:
        raise MemcgError('stat_reads must be between 0 and %d, got %r' % (cgroups.MAX_STAT_READS, stat_reads))
    critical_s = applied['critical_read_ms'] / 1000.0
    if read_timeout_s is None:
        read_timeout_s = min(critical_s + READ_TIMEOUT_MARGIN_S, bounded.MAX_TIMEOUT_S)
    elif _finite('read_timeout', read_timeout_s) <= critical_s:
        raise MemcgError('read_timeout must be over critical_read_ms (%s s), or a read that times out would '
                         'not count as slow; got %r' % (critical_s, read_timeout_s))
    bounded.check_timeout('read_timeout', read_timeout_s)
    return applied, read_timeout_s


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
    if latency.get('timed_out'):
        sentence = ('The %s memory.stat read (%s) did not finish within %s s (read_timeout); it was abandoned '
                    'after %s ms.' % (name, path, latency['timeout_s'], latency['waited_ms']))
        if reads_scale:
            return 'critical', [sentence]
        return 'warn', [sentence + ' The kernel is fixed, so dying memory cgroups should not slow reads: '
                                   'look for another cause.']
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
    if kubelet.get('timed_out'):
        levels.append('warn')
        reasons.append('Reading /proc/%s/stat of kubelet did not finish within %s s (read_timeout): the '
                       'process is stuck in the kernel.' % (kubelet.get('pid'), kubelet.get('timeout_s')))
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


def _kubelet(root, name, pid, interval_s, ticks_per_s, clock, sleep, timeout_s=None):
    if pid is None:
        pids = procfs.find_pids(name, root)
        pid = pids[0] if pids else None
    result = {'found': False, 'pid': pid, 'interval_s': interval_s, 'cpu_percent': None,
              'user_percent': None, 'system_percent': None, 'vanished': False, 'timed_out': False}
    try:
        if pid is None or procfs.read_pid_stat(pid, root, timeout_s) is None:
            return result
        result['found'] = True
        if interval_s > 0:
            result.update(procfs.sample_cpu(pid, interval_s, root, ticks_per_s, clock, sleep, timeout_s))
    except bounded.ReadTimedOut as exc:
        result.update(found=True, **exc.as_dict())
    return result


def collect(root='/', kubelet_name='kubelet', kubelet_pid=None, cpu_interval_s=1.0, stat_reads=1,
            thresholds=None, kernel_overrides=None, clock=None, sleep=None, ticks_per_s=None, read_timeout_s=None):
    """Measure the node under root once and return the memcg_probe result dict (without changed).

    stat_reads: reads of each memory.stat (0 disables timing, at most cgroups.MAX_STAT_READS).
    cpu_interval_s: kubelet CPU sample length (0 disables sampling). read_timeout_s: deadline of
    each memory.stat and /proc/<pid>/stat read and of the kernel log search (validate_options()).
    clock, sleep, ticks_per_s: injectable for tests.
    """
    if root == '':
        raise MemcgError("root must not be empty; leave it out for '/'")
    applied, read_timeout_s = validate_options(cpu_interval_s, stat_reads, read_timeout_s, thresholds)
    validate_policy(list(kernel_overrides or []), 'policy_overrides')
    release = procfs.read_osrelease(root)
    kernel = classify(release, kernel_overrides)

    cgroup = cgroups.detect_layout(root)
    result = {
        'kernel': kernel,
        'cgroup': cgroup,
        'memcg': cgroups.count_memcgs(cgroup, root),
        'read_latency': cgroups.read_latency(cgroup, stat_reads, applied['warn_read_ms'], root, clock,
                                             read_timeout_s),
        'slab': procfs.read_meminfo_slab(root),
        'dentry': procfs.read_dentry_state(root),
        'slabinfo': procfs.read_slabinfo(root),
        'kubelet': _kubelet(root, kubelet_name, kubelet_pid, cpu_interval_s, ticks_per_s, clock, sleep,
                            read_timeout_s),
        'thresholds': applied,
        'read_timeout': read_timeout_s,
        'kernel_log': kernel_log.read_kernel_log((SLUB_FAILURE,), root, read_timeout_s),
    }
    result['kmem_leak'] = kmem_leak_signs(release, result['memcg']['total'], procfs.read_cmdline(root),
                                          '\n'.join(result['kernel_log']['matched']))
    result['verdict'], result['reasons'] = evaluate(result, applied, kernel.get('status'))
    return result
