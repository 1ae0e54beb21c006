# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stopgap mitigation, done carefully: gate, optional memcg reaper, sync, drop_caches, measure.

One pass measures the node with probe.collect(), opens the gate only when the verdict reaches
min_verdict (or force is set), then, outside check mode, runs sync, the Alibaba memcg reaper
and/or writes drop_caches, waits settle_seconds and measures again. The drop_caches module and
a node-side script share it: side effects that are not writes under root (sync, sleep, the probe
itself) are passed in as functions, so each caller runs them its own way (run_command,
subprocess) and the decisions stay the same.

Entry points: assess() (measure and decide; writes nothing), apply() (act on an assessment),
run_mitigation() (both, or only assess() in check mode). Result keys: docs/drop_caches.md.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import math
import numbers
import os

from ansible_collections.nodeops.memcg.plugins.module_utils import probe
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.root_paths import under_root

LEVELS = (1, 2, 3)  # 1 page cache, 2 reclaimable slab (dentries, inodes), 3 both
VERDICT_RANK = {'ok': 0, 'warn': 1, 'critical': 2}
MIN_VERDICTS = ('warn', 'critical')
REAPER_MODES = ('before', 'instead', 'never')
MAX_SETTLE_SECONDS = 300
DROP_CACHES = '/proc/sys/vm/drop_caches'
# Alibaba Cloud Linux kernels: reap_background (0/1 switch), scan_interval (seconds),
# pages_scan (pages per scan), reap (write 1 for one round of reaping, no guarantee).
REAPER_DIR = '/sys/kernel/mm/memcg_reaper'
REAPER_SETTINGS = ('reap_background', 'scan_interval', 'pages_scan')
# Keys of before/after compared in delta: (name in delta, section of the snapshot or None).
DELTA_KEYS = (('dying', 'memcg'), ('total', 'memcg'), ('slab_kb', 'slab'), ('sreclaimable_kb', 'slab'),
              ('sunreclaim_kb', 'slab'), ('nr_dentry', 'dentry'), ('root_read_ms', None))


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def validate(level=2, min_verdict='warn', reaper_mode='before', settle_seconds=1.0, cpu_interval_s=0.0,
             stat_reads=1, thresholds=None, read_timeout_s=None):
    """Check every option before anything is read or written; return the merged thresholds.

    read_timeout_s (probe.validate_options()) is checked too; assess() takes its resolved value.

    Raises MemcgError naming the option and the bad value.
    """
    if not _is_int(level) or level not in LEVELS:
        raise MemcgError('level must be one of 1, 2, 3, got %r' % (level,))
    if min_verdict not in MIN_VERDICTS:
        raise MemcgError('min_verdict must be one of %s, got %r' % (', '.join(MIN_VERDICTS), min_verdict))
    if reaper_mode not in REAPER_MODES:
        raise MemcgError('reaper must be one of %s, got %r' % (', '.join(REAPER_MODES), reaper_mode))
    if not _is_number(settle_seconds) or math.isnan(settle_seconds) or math.isinf(settle_seconds):
        raise MemcgError('settle_seconds must be a finite number, got %r' % (settle_seconds,))
    if not 0 <= settle_seconds <= MAX_SETTLE_SECONDS:
        raise MemcgError('settle_seconds must be between 0 and %d, got %r' % (MAX_SETTLE_SECONDS, settle_seconds))
    return probe.validate_options(cpu_interval_s, stat_reads, read_timeout_s, thresholds)[0]


def gate(verdict, min_verdict='warn', force=False, reasons=None):
    """Open the gate when verdict reaches min_verdict, or when force is set; pure.

    Returns {'verdict', 'min_verdict', 'forced', 'reasons', 'open', 'decision'}: forced tells
    that force was set; decision is a sentence about the gate alone (plan_sentence() writes the
    full one, with the actions).
    """
    if verdict not in VERDICT_RANK:
        raise MemcgError('unknown verdict %r; expected one of ok, warn, critical' % (verdict,))
    if min_verdict not in MIN_VERDICTS:
        raise MemcgError('min_verdict must be one of %s, got %r' % (', '.join(MIN_VERDICTS), min_verdict))
    reached = VERDICT_RANK[verdict] >= VERDICT_RANK[min_verdict]
    result = {'verdict': verdict, 'min_verdict': min_verdict, 'forced': bool(force),
              'reasons': list(reasons or []), 'open': bool(reached or force)}
    result['decision'] = _gate_sentence(result) + '.'
    return result


def _gate_sentence(gate_result):
    verdict, min_verdict = gate_result['verdict'], gate_result['min_verdict']
    if VERDICT_RANK[verdict] >= VERDICT_RANK[min_verdict]:
        return 'Verdict %s reaches min_verdict %s' % (verdict, min_verdict)
    if gate_result['forced']:
        return 'Verdict %s is below min_verdict %s, but force is set' % (verdict, min_verdict)
    return 'Verdict %s is below min_verdict %s' % (verdict, min_verdict)


def read_int(root, path):
    """The integer in the file <root><path>, or None when it is missing or holds no integer."""
    try:
        with open(under_root(root, path), 'rb') as handle:
            text = handle.read().decode('utf-8', 'replace')
    except (IOError, OSError):
        return None
    fields = text.split()
    try:
        return int(fields[0]) if fields else None
    except ValueError:
        return None


def reaper_paths(root='/'):
    """Full paths (under root) of the memcg reaper's directory and files: {'dir', 'reap', <settings>}."""
    paths = {'dir': under_root(root, REAPER_DIR), 'reap': under_root(root, REAPER_DIR + '/reap')}
    for name in REAPER_SETTINGS:
        paths[name] = under_root(root, REAPER_DIR + '/' + name)
    return paths


def discover_reaper(root='/'):
    """Look for the Alibaba memcg reaper under root.

    Returns {'available', 'path', 'reap_background', 'scan_interval', 'pages_scan'}: available
    when <root>/sys/kernel/mm/memcg_reaper/ holds the one-shot reap file; the settings are the
    integers read (None when missing); path is the host path.
    """
    paths = reaper_paths(root)
    available = os.path.isdir(paths['dir']) and os.path.exists(paths['reap'])
    found = {'available': available, 'path': REAPER_DIR}
    for name in REAPER_SETTINGS:
        found[name] = read_int(root, REAPER_DIR + '/' + name) if available else None
    return found


def plan(gate_result, reaper, reaper_mode='before', reaper_background=False):
    """What to do: {'reap', 'drop', 'enable_background'} (bools); pure.

    reap: the gate is open, the reaper exists and reaper_mode is before or instead.
    drop: the gate is open, unless the reaper exists and reaper_mode is instead.
    enable_background: reaper_background is asked, the reaper exists and reap_background is not 1
    (not gated: it is a setting, and writing it is idempotent).
    """
    if reaper_mode not in REAPER_MODES:
        raise MemcgError('reaper must be one of %s, got %r' % (', '.join(REAPER_MODES), reaper_mode))
    use_reaper = bool(reaper['available']) and reaper_mode != 'never'
    enable = bool(reaper_background and reaper['available'] and reaper.get('reap_background') != 1)
    if enable and reaper.get('reap_background') is None:
        raise MemcgError('reaper_background is set but %s/reap_background is missing or unreadable'
                         % reaper['path'])
    return {
        'reap': gate_result['open'] and use_reaper,
        'drop': gate_result['open'] and not (use_reaper and reaper_mode == 'instead'),
        'enable_background': enable,
    }


def plan_sentence(gate_result, actions, level, done=False, reaper_available=True, reaper_mode='before'):
    """The decision sentence: the gate, then what was (done) or would be done; pure."""
    steps = []
    if actions['enable_background']:
        steps.append('enabled background reaping (reap_background 1)' if done
                     else 'would enable background reaping (reap_background 1)')
    if actions['reap']:
        steps.append('reaped zombie memory cgroups with the memcg reaper' if done
                     else 'would reap zombie memory cgroups with the memcg reaper')
    if actions['drop']:
        steps.append('dropped caches (level %d)' % level if done else 'would drop caches (level %d)' % level)
    elif gate_result['open'] and actions['reap']:
        steps.append('caches not dropped (reaper: instead)')
    if not gate_result['open']:
        steps.append('nothing dropped (force: true drops anyway)')
    elif reaper_mode == 'instead' and not reaper_available:
        steps.append('no memcg reaper on this kernel (reaper: instead), so caches are dropped')
    return '%s: %s.' % (_gate_sentence(gate_result), ', '.join(steps))


def snapshot(facts):
    """The figures compared before and after, from a probe.collect() result; pure.

    {'memcg': {'total', 'live', 'dying'}, 'slab': {'slab_kb', 'sreclaimable_kb', 'sunreclaim_kb'},
    'dentry': {'nr_dentry', 'nr_unused'}, 'root_read_ms', 'root_read_timed_out', 'verdict'}; a
    timed-out read counts the time waited in root_read_ms.
    """
    memcg = facts.get('memcg') or {}
    slab = facts.get('slab') or {}
    dentry = facts.get('dentry') or {}
    root_latency = (facts.get('read_latency') or {}).get('root')
    return {
        'memcg': dict((key, memcg.get(key)) for key in ('total', 'live', 'dying')),
        'slab': dict((key, slab.get(key)) for key in ('slab_kb', 'sreclaimable_kb', 'sunreclaim_kb')),
        'dentry': dict((key, dentry.get(key)) for key in ('nr_dentry', 'nr_unused')),
        'root_read_ms': root_latency['max_ms'] if root_latency else None,
        'root_read_timed_out': bool(root_latency and root_latency.get('timed_out')),
        'verdict': facts.get('verdict'),
    }


def delta(before, after):
    """after minus before for each DELTA_KEYS figure (None where either is None); None without after."""
    if after is None:
        return None
    result = {}
    for name, section in DELTA_KEYS:
        old = before.get(section, {}).get(name) if section else before.get(name)
        new = after.get(section, {}).get(name) if section else after.get(name)
        if old is None or new is None:
            result[name] = None
        elif name == 'root_read_ms':
            result[name] = round(new - old, 3)
        else:
            result[name] = new - old
    return result


def write_value(root, path, value):
    """Write str(value) into the existing file <root><path>, as `echo value > path` does.

    The file is opened for writing without O_CREAT: a missing file (wrong root, no such kernel
    knob) is an error naming the path, never a new file. Raises MemcgError.
    """
    full = under_root(root, path)
    data = str(value).encode('ascii')
    try:
        fd = os.open(full, os.O_WRONLY | os.O_TRUNC)
    except OSError as exc:
        hint = ' (writing it needs root)' if exc.errno in (errno.EACCES, errno.EPERM) else ''
        raise MemcgError('cannot open %s for writing: %s%s' % (full, exc.strerror or exc, hint))
    try:
        try:
            written = os.write(fd, data)
        except OSError as exc:
            raise MemcgError('cannot write %r to %s: %s' % (data.decode('ascii'), full, exc.strerror or exc))
        if written != len(data):
            raise MemcgError('short write of %r to %s (%d bytes)' % (data.decode('ascii'), full, written))
    finally:
        os.close(fd)
    return full


def drop_caches(root, level):
    """Write level into <root>/proc/sys/vm/drop_caches (1, 2 or 3)."""
    if not _is_int(level) or level not in LEVELS:
        raise MemcgError('level must be one of 1, 2, 3, got %r' % (level,))
    return write_value(root, DROP_CACHES, level)


def reap(root):
    """Trigger one round of the memcg reaper: write 1 into <root>/sys/kernel/mm/memcg_reaper/reap."""
    return write_value(root, REAPER_DIR + '/reap', 1)


def enable_background_reaper(root):
    """Write 1 into <root>/sys/kernel/mm/memcg_reaper/reap_background; returns the value read back."""
    write_value(root, REAPER_DIR + '/reap_background', 1)
    return read_int(root, REAPER_DIR + '/reap_background')


def is_real_root(root):
    """True when root is the machine's own / (sync only makes sense there)."""
    return os.path.realpath(root or '/') == '/'


def _sync_state(sync, root, actions):
    if not sync:
        return {'requested': False, 'ran': False, 'note': 'sync is false: dirty objects are not written back first'}
    if not is_real_root(root):
        return {'requested': True, 'ran': False,
                'note': 'root is %s, not /: sync skipped (a tree under another root needs none)' % root}
    if not actions['drop']:
        return {'requested': True, 'ran': False, 'note': 'nothing to drop, so no sync'}
    return {'requested': True, 'ran': False, 'note': 'would run right before drop_caches'}


def assess(root='/', level=2, min_verdict='warn', force=False, reaper_mode='before', reaper_background=False,
           sync=True, settle_seconds=1.0, thresholds=None, cpu_interval_s=0.0, stat_reads=1,
           kernel_overrides=None, kubelet_name='kubelet', kubelet_pid=None, collect_fn=None, read_timeout_s=None):
    """Validate, measure (one probe.collect()), decide; write nothing.

    Returns a state dict {'options', 'actions', 'result'}; result is what check mode returns:
    changed (what apply() would change), dropped False, would_drop, level, gate, before,
    after None, delta None, reaper, sync. Pass the state to apply() to act on it.
    collect_fn: probe.collect or a stand-in with its signature.
    """
    if root == '':
        raise MemcgError("root must not be empty; leave it out for '/'")
    applied = validate(level, min_verdict, reaper_mode, settle_seconds, cpu_interval_s, stat_reads, thresholds,
                       read_timeout_s)
    options = {
        'root': root or '/', 'level': level, 'read_timeout_s': read_timeout_s, 'sync': bool(sync), 'settle_seconds': settle_seconds,
        'stat_reads': stat_reads, 'thresholds': applied, 'kernel_overrides': kernel_overrides,
        'kubelet_name': kubelet_name, 'kubelet_pid': kubelet_pid, 'reaper_mode': reaper_mode,
        'collect_fn': collect_fn or probe.collect,
    }
    facts = options['collect_fn'](root=options['root'], kubelet_name=kubelet_name, kubelet_pid=kubelet_pid,
                                  cpu_interval_s=cpu_interval_s, stat_reads=stat_reads, thresholds=applied,
                                  kernel_overrides=kernel_overrides, read_timeout_s=read_timeout_s)
    reaper = discover_reaper(options['root'])
    decided = gate(facts['verdict'], min_verdict, force, facts.get('reasons'))
    decided['thresholds'] = applied
    actions = plan(decided, reaper, reaper_mode, reaper_background)
    decided['decision'] = plan_sentence(decided, actions, level, False, reaper['available'], reaper_mode)
    background = reaper['reap_background']
    result = {
        'changed': bool(actions['drop'] or actions['reap'] or actions['enable_background']),
        'dropped': False,
        'would_drop': actions['drop'],
        'level': level,
        'gate': decided,
        'before': snapshot(facts),
        'after': None,
        'delta': None,
        'reaper': {
            'available': reaper['available'],
            'path': reaper['path'],
            'mode': reaper_mode,
            'reaped': False,
            'would_reap': actions['reap'],
            'background': {'requested': bool(reaper_background), 'before': background,
                           'after': 1 if actions['enable_background'] else background},
            'scan_interval': reaper['scan_interval'],
            'pages_scan': reaper['pages_scan'],
        },
        'sync': _sync_state(sync, options['root'], actions),
    }
    return {'options': options, 'actions': actions, 'result': result}


def apply(state, sync_fn, sleep_fn):
    """Act on an assess() state: sync, enable background reaping, reap, drop, settle, measure again.

    sync_fn(): flush dirty data (called only when dropping, sync is true and root is '/'; it
    raises MemcgError on failure, before anything is written). sleep_fn(seconds): wait for the
    kernel to release memory cgroups (it does so asynchronously). Returns the result with
    dropped, reaped, after (measured only when something was dropped or reaped) and delta.
    """
    options, actions, result = state['options'], state['actions'], state['result']
    root = options['root']
    reaper = result['reaper']
    done = []
    try:
        if result['sync']['requested'] and actions['drop'] and is_real_root(root):
            if sync_fn is None:
                raise MemcgError('sync is true but no sync function was given')
            sync_fn()
            result['sync'].update(ran=True, note='ran sync before drop_caches')
        if actions['enable_background']:
            reaper['background']['after'] = enable_background_reaper(root)
            done.append('background reaping enabled')
        if actions['reap']:
            reap(root)
            reaper['reaped'] = True
            done.append('reaper triggered')
        if actions['drop']:
            drop_caches(root, options['level'])
            result['dropped'] = True
    except MemcgError as exc:
        if done:
            raise MemcgError('%s (already done: %s)' % (exc, ', '.join(done)))
        raise
    if actions['reap'] or actions['drop']:
        if options['settle_seconds'] > 0:
            sleep_fn(options['settle_seconds'])
        # Kubelet is not sampled again: the delta does not use it, and it would only add time.
        facts = options['collect_fn'](root=root, kubelet_name=options['kubelet_name'],
                                      kubelet_pid=options['kubelet_pid'], cpu_interval_s=0,
                                      stat_reads=options['stat_reads'], thresholds=options['thresholds'],
                                      kernel_overrides=options['kernel_overrides'],
                                      read_timeout_s=options['read_timeout_s'])
        result['after'] = snapshot(facts)
        result['delta'] = delta(result['before'], result['after'])
    result['gate']['decision'] = plan_sentence(result['gate'], actions, options['level'], True,
                                               reaper['available'], options['reaper_mode'])
    return result


def run_mitigation(root, level, sync_fn, sleep_fn, min_verdict='warn', force=False, reaper_mode='before',
                   reaper_background=False, sync=True, settle_seconds=1.0, thresholds=None, cpu_interval_s=0.0,
                   stat_reads=1, kernel_overrides=None, kubelet_name='kubelet', kubelet_pid=None,
                   check_mode=False, collect_fn=None, read_timeout_s=None):
    """assess() then, unless check_mode, apply(): the whole mitigation in one call; returns the result."""
    state = assess(root, level, min_verdict, force, reaper_mode, reaper_background, sync, settle_seconds,
                   thresholds, cpu_interval_s, stat_reads, kernel_overrides, kubelet_name, kubelet_pid,
                   collect_fn, read_timeout_s)
    if check_mode:
        return state['result']
    return apply(state, sync_fn, sleep_fn)
