# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Diagnosis: is kubelet's CPU spent reading memory cgroup statistics, how fast do dying memcgs
accumulate, and when does the node get sick. Result keys: docs/diagnose.md.

Pure functions take text or plain data (perf script output, task snapshots, two memcg counts);
the node readers take ``root`` like every reader in this collection. The memcg_diagnose module
wires them together under one time budget.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import re
import subprocess
import threading
import time

from ansible_collections.nodeops.memcg.plugins.module_utils import cgroups, procfs
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.root_paths import under_root

# Kernel functions under which a memory.stat read spends its time, per kernel generation
# (KERNEL_FACTS.md "Where kubelet's kernel time shows up"; names checked against each series'
# mm/memcontrol.c, mm/memcontrol-v1.c and kernel/cgroup/rstat.c):
#  - 3.10 (RHEL 7): v1 memory.stat is memcg_stat_show; its total_* part walks every descendant,
#    dying ones included, with for_each_mem_cgroup_tree (mem_cgroup_iter, css_next_descendant_pre)
#    and sums per-cpu counters per item (mem_cgroup_read_stat, mem_cgroup_read_events) and per
#    LRU (mem_cgroup_nr_lru_pages, mem_cgroup_node_nr_lru_pages).
#  - 4.x: same walk; memcg_page_state / memcg_sum_events (4.14+) replace the read_stat helpers,
#    accumulate_memcg_tree (8de7ecc6483b, ~4.19) walks the tree once; v2 memory.stat (4.5+) is
#    memory_stat_show.
#  - 5.x: 42a300353577 (5.2) keeps recursive counters; memory_stat_format builds the v2 text;
#    rstat (2d146aa3aa84, 5.13) flushes with cgroup_rstat_flush / mem_cgroup_flush_stats.
#  - 6.x: memcg_stat_format (6.1+), v1 code in memcontrol-v1.c with memcg1_stat_format (6.11+);
#    the flush is css_rstat_flush on 6.16+. Seen on this project's 6.18 test machine (v1):
#    memory_stat_show -> memcg1_stat_format.
STAT_FUNCTIONS = {
    '3.10': ('memcg_stat_show', 'mem_cgroup_read_stat', 'mem_cgroup_read_events',
             'mem_cgroup_nr_lru_pages', 'mem_cgroup_node_nr_lru_pages', 'mem_cgroup_iter',
             'css_next_descendant_pre', 'mem_cgroup_recursive_stat'),
    '4.x': ('memcg_stat_show', 'memory_stat_show', 'memcg_page_state', 'memcg_sum_events',
            'mem_cgroup_read_stat', 'mem_cgroup_read_events', 'mem_cgroup_nr_lru_pages',
            'mem_cgroup_node_nr_lru_pages', 'accumulate_memcg_tree', 'mem_cgroup_iter',
            'css_next_descendant_pre'),
    '5.x': ('memcg_stat_show', 'memory_stat_show', 'memory_stat_format', 'memcg_page_state',
            'memcg_page_state_local', 'mem_cgroup_nr_lru_pages', 'mem_cgroup_node_nr_lru_pages',
            'mem_cgroup_iter', 'css_next_descendant_pre', 'mem_cgroup_flush_stats', 'cgroup_rstat_flush'),
    '6.x': ('memcg_stat_show', 'memory_stat_show', 'memory_stat_format', 'memcg_stat_format',
            'memcg1_stat_format', 'memcg_page_state', 'memcg_page_state_local',
            'mem_cgroup_flush_stats', 'cgroup_rstat_flush', 'css_rstat_flush', 'mem_cgroup_iter'),
}
_RELEASE = re.compile(r'^(\d+)\.(\d+)')

# When to call it (engineering judgement; every one can be overridden).
DEFAULT_THRESHOLDS = {
    # kubelet below this share of one CPU is not a CPU problem at all
    'busy_cpu_percent': 20,
    # share of kubelet's samples inside a memory.stat read that proves the cause
    'confirm_share_percent': 25,
    # share that makes it likely
    'likely_share_percent': 10,
    # share of kubelet's CPU spent in the kernel that a fallback conclusion also needs
    'system_share_percent': 50,
}
CONCLUSIONS = ('confirmed', 'likely', 'not this', 'unknown')

MEMCG_ID_LIMIT = 65535  # RHEL 7 3.10 kernels: mkdir fails with ENOSPC past it
EL7_KERNEL = re.compile(r'^3\.10\.0-.*\.el7')
KERNEL_ADDRESS = 0xffff800000000000  # x86_64 and arm64 kernel half
MAX_THREADS = 256  # threads looked at per fallback sample
MAX_FDS = 4096  # fds looked at per fallback sample
QOS_NAMES = ('burstable', 'besteffort')
_POD_DIR = re.compile(r'^(kubepods-(burstable-|besteffort-)?)?pod[0-9a-fA-F_-]+(\.slice)?$')
_OFFSET = re.compile(r'\+0x[0-9a-f]+$')


def kernel_generation(release):
    """'3.10', '4.x', '5.x', '6.x' for a uname -r string, or None for anything else."""
    match = _RELEASE.match(release or '')
    if not match:
        return None
    major, minor = int(match.group(1)), int(match.group(2))
    if major == 3 and minor == 10:
        return '3.10'
    if major in (4, 5):
        return '%d.x' % major
    if major >= 6:
        return '6.x'
    return None


def stat_functions(release):
    """The STAT_FUNCTIONS row for the release; the union of all rows when the generation is unknown."""
    generation = kernel_generation(release)
    if generation:
        return generation, STAT_FUNCTIONS[generation]
    names = set()
    for row in STAT_FUNCTIONS.values():
        names.update(row)
    return None, tuple(sorted(names))


def validate_thresholds(thresholds=None):
    """Merge over DEFAULT_THRESHOLDS; MemcgError naming unknown keys, non-numbers and negatives."""
    merged = dict(DEFAULT_THRESHOLDS)
    for key, value in sorted((thresholds or {}).items()):
        if key not in DEFAULT_THRESHOLDS:
            raise MemcgError('unknown diagnose threshold %r; known: %s' % (key, ', '.join(sorted(DEFAULT_THRESHOLDS))))
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise MemcgError('diagnose threshold %s must be a number >= 0, got %r' % (key, value))
        merged[key] = value
    if merged['likely_share_percent'] > merged['confirm_share_percent']:
        raise MemcgError('likely_share_percent (%r) must not exceed confirm_share_percent (%r)'
                         % (merged['likely_share_percent'], merged['confirm_share_percent']))
    return merged


# ---------------------------------------------------------------- perf

def _symbol(text):
    name = _OFFSET.sub('', text.strip().split(' (')[0].strip())
    return name if name and name != '[unknown]' else None


def parse_perf_script(text, max_samples=None):
    """Samples from `perf script -F comm,tid,ip,sym` text: [{'tid', 'frames': [(kernel, symbol)]}].

    A header line per sample (comm, tid), then one indented 'address symbol' line per frame, leaf
    first; a blank line ends the sample. symbol is None where perf could not name it.
    """
    samples = []
    current = None
    for line in text.splitlines():
        if not line.strip():
            current = None
            continue
        if line[0] not in ' \t':
            if max_samples is not None and len(samples) >= max_samples:
                break
            fields = line.split()
            tid = None
            for field in reversed(fields):
                if field.isdigit():
                    tid = int(field)
                    break
            current = {'tid': tid, 'frames': []}
            samples.append(current)
            continue
        if current is None:
            continue
        address, _sep, symbol = line.strip().partition(' ')
        try:
            kernel = int(address, 16) >= KERNEL_ADDRESS
        except ValueError:
            continue
        current['frames'].append((kernel, _symbol(symbol)))
    return samples


def _top(counts, limit):
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [{'function': name, 'samples': count} for name, count in ranked]


def perf_evidence(samples, functions, top=10):
    """Share of samples with a memory.stat function anywhere in the call graph; pure.

    Returns {'samples', 'kernel_samples', 'stat_samples', 'share_percent', 'kernel_symbols',
    'top_functions' (leaf functions), 'stat_functions_seen' (the innermost stat function per sample)}.
    """
    wanted = set(functions)
    kernel_samples = stat_samples = named = 0
    leaves, seen = {}, {}
    for sample in samples:
        frames = sample['frames']
        if any(kernel for kernel, _name in frames):
            kernel_samples += 1
        if frames:
            leaf = frames[0][1] or '[unknown]'
            leaves[leaf] = leaves.get(leaf, 0) + 1
        named += sum(1 for kernel, name in frames if kernel and name)
        for _kernel, name in frames:
            if name in wanted:
                stat_samples += 1
                seen[name] = seen.get(name, 0) + 1
                break
    total = len(samples)
    return {
        'samples': total,
        'kernel_samples': kernel_samples,
        'stat_samples': stat_samples,
        'share_percent': round(100.0 * stat_samples / total, 1) if total else None,
        'kernel_symbols': named > 0,
        'top_functions': _top(leaves, top),
        'stat_functions_seen': _top(seen, top),
    }


# ---------------------------------------------------------------- fallback: /proc task sampling

def _read_small(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read(65536).decode('utf-8', 'replace')
    except (IOError, OSError):
        return None


def parse_stack(text):
    """Function names of a /proc/<pid>/task/<tid>/stack text ('[<0>] name+0x1/0x2' lines), leaf first."""
    names = []
    for line in (text or '').splitlines():
        fields = line.split()
        if fields:
            name = fields[-1].split('+')[0]
            if name:
                names.append(name)
    return names


def task_snapshot(pid, root='/', max_threads=MAX_THREADS, max_fds=MAX_FDS):
    """One look at a process: its threads' state, stack and wchan, and its open memory.stat files.

    Returns None when the process is gone, else {'threads': [{'tid', 'state', 'stack', 'wchan'}],
    'stat_open': [paths of open memory.stat files], 'stack_readable': bool}.
    """
    task_dir = under_root(root, 'proc', str(pid), 'task')
    try:
        tids = sorted(os.listdir(task_dir))[:max_threads]
    except OSError:
        return None
    threads = []
    stack_readable = False
    for tid in tids:
        stat = _read_small(os.path.join(task_dir, tid, 'stat'))
        if stat is None:
            continue
        stack = _read_small(os.path.join(task_dir, tid, 'stack'))
        stack_readable = stack_readable or stack is not None
        wchan = (_read_small(os.path.join(task_dir, tid, 'wchan')) or '').strip()
        state = stat.rpartition(')')[2].split()[:1]
        threads.append({'tid': int(tid), 'state': state[0] if state else '?',
                        'stack': parse_stack(stack), 'wchan': wchan if wchan not in ('', '0') else None})
    stat_open = []
    fd_dir = under_root(root, 'proc', str(pid), 'fd')
    try:
        fds = os.listdir(fd_dir)[:max_fds]
    except OSError:
        fds = []
    for fd in fds:
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.endswith('/memory.stat'):
            stat_open.append(target)
    return {'threads': threads, 'stat_open': stat_open, 'stack_readable': stack_readable}


def fallback_evidence(snapshots, functions, top=10):
    """Share of task samples in which kubelet was inside a memory.stat read; pure.

    A sample counts when a thread's stack or wchan names a stat function, or when the process had a
    memory.stat file open (cAdvisor opens, reads and closes it: an open file is a read in progress).
    """
    wanted = set(functions)
    hits = stack_hits = open_hits = running = 0
    seen, opened = {}, {}
    readable = False
    for snap in snapshots:
        readable = readable or snap['stack_readable']
        in_stat = False
        if any(thread['state'] == 'R' for thread in snap['threads']):
            running += 1
        for thread in snap['threads']:
            names = [name for name in thread['stack'] + [thread['wchan']] if name in wanted]
            if names:
                in_stat = True
                seen[names[0]] = seen.get(names[0], 0) + 1
        if in_stat:
            stack_hits += 1
        if snap['stat_open']:
            open_hits += 1
            for path in snap['stat_open']:
                opened[path] = opened.get(path, 0) + 1
        if in_stat or snap['stat_open']:
            hits += 1
    total = len(snapshots)
    return {
        'samples': total,
        'running_samples': running,
        'stat_samples': hits,
        'stack_samples': stack_hits,
        'open_samples': open_hits,
        'share_percent': round(100.0 * hits / total, 1) if total else None,
        'stack_readable': readable,
        'stat_functions_seen': _top(seen, top),
        'open_files': [{'path': item['function'], 'samples': item['samples']} for item in _top(opened, top)],
    }


def sample_tasks(pid, seconds, interval_s=0.02, root='/', max_samples=2000, clock=None, sleep=None):
    """task_snapshot() every interval_s for seconds (at most max_samples); stops if the process exits."""
    clock = clock or getattr(time, 'monotonic', time.time)
    sleep = sleep or time.sleep
    end = clock() + seconds
    snapshots = []
    while clock() < end and len(snapshots) < max_samples:
        snap = task_snapshot(pid, root)
        if snap is None:
            break
        snapshots.append(snap)
        sleep(interval_s)
    return snapshots


# ---------------------------------------------------------------- conclusion

def conclude(kubelet, evidence, thresholds):
    """(conclusion, reasons) from kubelet's CPU sample and the evidence dict; pure.

    kubelet: {'found', 'pid', 'cpu_percent', 'user_percent', 'system_percent', 'vanished'}.
    evidence: {'method': 'perf'|'proc'|'none', 'share_percent', 'samples', ...}.
    """
    if not kubelet.get('found'):
        return 'unknown', ['kubelet is not running on this node: nothing to diagnose.']
    cpu = kubelet.get('cpu_percent')
    if cpu is None:
        return 'unknown', ['kubelet (pid %s) exited during the sample: run the diagnosis again.' % kubelet.get('pid')]
    system = kubelet.get('system_percent') or 0.0
    system_share = 100.0 * system / cpu if cpu else 0.0
    cpu_text = 'kubelet (pid %s) used %.0f%% of a CPU, %.0f%% of it in the kernel' % (kubelet.get('pid'), cpu, system_share)
    if cpu < thresholds['busy_cpu_percent']:
        return 'not this', ['%s: under busy_cpu_percent (%s%%), so its CPU is not the problem here.'
                            % (cpu_text, thresholds['busy_cpu_percent'])]
    share = evidence.get('share_percent')
    method = evidence.get('method')
    if method not in ('perf', 'proc') or share is None:
        return 'unknown', ['%s, but no sampling method could see where (%s).'
                           % (cpu_text, evidence.get('error') or 'no samples')]
    where = ('%s%% of %d perf samples of its threads were under memory cgroup stat functions'
             % (share, evidence['samples']) if method == 'perf' else
             '%s%% of %d /proc samples caught it inside a memory.stat read' % (share, evidence['samples']))
    text = '%s; %s' % (cpu_text, where)
    if share >= thresholds['confirm_share_percent']:
        if method == 'perf' or system_share >= thresholds['system_share_percent']:
            return 'confirmed', ['%s (confirm_share_percent %s%%): kubelet burns its CPU reading memory.stat.'
                                 % (text, thresholds['confirm_share_percent'])]
        return 'likely', ['%s, but only %.0f%% of its CPU is kernel time (system_share_percent %s%%).'
                          % (text, system_share, thresholds['system_share_percent'])]
    if share >= thresholds['likely_share_percent']:
        return 'likely', ['%s (likely_share_percent %s%%, confirm_share_percent %s%%).'
                          % (text, thresholds['likely_share_percent'], thresholds['confirm_share_percent'])]
    return 'not this', ['%s, under likely_share_percent (%s%%): look elsewhere for the CPU (see the top functions).'
                        % (text, thresholds['likely_share_percent'])]


# ---------------------------------------------------------------- rates and forecast

def rates(first, second, elapsed_s):
    """Memcg rates between two count_memcgs() results taken elapsed_s apart; pure.

    The kernel counts live + dying (num_cgroups) but not creations: created_per_hour is the net
    growth of that count, a lower bound on creations (memcgs freed meanwhile are not seen).
    dying_per_hour is the net growth of the dying count, what the forecast extrapolates.
    """
    result = {'interval_s': round(elapsed_s, 3), 'first': first, 'second': second,
              'created': None, 'created_per_hour': None, 'dying_delta': None, 'dying_per_hour': None}
    if elapsed_s <= 0 or first.get('total') is None or second.get('total') is None:
        return result
    per_hour = 3600.0 / elapsed_s
    total_delta = second['total'] - first['total']
    dying_delta = second['dying'] - first['dying']
    result.update({
        'created': max(total_delta, 0),
        'created_per_hour': round(max(total_delta, 0) * per_hour, 1),
        'dying_delta': dying_delta,
        'dying_per_hour': round(dying_delta * per_hour, 1),
    })
    return result


def _hours_until(current, limit, per_hour):
    if current is None or per_hour is None:
        return None
    if current >= limit:
        return 0.0
    if per_hour <= 0:
        return None
    return round((limit - current) / per_hour, 2)


def hours_text(hours):
    """'3.2 hours', or '25 min' under an hour."""
    if hours >= 1:
        return '%.1f hours' % hours
    return '%.0f min' % (hours * 60)


def forecast(counts, rate, critical_dying, release):
    """When the node gets sick at the measured rate; pure.

    Returns {'dying_per_hour', 'critical_dying', 'hours_to_critical', 'id_limit', 'hours_to_id_limit',
    'hours_back_after_drop', 'summary' [sentences]}. Hours are None when the count does not grow.
    id_limit applies to RHEL 7 3.10 kernels only (None elsewhere). hours_back_after_drop: a drop_caches
    that released every dying memcg would see today's count back after that many hours.
    """
    per_hour = rate.get('dying_per_hour')
    dying, total = counts.get('dying'), counts.get('total')
    el7 = bool(EL7_KERNEL.match(release or ''))
    result = {
        'dying_per_hour': per_hour,
        'critical_dying': critical_dying,
        'hours_to_critical': _hours_until(dying, critical_dying, per_hour),
        'id_limit': MEMCG_ID_LIMIT if el7 else None,
        'hours_to_id_limit': _hours_until(total, MEMCG_ID_LIMIT, per_hour) if el7 else None,
        'hours_back_after_drop': round(dying / per_hour, 2) if dying and per_hour and per_hour > 0 else None,
        'summary': [],
    }
    say = result['summary'].append
    if per_hour is None:
        say('The dying memcg count could not be measured twice: no forecast.')
        return result
    if per_hour <= 0:
        say('Dying memcgs did not grow over the interval (%+.1f per hour): no crossing is forecast.' % per_hour)
    elif result['hours_to_critical'] == 0:
        say('%d dying memcgs already exceed critical_dying (%d); they grow by %.1f per hour.'
            % (dying, critical_dying, per_hour))
    else:
        say('At %.1f dying memcgs per hour the node crosses critical_dying (%d) in %s.'
            % (per_hour, critical_dying, hours_text(result['hours_to_critical'])))
    if el7 and result['hours_to_id_limit'] is not None:
        say('This RHEL 7 kernel fails every cgroup mkdir at %d memcgs: %s.'
            % (MEMCG_ID_LIMIT, 'reached now' if result['hours_to_id_limit'] == 0
               else 'reached in ' + hours_text(result['hours_to_id_limit'])))
    if result['hours_back_after_drop'] is not None:
        say('A drop_caches that released all %d dying memcgs would see them back in %s.'
            % (dying, hours_text(result['hours_back_after_drop'])))
    return result


# ---------------------------------------------------------------- memory.stat at each level

def stat_levels(cgroup, root='/', max_pods=3):
    """[(level, host path of the cgroup)] cAdvisor reads: root, kubepods, QoS slices, a few pods.

    Pods are the first max_pods pod cgroups by name (guaranteed ones under kubepods, the others
    under their QoS slice), for the cgroupfs (kubepods/burstable/pod<uid>) and systemd
    (kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice) drivers.
    """
    top = cgroups.stat_dir(cgroup)
    if top is None:
        return []
    levels = [('root', top)]
    kubepods = cgroups.find_kubepods(cgroup, root)
    if kubepods is None:
        return levels
    levels.append(('kubepods', kubepods))
    systemd = kubepods.endswith('.slice')
    parents = [kubepods]
    for qos in QOS_NAMES:
        path = os.path.join(kubepods, 'kubepods-%s.slice' % qos if systemd else qos)
        if os.path.isdir(under_root(root, path)):
            levels.append(('qos:' + qos, path))
            parents.append(path)
    pods = []
    for parent in parents:
        try:
            names = os.listdir(under_root(root, parent))
        except OSError:
            continue
        pods.extend(os.path.join(parent, name) for name in names if _POD_DIR.match(name))
    levels.extend(('pod', path) for path in sorted(pods, key=os.path.basename)[:max_pods])
    return levels


def call_with_timeout(function, timeout_s):
    """Run function() in a daemon thread; ('done', value) | ('error', exc) | ('timeout', None).

    A memory.stat read on a sick node can take seconds and cannot be interrupted: the thread is
    left behind (it dies with the process) and the caller stops reading.
    """
    box = {}

    def target():
        try:
            box['value'] = function()
        except Exception as exc:  # pylint: disable=broad-except  # handed back to the caller
            box['error'] = exc

    worker = threading.Thread(target=target)
    worker.daemon = True
    worker.start()
    worker.join(max(timeout_s, 0))
    if worker.is_alive():
        return 'timeout', None
    if 'error' in box:
        return 'error', box['error']
    return 'done', box.get('value')


def time_levels(levels, deadline, warn_ms, root='/', clock=None):
    """Time one memory.stat read per level until the deadline (clock() value); stop at the first timeout.

    Returns [{'level', 'path', 'ms' (None unless read), 'status': 'read'|'missing'|'timeout'|'skipped'|'error',
    'slow', 'error'}].
    """
    clock = clock or getattr(time, 'monotonic', time.time)
    rows = []
    stopped = False
    for level, path in levels:
        stat_path = os.path.join(path, 'memory.stat')
        row = {'level': level, 'path': stat_path, 'ms': None, 'slow': False, 'status': 'skipped', 'error': None}
        rows.append(row)
        remaining = deadline - clock()
        if stopped or remaining <= 0:
            continue
        outcome, value = call_with_timeout(
            lambda stat_path=stat_path: cgroups.time_read(stat_path, 1, warn_ms, root, clock), remaining)
        if outcome == 'timeout':
            row.update(status='timeout', error='no answer within the %.1f s left of the time budget' % remaining)
            stopped = True
        elif outcome == 'error':
            row.update(status='error', error=str(value))
        elif value is None:
            row['status'] = 'missing'
        else:
            row.update(status='read', ms=value['max_ms'], slow=value['slow'])
    return rows


# ---------------------------------------------------------------- other memcg makers on the node

def transient_units(root='/'):
    """Transient systemd units by type from <root>/run/systemd/transient (None when absent)."""
    path = under_root(root, '/run/systemd/transient')
    try:
        names = os.listdir(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise MemcgError('cannot list %s: %s' % (path, exc.strerror or exc))
    counts = {}
    for name in names:
        kind = name.rpartition('.')[2] or 'other'
        counts[kind] = counts.get(kind, 0) + 1
    return {'total': len(names), 'by_type': counts}


def live_by_top(cgroup, root='/'):
    """Live memcgs per top-level cgroup (kubepods.slice, system.slice, ...), for where churn lands."""
    top = cgroups.stat_dir(cgroup)
    if top is None:
        return {}
    result = {}
    full = under_root(root, top)
    try:
        names = sorted(os.listdir(full))
    except OSError as exc:
        raise MemcgError('cannot list %s: %s' % (full, exc.strerror or exc))
    for name in names:
        path = os.path.join(full, name)
        if os.path.isdir(path) and not os.path.islink(path):
            try:
                result[name] = cgroups.count_dirs(path)
            except MemcgError:
                continue  # removed while we looked
    return result


# ---------------------------------------------------------------- running perf, bounded

MAX_PERF_SCRIPT_BYTES = 32 * 1024 * 1024  # perf script text read; perf script is stopped after that
MAX_PERF_SAMPLES = 20000
FINISH_RESERVE_S = 1.0  # of the budget, kept for what follows the memory.stat reads
MIN_FALLBACK_S = 0.5  # /proc sampling after a perf failure, when the sampling time is already used up
PERF_FREQUENCY = 99  # Hz: an odd rate that does not beat with timers


def _wait(process, deadline, clock):
    """Wait for process until the clock reaches deadline; kill it (by its pid) after that."""
    outcome, _value = call_with_timeout(process.wait, deadline - clock())
    if outcome == 'timeout':
        process.kill()
        process.wait()
        return False
    return True


def run_perf(perf, sleep_binary, pid, seconds, workdir, deadline, frequency=PERF_FREQUENCY, clock=None):
    """Record kernel call graphs of pid's threads for seconds and return perf_evidence() input.

    Returns {'samples' (parse_perf_script result) or None, 'error' (str or None), 'truncated'}.
    perf writes only workdir/perf.data (no build-id cache: --no-buildid-cache); both commands are
    killed at deadline.
    """
    clock = clock or getattr(time, 'monotonic', time.time)
    data = os.path.join(workdir, 'perf.data')
    env = dict(os.environ, LANG='C', LC_ALL='C')
    record = [perf, 'record', '--quiet', '--no-buildid', '--no-buildid-cache', '-g', '-F', str(int(frequency)),
              '-p', str(pid), '-o', data, '--', sleep_binary, '%.3f' % seconds]
    err_path = os.path.join(workdir, 'perf.err')
    with open(err_path, 'wb') as err:
        process = subprocess.Popen(record, stdin=subprocess.PIPE, stdout=err, stderr=err, env=env, close_fds=True)
        process.stdin.close()
        finished = _wait(process, deadline, clock)
    if not finished:
        return {'samples': None, 'error': 'perf record did not finish within the time budget', 'truncated': False}
    if process.returncode != 0 or not os.path.exists(data):
        message = (_read_small(err_path) or '').strip().splitlines()
        return {'samples': None, 'truncated': False,
                'error': 'perf record failed (rc %s): %s' % (process.returncode, ' '.join(message[-3:])[:500])}
    script = [perf, 'script', '-i', data, '-F', 'comm,tid,ip,sym', '--max-stack', '64']
    with open(err_path, 'wb') as err:
        process = subprocess.Popen(script, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env,
                                   close_fds=True)
        process.stdin.close()
        # At most MAX_PERF_SCRIPT_BYTES are read (in memory, nothing on disk); perf is killed after that.
        outcome, raw = call_with_timeout(lambda: process.stdout.read(MAX_PERF_SCRIPT_BYTES + 1), deadline - clock())
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
    if outcome != 'done':
        return {'samples': None, 'error': 'perf script did not finish within the time budget', 'truncated': False}
    text = raw.decode('utf-8', 'replace')
    truncated = len(raw) > MAX_PERF_SCRIPT_BYTES
    if not truncated and process.returncode != 0:
        message = (_read_small(err_path) or '').strip().splitlines()
        return {'samples': None, 'truncated': False,
                'error': 'perf script failed (rc %s): %s' % (process.returncode, ' '.join(message[-3:])[:500])}
    if truncated:
        text = text[:text.rfind('\n\n', 0, MAX_PERF_SCRIPT_BYTES) + 1]
    samples = parse_perf_script(text, MAX_PERF_SAMPLES)
    return {'samples': samples, 'error': None, 'truncated': truncated or len(samples) >= MAX_PERF_SAMPLES}


# ---------------------------------------------------------------- the diagnosis

VISIBILITY = {
    'perf': 'perf samples every thread of kubelet with its kernel call graph, running or not: the share '
            'under memory cgroup stat functions is the share of kubelet CPU samples spent reading them.',
    'proc': '/proc sampling sees the stacks and wchan of sleeping or blocked threads and which files '
            'kubelet has open; a running thread\'s stack is not visible (on many kernels only '
            'interrupt-exit frames), so a read in progress is seen as an open memory.stat file.',
    'none': 'kubelet was not sampled.',
}


def _kubelet_pid(root, name, pid):
    if pid is None:
        pids = procfs.find_pids(name, root)
        pid = pids[0] if pids else None
    if pid is not None and procfs.read_pid_stat(pid, root) is None:
        return None
    return pid


def _evidence(pid, method, duration_s, deadline, functions, perf, sleep_binary, workdir, root, clock, sleep):
    """Sample kubelet for duration_s with perf and/or /proc; the evidence dict."""
    evidence = {'method': 'none', 'tried': [], 'error': None}
    end = clock() + duration_s
    deadline -= FINISH_RESERVE_S  # sampling leaves time for the counts and reads that follow
    if pid is None:
        return evidence, end
    if method in ('auto', 'perf'):
        evidence['tried'].append('perf')
        if not perf:
            evidence['error'] = 'perf is not installed on this node'
        else:
            recorded = run_perf(perf, sleep_binary, pid, duration_s, workdir, deadline - MIN_FALLBACK_S, clock=clock)
            if recorded['samples'] is not None:
                found = perf_evidence(recorded['samples'], functions)
                if found['kernel_samples'] and not found['kernel_symbols']:
                    evidence['error'] = 'perf could not name kernel functions (kernel.kptr_restrict?)'
                elif not found['samples']:
                    evidence['error'] = 'perf recorded no samples of pid %s' % pid
                else:
                    found.update(method='perf', tried=evidence['tried'], error=None,
                                 truncated=recorded['truncated'])
                    return found, end
            else:
                evidence['error'] = recorded['error']
    if method in ('auto', 'proc'):
        evidence['tried'].append('proc')
        # after a perf failure, at least a short look when the budget still allows one
        seconds = min(max(end - clock(), MIN_FALLBACK_S), deadline - clock())
        snapshots = sample_tasks(pid, seconds, root=root, clock=clock, sleep=sleep) if seconds > 0 else []
        if snapshots:
            found = fallback_evidence(snapshots, functions)
            found.update(method='proc', tried=evidence['tried'],
                         error=evidence['error'] and 'perf: %s; fell back to /proc sampling' % evidence['error'])
            return found, end
        evidence['error'] = ('%s; ' % evidence['error'] if evidence['error'] else '') + (
            'no time left in the budget for /proc sampling' if seconds <= 0 else 'kubelet exited before /proc could be sampled')
    return evidence, end


def collect(root='/', kubelet_name='kubelet', kubelet_pid=None, duration_s=30.0, timeout_s=60.0, method='auto',
            perf=None, sleep_binary='sleep', workdir=None, max_pods=3, thresholds=None, critical_dying=20000,
            warn_read_ms=100, clock=None, sleep=None, ticks_per_s=None):
    """Diagnose the node under root within timeout_s seconds; the memcg_diagnose result (without changed).

    Order: memcg counts, kubelet CPU, duration_s of sampling (perf, else /proc), kubelet CPU and
    memcg counts again (the rates' interval), then memory.stat reads per level with what is left.
    perf: path of the perf binary or None; workdir: a private temporary directory for perf's files.
    """
    if duration_s <= 0:
        raise MemcgError('duration must be positive, got %r' % duration_s)
    if timeout_s < duration_s + 5:
        raise MemcgError('timeout (%r s) must exceed duration (%r s) by at least 5 s' % (timeout_s, duration_s))
    if method not in ('auto', 'perf', 'proc'):
        raise MemcgError('method must be auto, perf or proc, got %r' % method)
    if max_pods < 0:
        raise MemcgError('max_pods must not be negative, got %r' % max_pods)
    applied = validate_thresholds(thresholds)
    clock = clock or getattr(time, 'monotonic', time.time)
    sleep = sleep or time.sleep
    ticks_per_s = ticks_per_s or procfs.clock_ticks()
    started = clock()
    deadline = started + timeout_s

    release = procfs.read_osrelease(root)
    generation, functions = stat_functions(release)
    cgroup = cgroups.detect_layout(root)
    first = cgroups.count_memcgs(cgroup, root)
    counted = clock()

    pid = _kubelet_pid(root, kubelet_name, kubelet_pid)
    before = procfs.read_pid_stat(pid, root) if pid is not None else None
    cpu_start = clock()
    evidence, end = _evidence(pid, method, duration_s, deadline, functions, perf, sleep_binary, workdir,
                              root, clock, sleep)
    if clock() < end:
        sleep(max(min(end, deadline) - clock(), 0))  # keep the interval even when sampling ended early
    after = procfs.read_pid_stat(pid, root) if pid is not None else None
    interval = clock() - cpu_start
    kubelet = {'found': before is not None, 'pid': pid, 'interval_s': round(interval, 3)}
    if before is not None and after is not None and after['comm'] == before['comm']:
        kubelet.update(procfs.cpu_percent(before, after, interval, ticks_per_s), vanished=False)
    else:
        kubelet.update(procfs.cpu_percent(None, None, 0, ticks_per_s), vanished=before is not None)
    second = cgroups.count_memcgs(cgroup, root)
    rate = rates(first, second, clock() - counted)

    levels = time_levels(stat_levels(cgroup, root, max_pods), deadline - FINISH_RESERVE_S, warn_read_ms, root, clock)
    conclusion, reasons = conclude(kubelet, evidence, applied)
    evidence['functions'] = list(functions)
    evidence['kernel_generation'] = generation
    evidence['visibility'] = VISIBILITY[evidence['method']]
    sources = {'transient_units': transient_units(root), 'live_by_top': live_by_top(cgroup, root)}
    elapsed = clock() - started
    return {
        'kernel': {'release': release, 'generation': generation},
        'cgroup': cgroup,
        'kubelet': kubelet,
        'evidence': evidence,
        'conclusion': conclusion,
        'reasons': reasons,
        'read_latency': levels,
        'rates': rate,
        'forecast': forecast(second, rate, critical_dying, release),
        'sources': sources,
        'timing': {'timeout_s': timeout_s, 'duration_s': duration_s, 'elapsed_s': round(elapsed, 3),
                   'within_budget': elapsed <= timeout_s,
                   'stopped_early': any(row['status'] in ('timeout', 'skipped') for row in levels)},
        'thresholds': applied,
    }
