"""Benchmark the detect playbook across a fleet; prints numbers, asserts nothing.

As root, after ./tests/run-all.sh setup (sshd from Debian's openssh-server for the ssh sections):
    .venv-latest/bin/python benchmarks/bench_fleet.py [local] [ssh] [tuning] [big] [filter]

local   detect over --hosts inventory hosts (local connection) against an ad-hoc
        ansible.builtin.ping over the same hosts: paired runs (the order alternates), medians.
ssh     the same over SSH with pipelining: --sshds sshd processes on loopback addresses, one
        127.x.y.z address per inventory host (so each host has its own SSH connection and
        ControlPersist master, as in a real fleet), key auth, started and stopped by pid.
tuning  detect over SSH with one setting changed at a time: forks, pipelining, ControlPersist,
        strategy (free checks whether the report still lists every host).
big     detect over --big-hosts inventory hosts (local connection): wall time and peak memory
        (RSS summed over ansible-playbook and all its children, sampled every 0.2 s).
filter  the detect_report and detect_markdown filters over 1,000 and 10,000 synthetic node
        results, through plain dicts and through Ansible's real HostVars.

Every run prints the load average: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests'))

from conftest import REPO_ROOT  # noqa: E402  importing it makes the collection importable

BINDIR = os.path.dirname(sys.executable)
PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'detect.yml')
SECTIONS = ('local', 'ssh', 'tuning', 'big', 'filter')


def load():
    return 'load %.2f %.2f %.2f' % os.getloadavg()


def _children(pid):
    """pid and all its descendants, from /proc/*/stat."""
    parents = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as handle:
                    stat = handle.read()
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(')', 1)[1].split()[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def _rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open('/proc/%d/statm' % pid) as handle:
                total += int(handle.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') // 1024
        except OSError:
            pass
    return total


def run(argv, env, sample_memory=False):
    """Run argv; return (wall seconds, peak summed RSS in kB or None). Output is discarded."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.2):
            peak[0] = max(peak[0], _rss_kb(_children(process.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    if sample_memory:
        sampler.start()
    stderr = process.communicate()[1]
    wall = time.perf_counter() - start
    stop.set()
    if sample_memory:
        sampler.join()
    if process.returncode != 0:
        raise RuntimeError('%s exited %d: %s' % (argv[0], process.returncode, stderr.decode()[-2000:]))
    return wall, (peak[0] if sample_memory else None)


class Fleet:
    """A scratch directory with the collection, an inventory of hosts and the Ansible environment."""

    def __init__(self, work, hosts, host_vars=None, group_vars=None, forks=5, env=None):
        self.work = work
        self.report_dir = os.path.join(work, 'report')
        collections = os.path.join(work, 'ansible_collections', 'nodeops')
        if not os.path.exists(collections):
            os.makedirs(collections)
            os.symlink(REPO_ROOT, os.path.join(collections, 'memcg'))
        self.inventory = os.path.join(work, 'hosts.ini')
        with open(self.inventory, 'w') as handle:
            handle.write('[all:vars]\n')
            handle.writelines('%s=%s\n' % item for item in (group_vars or {}).items())
            handle.write('[all]\n')
            for index in range(hosts):
                extra = ' '.join('%s=%s' % item for item in (host_vars(index) if host_vars else {}).items())
                handle.write('node%05d %s\n' % (index, extra))
        config = os.path.join(work, 'ansible.cfg')
        open(config, 'w').close()
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=work, ANSIBLE_CONFIG=config,
                        ANSIBLE_FORKS=str(forks), **(env or {}))

    def detect(self, sample_memory=False, argv=(), **env):
        extra = json.dumps({'detect_report_dir': self.report_dir, 'detect_cpu_interval': 0,
                            'detect_print_report': False})
        return run([os.path.join(BINDIR, 'ansible-playbook'), '-i', self.inventory, '-e', extra] + list(argv)
                   + [PLAYBOOK], dict(self.env, **env), sample_memory)

    def ping(self, **env):
        return run([os.path.join(BINDIR, 'ansible'), 'all', '-i', self.inventory, '-m', 'ansible.builtin.ping'],
                   dict(self.env, **env))

    def report_summary(self):
        with open(os.path.join(self.report_dir, 'detect.json')) as handle:
            return json.load(handle)['summary']


def paired(fleet, label, repeat):
    """detect and ping alternately, repeat pairs; print each pair and the medians."""
    print('%s: detect playbook against ad-hoc ping, %d paired runs' % (label, repeat))
    detects, pings, ratios = [], [], []
    for attempt in range(repeat):
        first, second = (fleet.detect, fleet.ping) if attempt % 2 == 0 else (fleet.ping, fleet.detect)
        before = load()
        walls = {first: first()[0], second: second()[0]}
        detect, ping = walls[fleet.detect], walls[fleet.ping]
        detects.append(detect)
        pings.append(ping)
        ratios.append(detect / ping)
        print('  pair %d: detect %6.1f s  ping %6.1f s  ratio %.2f   (%s before, %s after)' % (
            attempt + 1, detect, ping, detect / ping, before, load()))
    summary = fleet.report_summary()
    print('  median: detect %6.1f s  ping %6.1f s  ratio of medians %.2f  median ratio %.2f'
          '   report: %d hosts, %d probed' % (
              statistics.median(detects), statistics.median(pings),
              statistics.median(detects) / statistics.median(pings), statistics.median(ratios),
              summary['hosts'], summary['probed']))


class SshFleet:
    """sshd processes on loopback addresses 127.A.B.(10+i), one address per inventory host."""

    def __init__(self, work, hosts, sshds):
        self.work = work
        self.hosts = hosts
        self.prefix = '127.%d.%d.' % (random.randint(100, 250), random.randint(1, 250))
        probe = socket.socket()
        probe.bind(('127.0.0.1', 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.key = os.path.join(work, 'id_ed25519')
        host_key = os.path.join(work, 'ssh_host_ed25519_key')
        for path in (self.key, host_key):
            subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', path], check=True)
        shutil.copy(self.key + '.pub', os.path.join(work, 'authorized_keys'))
        if not os.path.isdir('/run/sshd'):  # sshd's privilege separation directory
            os.makedirs('/run/sshd', 0o755)
        self.processes = []
        per_sshd = -(-hosts // sshds)  # OpenSSH listens on at most 16 addresses per sshd
        for index in range(sshds):
            addresses = [self.address(host) for host in range(index * per_sshd, min(hosts, (index + 1) * per_sshd))]
            config = os.path.join(work, 'sshd%d.conf' % index)
            with open(config, 'w') as handle:
                handle.writelines('ListenAddress %s:%d\n' % (address, self.port) for address in addresses)
                handle.write('HostKey %s\nPidFile none\nAuthorizedKeysFile %s\nPermitRootLogin prohibit-password\n'
                             'PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n'
                             'StrictModes no\nSubsystem sftp internal-sftp\nMaxStartups 200\n'
                             'MaxSessions 100\nLogLevel ERROR\n' % (host_key, os.path.join(work, 'authorized_keys')))
            with open(os.path.join(work, 'sshd%d.log' % index), 'w') as log:
                self.processes.append(subprocess.Popen(['/usr/sbin/sshd', '-D', '-e', '-f', config], stderr=log))
        for host in range(hosts):
            self._wait(self.address(host))

    def address(self, host):
        return self.prefix + str(10 + host)

    def _wait(self, address):
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection((address, self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def host_vars(self, index):
        return {'ansible_host': self.address(index)}

    def group_vars(self):
        return {'ansible_connection': 'ssh', 'ansible_user': 'root', 'ansible_port': self.port,
                'ansible_ssh_private_key_file': self.key, 'ansible_python_interpreter': sys.executable}

    def env(self):
        return {'ANSIBLE_HOST_KEY_CHECKING': 'False', 'ANSIBLE_PIPELINING': 'True',
                'ANSIBLE_SSH_CONTROL_PATH_DIR': os.path.join(self.work, 'cp'),
                'ANSIBLE_SSH_EXTRA_ARGS': '-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'}

    def stop(self):
        # The per-connection sshd children too: ControlPersist masters then exit at once.
        pids = [pid for process in self.processes for pid in _children(process.pid) if pid != process.pid]
        for process in self.processes:
            process.terminate()
        for pid in pids:
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass
        for process in self.processes:
            process.wait()


def local_fleet(work, hosts, forks):
    return Fleet(work, hosts, forks=forks,
                 group_vars={'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable})


def bench_local(work, args):
    paired(local_fleet(work, args.hosts, args.forks), '%d hosts, local connection, forks %d' % (args.hosts, args.forks),
           args.repeat)


def with_ssh(work, args, function):
    sshd = SshFleet(work, args.hosts, args.sshds)
    try:
        fleet = Fleet(work, args.hosts, sshd.host_vars, sshd.group_vars(), args.forks, sshd.env())
        function(fleet)
    finally:
        sshd.stop()


def bench_ssh(work, args):
    with_ssh(work, args, lambda fleet: paired(
        fleet, '%d hosts over SSH (%d sshds on loopback), pipelining, ControlPersist 60s, forks %d' % (
            args.hosts, args.sshds, args.forks), args.repeat))


NO_CONTROL_PERSIST = '-C -o ControlMaster=no -o ControlPersist=no'
TUNING = (
    # (label, forks or None for --forks, environment changes, extra ansible-playbook arguments)
    ('baseline: pipelining, ControlPersist 60s, linear', None, {}, ()),
    ('forks 10', 10, {}, ()),
    ('forks 25', 25, {}, ()),
    ('forks 50', 50, {}, ()),
    ('pipelining off', None, {'ANSIBLE_PIPELINING': 'False'}, ()),
    ('ControlPersist off', None, {'ANSIBLE_SSH_ARGS': NO_CONTROL_PERSIST}, ()),
    ('strategy free', None, {'ANSIBLE_STRATEGY': 'free'}, ()),
    # The role's argument-spec validation is the one other task that runs on every host (tagged
    # always); skipping it measures what it costs. Not a recommendation.
    ('(cost probe) --skip-tags always', None, {}, ('--skip-tags', 'always')),
)


def bench_tuning(work, args):
    def tune(fleet):
        print('%d hosts over SSH: detect with one setting changed from the baseline (forks %d), median of %d' % (
            args.hosts, args.forks, args.repeat))
        for label, forks, env, argv in TUNING:
            env = dict(env, ANSIBLE_FORKS=str(forks or args.forks))
            walls = []
            before = load()
            for dummy in range(args.repeat):
                walls.append(fleet.detect(argv=argv, **env)[0])
            summary = fleet.report_summary()
            print('  %-52s %6.1f s  (runs %s; report %d/%d probed; %s before, %s after)' % (
                label, statistics.median(walls), ' '.join('%.1f' % wall for wall in walls),
                summary['probed'], summary['hosts'], before, load()))
    with_ssh(work, args, tune)


def bench_big(work, args):
    fleet = local_fleet(work, args.big_hosts, args.big_forks)
    before = load()
    wall, peak = fleet.detect(sample_memory=True)
    summary = fleet.report_summary()
    print('%d hosts, local connection, forks %d: detect wall %.1f s, peak RSS of ansible-playbook and children '
          '%.0f MiB; report %d hosts, %d probed   (%s before, %s after)' % (
              args.big_hosts, args.big_forks, wall, peak / 1024.0, summary['hosts'], summary['probed'], before, load()))


def synthetic_results(count):
    from ansible_collections.nodeops.memcg.plugins.module_utils import probe
    sample = {'kernel': {'release': '3.10.0-1160.el7.x86_64', 'stream': 'el7', 'status': 'severe',
                         'upgrade_needed': True, 'recommendation': {'summary': 'install kernel-lt'}},
              'memcg': {'total': 45240, 'live': 240, 'dying': 45000, 'source': 'proc_cgroups_minus_live_dirs'},
              'read_latency': {'root': {'path': '/sys/fs/cgroup/memory/memory.stat', 'reads': 1, 'ms': [9.5],
                                        'max_ms': 9.5, 'slow': False}, 'kubepods': None},
              'kubelet': {'found': True, 'pid': 812, 'cpu_percent': 98.0, 'system_percent': 91.0},
              'kmem_leak': {'suspected': False, 'signs': []}, 'verdict': 'critical',
              'reasons': ['45000 dying memory cgroups exceed critical_dying (20000)'],
              'thresholds': dict(probe.DEFAULT_THRESHOLDS),
              'installed_kernels': [{'package': 'kernel', 'version': '3.10.0-1160.el7',
                                     'release': '3.10.0-1160.el7.x86_64'}],
              'boot_default': '3.10.0-1160.el7.x86_64', 'changed': False, 'textfile': None}
    hosts = ['node%05d' % index for index in range(count)]
    results = {}
    for index, host in enumerate(hosts):
        results[host] = {'unreachable': True, 'msg': 'timed out'} if index % 50 == 0 else dict(
            sample, memcg=dict(sample['memcg'], dying=index))
    return hosts, results


def real_hostvars(hosts, results):
    """Ansible's HostVars over an in-memory inventory whose hosts carry detect_result as registered."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[])
    for host in hosts:
        inventory.add_host(host, group='all')
    manager = VariableManager(loader=loader, inventory=inventory)
    for host in hosts:
        manager.set_nonpersistent_facts(host, {'detect_result': results[host]})
    return HostVars(inventory=inventory, variable_manager=manager, loader=loader)


def bench_filter(args):
    from ansible_collections.nodeops.memcg.plugins.filter import memcg
    print('detect_report + detect_markdown filters over synthetic node results (median of %d):' % args.repeat)
    for count in (1000, 10000):
        hosts, results = synthetic_results(count)
        plain = {host: {'detect_result': result} for host, result in results.items()}
        real = real_hostvars(hosts, results)
        for label, hostvars in (('plain dict hostvars', plain), ('Ansible HostVars', real)):
            timings = {'report': [], 'markdown': []}
            for dummy in range(args.repeat):
                start = time.perf_counter()
                doc = memcg.detect_report(hosts, hostvars, 'T')
                middle = time.perf_counter()
                memcg.detect_markdown(doc)
                timings['report'].append(middle - start)
                timings['markdown'].append(time.perf_counter() - middle)
            report, markdown = statistics.median(timings['report']), statistics.median(timings['markdown'])
            print('  %6d nodes, %-20s report %8.1f ms (%5.1f us/node)  markdown %7.1f ms   (%s)' % (
                count, label, report * 1000, report * 1e6 / count, markdown * 1000, load()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('sections', nargs='*', metavar='section', help=' '.join(SECTIONS) + ' (default: all)')
    parser.add_argument('--hosts', type=int, default=100)
    parser.add_argument('--forks', type=int, default=5)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--sshds', type=int, default=10, help='sshd processes (each listens on <= 16 addresses)')
    parser.add_argument('--big-hosts', type=int, default=1000)
    parser.add_argument('--big-forks', type=int, default=20)
    args = parser.parse_args()
    if set(args.sections) - set(SECTIONS):
        parser.error('unknown sections %s; choose from %s' % (sorted(set(args.sections) - set(SECTIONS)), SECTIONS))
    sections = args.sections or SECTIONS
    print('%s, kernel %s, %d CPUs, %s, ansible-core from %s' % (
        time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), os.uname().release, os.cpu_count(), load(), BINDIR))
    for section in sections:
        if section == 'filter':
            bench_filter(args)
            continue
        work = tempfile.mkdtemp(prefix='nodeops-memcg-bench-')
        try:
            {'local': bench_local, 'ssh': bench_ssh, 'tuning': bench_tuning, 'big': bench_big}[section](work, args)
        finally:
            shutil.rmtree(work)


if __name__ == '__main__':
    main()
