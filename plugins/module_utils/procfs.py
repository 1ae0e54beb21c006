# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""/proc readers: slab and dentry counters, slabinfo, kubelet lookup and CPU, cmdline, osrelease.

Every reader takes ``root`` (default '/') so tests hand it a fixture tree; parsing is split
into pure functions that take text.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import time

from ansible_collections.nodeops.memcg.plugins.module_utils import bounded
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.root_paths import under_root

TASK_COMM_LEN = 15  # the kernel truncates /proc/<pid>/comm to 15 characters
_MEMINFO_KEYS = (('Slab', 'slab_kb'), ('SReclaimable', 'sreclaimable_kb'), ('SUnreclaim', 'sunreclaim_kb'))
_GONE = (errno.ENOENT, errno.ESRCH, errno.ENOTDIR)  # a process exited while we read it
# Slab caches that pin dying memcgs: dentries and inodes. XFS (the EL7 default root file system)
# names its inode cache xfs_inode, without the usual _inode_cache suffix.
SLAB_NAMES = ('dentry', 'xfs_inode')
SLAB_SUFFIX = 'inode_cache'


def read_text(path):
    """Read a whole file as text; MemcgError naming the path on failure."""
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')
    except (IOError, OSError) as exc:
        raise MemcgError('cannot read %s: %s' % (path, exc.strerror or exc))


def parse_meminfo_slab(text):
    """Return {'slab_kb', 'sreclaimable_kb', 'sunreclaim_kb'} (ints, None when missing)."""
    values = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(':')
        if sep and rest.split():
            values[name.strip()] = rest.split()[0]
    result = {}
    for name, key in _MEMINFO_KEYS:
        try:
            result[key] = int(values[name])
        except (KeyError, ValueError):
            result[key] = None
    return result


def read_meminfo_slab(root='/'):
    return parse_meminfo_slab(read_text(under_root(root, 'proc', 'meminfo')))


def parse_dentry_state(text):
    """Return {'nr_dentry', 'nr_unused', 'nr_negative'} from dentry-state.

    The file always holds six numbers; before nr_negative existed (~5.0) the fifth is a dummy 0,
    returned as is.
    """
    fields = text.split()
    try:
        numbers = [int(field) for field in fields[:5]]
    except ValueError:
        raise MemcgError('dentry-state is malformed: %r' % text)
    if len(numbers) < 5:
        raise MemcgError('dentry-state has %d fields, expected 6: %r' % (len(fields), text))
    return {'nr_dentry': numbers[0], 'nr_unused': numbers[1], 'nr_negative': numbers[4]}


def read_dentry_state(root='/'):
    return parse_dentry_state(read_text(under_root(root, 'proc', 'sys', 'fs', 'dentry-state')))


def parse_slabinfo(text):
    """Return {name: {'active_objs', 'num_objs', 'objsize'}} for dentry, *inode_cache, xfs_inode."""
    result = {}
    for line in text.splitlines()[2:]:  # 'slabinfo - version' and the '# name' header
        fields = line.split()
        if len(fields) < 4 or not (fields[0] in SLAB_NAMES or fields[0].endswith(SLAB_SUFFIX)):
            continue
        try:
            result[fields[0]] = {
                'active_objs': int(fields[1]), 'num_objs': int(fields[2]), 'objsize': int(fields[3]),
            }
        except ValueError:
            raise MemcgError('slabinfo line is malformed: %r' % line)
    return result


def read_slabinfo(root='/'):
    """Parsed /proc/slabinfo, or None when it is missing or unreadable (it is root only)."""
    path = under_root(root, 'proc', 'slabinfo')
    try:
        with open(path, 'rb') as handle:
            text = handle.read().decode('utf-8', 'replace')
    except (IOError, OSError) as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.ENOENT):
            return None
        raise MemcgError('cannot read %s: %s' % (path, exc.strerror or exc))
    return parse_slabinfo(text)


def read_cmdline(root='/'):
    return read_text(under_root(root, 'proc', 'cmdline')).replace('\0', ' ').strip()


def read_osrelease(root='/'):
    return read_text(under_root(root, 'proc', 'sys', 'kernel', 'osrelease')).strip()


def find_pids(name, root='/'):
    """Sorted pids whose /proc/<pid>/comm equals name (compared as the kernel truncates it)."""
    wanted = name[:TASK_COMM_LEN]
    try:
        entries = os.listdir(under_root(root, 'proc'))
    except OSError as exc:
        raise MemcgError('cannot list %s: %s' % (under_root(root, 'proc'), exc.strerror or exc))
    pids = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(under_root(root, 'proc', entry, 'comm'), 'rb') as handle:
                comm = handle.read().decode('utf-8', 'replace').rstrip('\n')
        except (IOError, OSError):
            continue  # exited, or a kernel thread we may not read: not kubelet either way
        if comm == wanted:
            pids.append(int(entry))
    return sorted(pids)


def parse_pid_stat(text):
    """Parse /proc/<pid>/stat: {'pid', 'comm', 'state', 'utime', 'stime'} (times in ticks).

    comm may hold spaces and ')', so split after the LAST ')'; utime and stime are fields 14
    and 15 (1-based), i.e. 11 and 12 after the state field.
    """
    head, sep, tail = text.rpartition(')')
    pid, paren, comm = head.partition(' (')
    fields = tail.split()
    if not sep or not paren or len(fields) < 13:
        raise MemcgError('/proc/<pid>/stat is malformed: %r' % text[:200])
    try:
        return {'pid': int(pid), 'comm': comm, 'state': fields[0],
                'utime': int(fields[11]), 'stime': int(fields[12])}
    except ValueError:
        raise MemcgError('/proc/<pid>/stat is malformed: %r' % text[:200])


def read_pid_stat(pid, root='/', timeout_s=None):
    """Parsed /proc/<pid>/stat, or None when the process does not exist (any more).

    timeout_s: read in a child process with that deadline (bounded.run; raises
    bounded.ReadTimedOut): the stat of a process stuck in the kernel can block.
    """
    if timeout_s is not None:
        return bounded.run(lambda: read_pid_stat(pid, root), timeout_s, 'the read of /proc/%s/stat' % pid)
    try:
        with open(under_root(root, 'proc', str(pid), 'stat'), 'rb') as handle:
            text = handle.read().decode('utf-8', 'replace')
    except (IOError, OSError) as exc:
        if exc.errno in _GONE:
            return None
        raise MemcgError('cannot read /proc/%s/stat: %s' % (pid, exc.strerror or exc))
    return parse_pid_stat(text)


def clock_ticks():
    return os.sysconf('SC_CLK_TCK')


def cpu_percent(before, after, elapsed_s, ticks_per_s):
    """CPU use between two parse_pid_stat() samples, in percent of one CPU (can exceed 100).

    Returns {'cpu_percent', 'user_percent', 'system_percent'}, None values if elapsed_s <= 0.
    """
    if elapsed_s <= 0 or ticks_per_s <= 0:
        return {'cpu_percent': None, 'user_percent': None, 'system_percent': None}
    scale = 100.0 / (elapsed_s * ticks_per_s)
    user = max(after['utime'] - before['utime'], 0) * scale
    system = max(after['stime'] - before['stime'], 0) * scale
    return {'cpu_percent': round(user + system, 2), 'user_percent': round(user, 2),
            'system_percent': round(system, 2)}


def sample_cpu(pid, interval_s, root='/', ticks_per_s=None, clock=None, sleep=None, timeout_s=None):
    """Sample a process's CPU over interval_s seconds.

    Returns the cpu_percent() dict plus 'vanished' (True when the process was gone at either
    sample; the percentages are None then). timeout_s bounds each read (see read_pid_stat).
    """
    clock = clock or getattr(time, 'monotonic', time.time)
    sleep = sleep or time.sleep
    ticks_per_s = ticks_per_s or clock_ticks()
    start = clock()
    before = read_pid_stat(pid, root, timeout_s)
    if before is not None:
        sleep(interval_s)
    after = read_pid_stat(pid, root, timeout_s) if before is not None else None
    elapsed = clock() - start
    # A reused pid would show another process: treat a changed comm as vanished too.
    if before is None or after is None or after['comm'] != before['comm']:
        result = cpu_percent(before, after, 0, ticks_per_s)
        result['vanished'] = True
        return result
    result = cpu_percent(before, after, elapsed, ticks_per_s)
    result['vanished'] = False
    return result
