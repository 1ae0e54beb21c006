# -*- coding: utf-8 -*-
"""Real live and dying memory cgroups on the running kernel (cgroup v1, or v2 in the VM tests; root).

A dying memcg is made the way production makes them: a process joins a memcg, creates files
(their page cache and dentries are charged to it), leaves, and the memcg is removed. The kernel
keeps counting it in /proc/cgroups while those pages stay charged.

Everything lives under one parent memcg named after this process, so cleanup removes exactly
what was created: the files first (so the kernel can release the charges), then the directories.

Also a script for the VM tests, run inside the guest (stdlib only):
    python3 memcg_lab.py 200 /var/tmp/lab   # JSON: mount, unified, parent, memory_num_cgroups; the memcgs stay dying
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time


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


def unified_memory_mount():
    """The cgroup2 mount whose root offers the memory controller (a v2-only host), or None."""
    with open('/proc/self/mountinfo') as mountinfo:
        for line in mountinfo:
            left, right = line.split(' - ', 1)
            if right.split()[0] == 'cgroup2':
                mount = left.split()[4]
                with open(os.path.join(mount, 'cgroup.controllers')) as controllers:
                    if 'memory' in controllers.read().split():
                        return mount
    return None


def own_memcg_path(mount, unified=False):
    """The directory of the memcg this process belongs to."""
    with open('/proc/self/cgroup') as cgroup:
        for line in cgroup:
            hid, controllers, path = line.rstrip('\n').split(':', 2)
            if (unified and hid == '0') or (not unified and 'memory' in controllers.split(',')):
                return os.path.join(mount, path.lstrip('/'))
    return mount


class MemcgLab:
    """Creates live and dying memcgs under one parent memcg and removes them again."""

    def __init__(self, name=None, data_parent=None, allow_v2=False):
        self.mount, self.unified = memory_hierarchy(), False
        if self.mount is None and allow_v2:
            self.mount, self.unified = unified_memory_mount(), True
        if self.mount is None:
            raise RuntimeError('this machine has no cgroup %s memory hierarchy' % ('v1 or v2' if allow_v2 else 'v1'))
        self.name = name or 'nodeops-memcg-test-%d' % os.getpid()
        self.parent = os.path.join(self.mount, self.name)
        self.data_dir = tempfile.mkdtemp(prefix=self.name + '-files-', dir=data_parent)
        self.live = []
        self.churners = []
        os.mkdir(self.parent)
        if self.unified:  # v2: the children get a memory controller only when the parent hands it down
            _write(os.path.join(self.parent, 'cgroup.subtree_control'), '+memory')

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
                home = os.path.join(own_memcg_path(self.mount, self.unified), 'cgroup.procs')
                for index in range(count):
                    self._one_dying(home, index, file_bytes)
                status = 0
            finally:
                os._exit(status)
        _pid, status = os.waitpid(pid, 0)
        if status != 0:
            raise RuntimeError('creating dying memcgs failed in child %d (status %d)' % (pid, status))

    def _one_dying(self, home, index, file_bytes):
        memcg = os.path.join(self.parent, 'dying-%d-%d' % (os.getpid(), index))
        os.mkdir(memcg)
        _write(os.path.join(memcg, 'cgroup.procs'), '0')
        with open(os.path.join(self.data_dir, 'f-%d-%d' % (os.getpid(), index)), 'wb') as data:
            data.write(b'x' * file_bytes)
        _write(home, '0')
        os.rmdir(memcg)

    def start_churn(self, per_second, file_bytes=4096):
        """Fork a child that makes one dying memcg every 1/per_second s (on schedule) until stop_churn()."""
        pid = os.fork()
        if pid == 0:
            try:
                home = os.path.join(own_memcg_path(self.mount, self.unified), 'cgroup.procs')
                start, index = time.monotonic(), 0
                while True:
                    delay = start + index / per_second - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    self._one_dying(home, index, file_bytes)
                    index += 1
            finally:
                os._exit(1)
        self.churners.append(pid)
        return pid

    def stop_churn(self):
        """Stop the churn children by pid (a memcg one was in is removed by cleanup())."""
        for pid in self.churners:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        self.churners = []

    def cleanup(self):
        """Stop churn, remove the files (so charges can be released), the live memcgs and the parent."""
        self.stop_churn()
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


def main(argv):
    """In a VM test guest: create argv[1] dying memcgs, their files under argv[2]; print JSON.

    Nothing is cleaned up: the guest's disk overlay is thrown away after the test."""
    count, data_parent = int(argv[1]), argv[2]
    if not os.path.isdir(data_parent):
        os.makedirs(data_parent)
    lab = MemcgLab(name='nodeops-memcg-lab', data_parent=data_parent, allow_v2=True)
    lab.add_dying(count)
    print(json.dumps({'mount': lab.mount, 'unified': lab.unified, 'parent': lab.parent, 'dying_created': count,
                      'memory_num_cgroups': memory_num_cgroups()}))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
