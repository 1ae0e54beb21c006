# -*- coding: utf-8 -*-
"""Real live and dying memory cgroups on the test machine's kernel (cgroup v1, as root).

A dying memcg is made the way production makes them: a process joins a memcg, creates files
(their page cache and dentries are charged to it), leaves, and the memcg is removed. The kernel
keeps counting it in /proc/cgroups while those pages stay charged.

Everything lives under one parent memcg named after this process, so cleanup removes exactly
what was created: the files first (so the kernel can release the charges), then the directories.
"""

from __future__ import annotations

import os
import shutil
import tempfile


def memory_hierarchy():
    """The v1 memory hierarchy mount point, from /proc/self/mountinfo."""
    with open('/proc/self/mountinfo') as mountinfo:
        for line in mountinfo:
            left, right = line.split(' - ', 1)
            fstype, _source, options = right.split()[:3]
            if fstype == 'cgroup' and 'memory' in options.split(','):
                return left.split()[4]
    return None


def memory_num_cgroups():
    """The memory row's num_cgroups from /proc/cgroups (live + dying)."""
    with open('/proc/cgroups') as cgroups:
        for line in cgroups:
            fields = line.split()
            if fields and fields[0] == 'memory':
                return int(fields[2])
    raise RuntimeError('no memory row in /proc/cgroups')


def own_memcg_path(mount):
    """The directory of the memcg this process belongs to."""
    with open('/proc/self/cgroup') as cgroup:
        for line in cgroup:
            _hid, controllers, path = line.rstrip('\n').split(':', 2)
            if 'memory' in controllers.split(','):
                return os.path.join(mount, path.lstrip('/'))
    return mount


class MemcgLab:
    """Creates live and dying memcgs under one parent memcg and removes them again."""

    def __init__(self, name=None):
        self.mount = memory_hierarchy()
        if self.mount is None:
            raise RuntimeError('this machine has no cgroup v1 memory hierarchy')
        self.name = name or 'nodeops-memcg-test-%d' % os.getpid()
        self.parent = os.path.join(self.mount, self.name)
        self.data_dir = tempfile.mkdtemp(prefix=self.name + '-files-')
        self.live = []
        os.mkdir(self.parent)

    def add_live(self, count):
        """Create count empty memcgs that stay (like the cgroups of running pods)."""
        for index in range(count):
            path = os.path.join(self.parent, 'live-%d' % (len(self.live) + index))
            os.mkdir(path)
        self.live.extend(range(count))

    def add_dying(self, count, file_bytes=4096):
        """Create count memcgs that each charge one file's page cache, then remove them.

        The work runs in a forked child so the test process never changes cgroup.
        """
        pid = os.fork()
        if pid == 0:  # child: join, write, leave, remove
            status = 1
            try:
                home = os.path.join(own_memcg_path(self.mount), 'cgroup.procs')
                payload = b'x' * file_bytes
                for index in range(count):
                    memcg = os.path.join(self.parent, 'dying-%d-%d' % (os.getpid(), index))
                    os.mkdir(memcg)
                    _write(os.path.join(memcg, 'cgroup.procs'), '0')
                    with open(os.path.join(self.data_dir, 'f-%d-%d' % (os.getpid(), index)), 'wb') as data:
                        data.write(payload)
                    _write(home, '0')
                    os.rmdir(memcg)
                status = 0
            finally:
                os._exit(status)
        _pid, status = os.waitpid(pid, 0)
        if status != 0:
            raise RuntimeError('creating dying memcgs failed in child %d (status %d)' % (pid, status))

    def cleanup(self):
        """Remove the files (so charges can be released), the live memcgs and the parent."""
        shutil.rmtree(self.data_dir, ignore_errors=True)
        for entry in sorted(os.listdir(self.parent)) if os.path.isdir(self.parent) else []:
            path = os.path.join(self.parent, entry)
            if os.path.isdir(path):
                os.rmdir(path)
        if os.path.isdir(self.parent):
            os.rmdir(self.parent)
        self.live = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def _write(path, text):
    with open(path, 'w') as handle:
        handle.write(text)
