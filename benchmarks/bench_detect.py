"""Benchmark the probe on one node; prints numbers, asserts nothing.

As root on a machine with a cgroup v1 memory hierarchy:
    .venv-latest/bin/python benchmarks/bench_detect.py [--live 10000] [--dying 10000]

memcg_probe's collect() in-process with N live and M dying memcgs, beside the bare minimum a
person would do by hand: `cat memory.stat` of the root plus reading /proc/cgroups.
The detect playbook across a fleet (against an ad-hoc ping, over SSH, 1,000 hosts): bench_fleet.py.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests'))

from conftest import REPO_ROOT  # noqa: E402  importing it makes the collection importable
from integration import memcg_lab  # noqa: E402
from ansible_collections.nodeops.memcg.plugins.module_utils import probe  # noqa: E402


def cpu_seconds(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def measure(function, repeat):
    """Median wall and CPU seconds of function() over repeat runs (CPU of this process and children)."""
    walls, cpus = [], []
    for _attempt in range(repeat):
        cpu0 = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
        wall0 = time.perf_counter()
        function()
        walls.append(time.perf_counter() - wall0)
        cpus.append(cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN) - cpu0)
    return statistics.median(walls), statistics.median(cpus)


def bench_probe(live, dying, repeat):
    mount = memcg_lab.memory_hierarchy()

    def by_hand():
        subprocess.run(['cat', os.path.join(mount, 'memory.stat')], stdout=subprocess.DEVNULL, check=True)
        subprocess.run(['cat', '/proc/cgroups'], stdout=subprocess.DEVNULL, check=True)

    def collect():
        probe.collect(cpu_interval_s=0, stat_reads=1)

    with memcg_lab.MemcgLab() as lab:
        start = time.perf_counter()
        lab.add_live(live)
        lab.add_dying(dying)
        made = time.perf_counter() - start
        result = probe.collect(cpu_interval_s=0, stat_reads=1)
        print('memcgs: %d live, %d dying made in %.1f s; probe counts total=%s live=%s dying=%s' % (
            live, dying, made, result['memcg']['total'], result['memcg']['live'], result['memcg']['dying']))
        rows = [('probe collect() (count + 1 root + 1 kubepods read)', measure(collect, repeat)),
                ('cat memory.stat + cat /proc/cgroups', measure(by_hand, repeat))]
    for name, (wall, cpu) in rows:
        print('  %-52s wall %8.1f ms   cpu %8.1f ms' % (name, wall * 1000, cpu * 1000))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--live', type=int, default=10000)
    parser.add_argument('--dying', type=int, default=10000)
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()
    print('collection %s; kernel %s, %d CPUs, load average %.2f %.2f %.2f' % (
        (REPO_ROOT, os.uname().release, os.cpu_count()) + os.getloadavg()))
    bench_probe(args.live, args.dying, args.repeat)


if __name__ == '__main__':
    main()
