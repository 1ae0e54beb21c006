# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Memory cgroup facts: mounts, layout, live/dying counts, kubepods lookup, memory.stat timing.

Every reader takes ``root`` and joins host paths under it, so tests hand it a fixture tree.
Paths in results are host paths (as mountinfo shows them), not prefixed with ``root``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import re
import stat
import time

from ansible_collections.nodeops.memcg.plugins.module_utils import bounded
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.procfs import read_text
from ansible_collections.nodeops.memcg.plugins.module_utils.root_paths import under_root

KUBEPODS_NAMES = ('kubepods.slice', 'kubepods')  # systemd driver, cgroupfs driver
MAX_STAT_READS = 5
READ_CHUNK = 1024 * 1024

_OCTAL_ESCAPE = re.compile(r'\\([0-7]{3})')
# Errors that mean "it went away while we looked": cgroups are removed all the time.
_VANISHED = (errno.ENOENT, errno.ENOTDIR, errno.ESTALE, errno.ENODEV)  # ENODEV: kernfs node removed while open


def _read_text(root, path):
    return read_text(under_root(root, path))


def _unescape(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def parse_mountinfo(text):
    """Parse /proc/<pid>/mountinfo text into a list of dicts.

    Keys: mount_root, mount_point, fstype, source, super_options (list).
    """
    mounts = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(' ')
        try:
            sep = fields.index('-', 6)  # optional fields end at a lone '-'
            mount_root, mount_point = fields[3], fields[4]
            fstype, source, super_options = fields[sep + 1], fields[sep + 2], fields[sep + 3]
        except (ValueError, IndexError):
            raise MemcgError('mountinfo line %d is malformed: %r' % (number, line))
        mounts.append({
            'mount_root': _unescape(mount_root),
            'mount_point': _unescape(mount_point),
            'fstype': fstype,
            'source': _unescape(source),
            'super_options': super_options.split(','),
        })
    return mounts


def _pick(mounts):
    # Prefer a mount of the whole hierarchy over a bind mount of a sub-cgroup.
    for mount in mounts:
        if mount['mount_root'] == '/':
            return mount['mount_point']
    return mounts[0]['mount_point'] if mounts else None


def read_controllers(root, unified_mount):
    """Controllers listed in <unified>/cgroup.controllers (empty list if unreadable)."""
    try:
        return _read_text(root, os.path.join(unified_mount, 'cgroup.controllers')).split()
    except MemcgError:
        return []


def detect_layout(root='/'):
    """Return {'layout', 'memory_mount', 'unified_mount'} from <root>/proc/self/mountinfo.

    v1: memory on a v1 hierarchy, no cgroup2 mount; hybrid: memory on v1 plus a cgroup2 mount;
    v2: no v1 memory hierarchy and a cgroup2 mount whose cgroup.controllers lists memory;
    none otherwise.
    """
    mounts = parse_mountinfo(_read_text(root, '/proc/self/mountinfo'))
    memory_mount = _pick([m for m in mounts if m['fstype'] == 'cgroup' and 'memory' in m['super_options']])
    unified_mount = _pick([m for m in mounts if m['fstype'] == 'cgroup2'])
    if memory_mount and unified_mount:
        layout = 'hybrid'
    elif memory_mount:
        layout = 'v1'
    elif unified_mount and 'memory' in read_controllers(root, unified_mount):
        layout = 'v2'
    else:
        layout = 'none'
    return {'layout': layout, 'memory_mount': memory_mount, 'unified_mount': unified_mount}


def parse_proc_cgroups(text):
    """Parse /proc/cgroups into {subsys: {'hierarchy', 'num_cgroups', 'enabled'}}."""
    result = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith('#'):
            continue
        fields = line.split()
        if len(fields) < 4:
            raise MemcgError('/proc/cgroups line is malformed: %r' % line)
        try:
            result[fields[0]] = {
                'hierarchy': int(fields[1]),
                'num_cgroups': int(fields[2]),
                'enabled': fields[3] == '1',
            }
        except ValueError:
            raise MemcgError('/proc/cgroups line is malformed: %r' % line)
    return result


def memory_num_cgroups(root='/'):
    """num_cgroups of the memory row of <root>/proc/cgroups, or None when absent or disabled."""
    row = parse_proc_cgroups(_read_text(root, '/proc/cgroups')).get('memory')
    if not row or not row['enabled']:
        return None
    return row['num_cgroups']


def parse_flat_keyed(text):
    """Parse a flat-keyed cgroup file ('key value' per line) into {key: int}."""
    result = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2:
            try:
                result[fields[0]] = int(fields[1])
            except ValueError:
                pass
    return result


def subdirs_scandir(path):
    """Subdirectory paths of path via os.scandir: d_type, no stat per entry, symlinks not followed."""
    names = []
    entries = os.scandir(path)  # novermin (called only where os has scandir)
    try:
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    names.append(entry.path)
            except OSError as exc:
                if exc.errno not in _VANISHED:
                    raise
    finally:
        close = getattr(entries, 'close', None)  # 3.6+; exhausting the iterator closes it too
        if close is not None:
            close()
    return names


def subdirs_listdir(path):
    """Subdirectory paths of path via os.listdir and one lstat per entry (Python 2.7)."""
    names = []
    for name in os.listdir(path):
        child = os.path.join(path, name)
        try:
            if stat.S_ISDIR(os.lstat(child).st_mode):
                names.append(child)
        except OSError as exc:
            if exc.errno not in _VANISHED:
                raise
    return names


def count_dirs(top, list_subdirs=None):
    """Count directories under top, top itself included, tolerating directories that vanish.

    A memory hierarchy can hold tens of thousands of cgroups with dozens of control files each,
    so scandir (no stat per entry) is used where Python has it, and leaves are not listed at all:
    cgroupfs (kernfs) keeps a directory's link count at 2 + its subdirectories, so a link count of
    2 means no subdirectory (five times faster with 10,000 live memcgs; docs/benchmarks.md).
    """
    if list_subdirs is None:
        list_subdirs = subdirs_scandir if hasattr(os, 'scandir') else subdirs_listdir
    count = 0
    pending = [top]
    while pending:
        path = pending.pop()
        try:
            children = list_subdirs(path)
        except OSError as exc:
            if exc.errno in _VANISHED and path != top:
                continue  # removed while we walked: it is no longer live
            raise MemcgError('cannot list %s: %s' % (path, exc.strerror or exc))
        count += 1
        for child in children:
            try:
                leaf = os.lstat(child).st_nlink == 2
            except OSError as exc:
                if exc.errno in _VANISHED:
                    continue
                raise MemcgError('cannot stat %s: %s' % (child, exc.strerror or exc))
            if leaf:
                count += 1
            else:
                pending.append(child)
    return count


def count_memcgs(cgroup, root='/'):
    """Return {'total', 'live', 'dying', 'source'} for the detect_layout() result cgroup.

    v1/hybrid: total = memory num_cgroups of /proc/cgroups, live = directories in the memory
    hierarchy (root included, as num_cgroups counts it), dying = total - live clamped at 0.
    v2: dying from <unified>/cgroup.stat (nr_dying_subsys_memory, else nr_dying_descendants),
    live = directories under the unified mount (root included), total = live + dying.
    """
    if cgroup['layout'] in ('v1', 'hybrid'):
        total = memory_num_cgroups(root)
        live = count_dirs(under_root(root, cgroup['memory_mount']))
        if total is None:
            return {'total': None, 'live': live, 'dying': None, 'source': 'unavailable'}
        return {'total': total, 'live': live, 'dying': max(total - live, 0),
                'source': 'proc_cgroups_minus_live_dirs'}
    if cgroup['layout'] == 'v2':
        unified = cgroup['unified_mount']
        counters = parse_flat_keyed(_read_text(root, os.path.join(unified, 'cgroup.stat')))
        live = count_dirs(under_root(root, unified))
        for key in ('nr_dying_subsys_memory', 'nr_dying_descendants'):
            if key in counters:
                dying = counters[key]
                return {'total': live + dying, 'live': live, 'dying': dying, 'source': 'cgroup.stat:' + key}
        return {'total': None, 'live': live, 'dying': None, 'source': 'unavailable'}
    return {'total': None, 'live': None, 'dying': None, 'source': 'unavailable'}


def stat_dir(cgroup):
    """Host path of the cgroup root whose memory.stat cAdvisor reads, or None."""
    if cgroup['layout'] in ('v1', 'hybrid'):
        return cgroup['memory_mount']
    if cgroup['layout'] == 'v2':
        return cgroup['unified_mount']
    return None


def find_kubepods(cgroup, root='/'):
    """Host path of kubepods.slice (systemd) or kubepods (cgroupfs) under the memory root, or None."""
    top = stat_dir(cgroup)
    if top is None:
        return None
    for name in KUBEPODS_NAMES:
        candidate = os.path.join(top, name)
        if os.path.isdir(under_root(root, candidate)):
            return candidate
    return None


def _timed_read(full, clock):
    """Open and read the whole file; milliseconds spent reading, None when it vanished."""
    try:
        fd = os.open(full, os.O_RDONLY)
        try:
            # The kernel builds memory.stat on the first read(): that is the cost timed.
            start = clock()
            while os.read(fd, READ_CHUNK):
                pass
            return round((clock() - start) * 1000.0, 3)
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.errno not in _VANISHED:
            raise MemcgError('cannot read %s: %s' % (full, exc.strerror or exc))
        return None


def time_read(path, reads=1, warn_ms=100, root='/', clock=None, timeout_s=None):
    """Time whole reads of a memory.stat file; return None if it does not exist.

    Returns {'path', 'reads' (completed), 'ms' (list), 'max_ms', 'slow', 'timed_out'}; slow is
    max_ms > warn_ms. On a sick node each read burns kernel CPU, so the count is capped and a
    slow read is reported, never retried. timeout_s: each read runs in a child process and is
    abandoned after that many seconds (bounded.run); then timed_out is true, the keys of
    bounded.ReadTimedOut.as_dict() are added, max_ms counts the time waited, and the file is
    not read again. None reads in this process without a deadline.
    """
    if not 1 <= reads <= MAX_STAT_READS:
        raise MemcgError('stat reads must be between 1 and %d, got %r' % (MAX_STAT_READS, reads))
    clock = clock or getattr(time, 'monotonic', time.time)
    full = under_root(root, path)
    timings = []
    timed_out = None
    for dummy in range(reads):
        if timeout_s is None:
            ms = _timed_read(full, clock)
        else:
            try:
                ms = bounded.run(lambda: _timed_read(full, clock), timeout_s, 'the read of %s' % path)
            except bounded.ReadTimedOut as exc:
                timed_out = exc
                break
        if ms is None:
            if not timings:
                return None
            break  # the cgroup went away after a read: keep what was measured
        timings.append(ms)
    max_ms = max(timings + ([timed_out.waited_ms] if timed_out else []))
    result = {'path': path, 'reads': len(timings), 'ms': timings, 'max_ms': max_ms, 'slow': max_ms > warn_ms,
              'timed_out': False}
    if timed_out:
        result.update(timed_out.as_dict())
    return result


def read_latency(cgroup, reads=1, warn_ms=100, root='/', clock=None, timeout_s=None):
    """Return {'root', 'kubepods'} timings of memory.stat; reads=0 disables timing.

    On v2 the root memory.stat exists only on newer kernels: it is timed when present, else null.
    When the root read timed out, kubepods is not read (null): it would cost as much again.
    """
    result = {'root': None, 'kubepods': None}
    top = stat_dir(cgroup)
    if not reads or top is None:
        return result
    result['root'] = time_read(os.path.join(top, 'memory.stat'), reads, warn_ms, root, clock, timeout_s)
    if result['root'] and result['root']['timed_out']:
        return result
    kubepods = find_kubepods(cgroup, root)
    if kubepods is not None:
        result['kubepods'] = time_read(os.path.join(kubepods, 'memory.stat'), reads, warn_ms, root, clock,
                                       timeout_s)
    return result
