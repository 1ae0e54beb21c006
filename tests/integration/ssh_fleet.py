# -*- coding: utf-8 -*-
"""A fleet of real SSH hosts on this machine, for tests and benchmarks (root only).

Each host is a network namespace joined to the root namespace by its own veth pair (a /30 out of a
10.x.0.0/16 that no route on the machine uses), running Debian's ``/usr/sbin/sshd`` with its own
config and ed25519 host key, inside a private mount namespace that makes it look like a separate
machine:

- a non-root user (``SshFleet.user``) that exists only there: ``/etc/passwd``, ``/etc/group`` and
  ``/etc/shadow`` are bind-mounted copies with the user added (every password field ``*``: no hash
  is copied), its home a tmpfs on ``/home`` with the fleet's public key in ``authorized_keys``;
- sudo for that user through a bind-mounted ``/etc/sudoers.d``: ``NOPASSWD`` normally, a password
  prompt on hosts made with ``sudo_password=True``;
- the host's Python as ``/usr/local/bin/python`` (2.x) or ``python3`` (3.x) on a tmpfs
  ``/usr/local``: a symlink to a real CPython tree, which stays at its own path (its shared
  libpython is found through the build's RPATH); when that path is not readable by others (pyenv
  under ``/root``), a tmpfs mode 0711 covers the unreadable directory and the tree alone is
  bind-mounted back into it, so nothing on the machine is chmod-ed;
- its own ``/run`` (tmpfs: sshd's privilege separation directory, sudo's state);
- optionally ``/proc/sys/vm/drop_caches`` replaced by a plain file (``capture_drop_caches``), so a
  test sees any drop a playbook makes there (``SshFleet.drops``) and the machine's caches stay.

A host made with ``sshd=False`` has its namespace and address but nothing listens: it is
unreachable ("Connection refused"). Key auth only; the controller side (this process's user)
connects with ``SshFleet.private_key`` and ``SshFleet.known_hosts`` and never touches ``~/.ssh``.

Usage::

    specs = [HostSpec('node01', '/root/.pyenv/versions/2.7.18/bin/python2.7'), ...]
    with SshFleet(specs) as fleet:
        inventory = fleet.write_inventory(tmp_path / 'hosts.ini')
        env.update(fleet.ansible_env())
        ...  # ansible-playbook -i inventory ...

Everything is stopped and removed on exit, by id, even when the body raised: the processes in
each namespace (``ip netns pids``: sshd and its sessions), the ssh ControlPersist masters (by
socket), the namespaces (their veths go with them) and the working directory.

``python -m`` / direct execution of this file with ``node-init`` is the step that runs as root
inside a new host's namespaces (see ``_node_init``); nothing else should call it.
"""

from __future__ import annotations

import collections
import grp
import ipaddress
import json
import os
import pwd
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

HostSpec = collections.namedtuple('HostSpec', 'name python sudo_password sshd')
HostSpec.__new__.__defaults__ = (False, True)
HostSpec.__doc__ = """One fleet host.

name: inventory hostname. python: path of a real CPython executable (the node's interpreter);
sudo_password: sudo asks this host's user for a password; sshd: False leaves the host unreachable."""

FleetHost = collections.namedtuple('FleetHost', 'spec address netns interpreter python_version')

SSHD = '/usr/sbin/sshd'
USER = 'nodeops-fleet'
NETNS_PREFIX = 'nodeops-fleet-'
SSHD_CONFIG = """\
ListenAddress {address}
HostKey {host_key}
PidFile none
# What a CentOS 7 sshd (OpenSSH 7.4) negotiates; also far cheaper than sntrup761 on a loaded machine.
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers {user}
MaxStartups 200
Subsystem sftp internal-sftp
"""


def _run(*argv, **kwargs):
    return subprocess.run(list(argv), check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kwargs)


def python_version(executable):
    """'X.Y' of a Python executable, read by running it."""
    return _run(executable, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])').stdout.strip()


def free_subnet():
    """A 10.N.0.0/16 that overlaps no address or route on this machine (N random, 64-250)."""
    used = []
    for route in json.loads(_run('ip', '-j', '-4', 'route', 'show', 'table', 'all').stdout):
        if route.get('dst', 'default') != 'default':
            used.append(ipaddress.ip_network(route['dst'], strict=False))
    candidates = list(range(64, 251))
    random.shuffle(candidates)
    for second in candidates:
        subnet = ipaddress.ip_network('10.%d.0.0/16' % second)
        if not any(subnet.overlaps(net) for net in used):
            return subnet
    raise RuntimeError('no free 10.N.0.0/16 for the fleet')


def _free_id(taken):
    """First id from 20000 up that is not in taken."""
    candidate = 20000
    while candidate in taken:
        candidate += 1
    return candidate


def _masked_dir(path):
    """The topmost directory above path that others cannot traverse (None when all can)."""
    parts = os.path.abspath(path).split(os.sep)[1:-1]
    current = ''
    for part in parts:
        current += os.sep + part
        if not os.stat(current).st_mode & stat.S_IXOTH:
            return current
    return None


class SshFleet:
    """Context manager: start the hosts of ``specs`` (a list of HostSpec) as real SSH hosts; stop all on exit.

    Attributes once started: ``hosts`` (FleetHost list in spec order: spec, address, netns, the
    interpreter path on the node, its 'X.Y' version or None), ``user``, ``private_key``,
    ``known_hosts``, ``workdir``.
    """

    def __init__(self, specs, capture_drop_caches=False, start_timeout=30):
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError('duplicate host names in %s' % names)
        self.specs = list(specs)
        self.capture_drop_caches = capture_drop_caches
        self.start_timeout = start_timeout
        self.user = USER
        self.hosts = []
        self.token = '%04x' % random.randrange(16 ** 4)
        self.workdir = None
        self._netns = []
        self._sshd = {}

    # -- public API ----------------------------------------------------------------------------

    @property
    def private_key(self):
        return os.path.join(self.workdir, 'id_ed25519')

    @property
    def known_hosts(self):
        return os.path.join(self.workdir, 'known_hosts')

    @property
    def control_path_dir(self):
        return os.path.join(self.workdir, 'cp')

    def host(self, name):
        return next(host for host in self.hosts if host.spec.name == name)

    def ssh_common_args(self):
        return '-o UserKnownHostsFile=%s -o IdentitiesOnly=yes -o ConnectTimeout=10' % self.known_hosts

    def inventory_lines(self, group='fleet'):
        """INI inventory text: one line per host with its address and interpreter, group vars for SSH."""
        lines = ['[%s]' % group]
        for host in self.hosts:
            lines.append('%s ansible_host=%s ansible_python_interpreter=%s'
                         % (host.spec.name, host.address, host.interpreter))
        lines += ['', '[%s:vars]' % group, 'ansible_connection=ssh', 'ansible_user=%s' % self.user,
                  'ansible_ssh_private_key_file=%s' % self.private_key,
                  "ansible_ssh_common_args='%s'" % self.ssh_common_args(), 'ansible_ssh_pipelining=true', '']
        return '\n'.join(lines)

    def write_inventory(self, path, group='fleet'):
        with open(path, 'w') as handle:
            handle.write(self.inventory_lines(group))
        return str(path)

    def ansible_env(self):
        """Environment for ansible-playbook: ssh ControlPersist sockets in the fleet's directory."""
        return {'ANSIBLE_SSH_CONTROL_PATH_DIR': self.control_path_dir}

    def drops(self):
        """{host: what was written to its /proc/sys/vm/drop_caches}, hosts with an sshd (capture_drop_caches only)."""
        if not self.capture_drop_caches:
            raise RuntimeError('the fleet was not started with capture_drop_caches=True')
        result = {}
        for host in self.hosts:
            if not host.spec.sshd:
                continue
            with open(os.path.join(self.workdir, host.spec.name, 'drop_caches')) as handle:
                result[host.spec.name] = handle.read()
        return result

    def sshd_pid(self, name):
        return self._sshd[name].pid

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info):
        self.stop()
        return False

    # -- start ---------------------------------------------------------------------------------

    def start(self):
        if os.geteuid() != 0:
            raise RuntimeError('the SSH fleet needs root (network and mount namespaces)')
        if not os.access(SSHD, os.X_OK):
            raise RuntimeError('%s is missing: apt-get install openssh-server (tests/install-system-packages.sh)' % SSHD)
        self.workdir = tempfile.mkdtemp(prefix='nodeops-fleet-')
        os.chmod(self.workdir, 0o755)
        os.mkdir(self.control_path_dir, 0o700)
        _run('ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'nodeops-fleet', '-f', self.private_key)
        uid = _free_id({entry.pw_uid for entry in pwd.getpwall()} | {entry.gr_gid for entry in grp.getgrall()})
        self._write_accounts(uid)
        subnet = free_subnet()
        known_hosts = []
        versions = {}
        for index, spec in enumerate(self.specs):
            if spec.python not in versions:
                versions[spec.python] = python_version(spec.python)
            version = versions[spec.python]
            host_dir = os.path.join(self.workdir, spec.name)
            os.mkdir(host_dir)
            address = str(subnet.network_address + 4 * index + 2)
            netns = '%s%s-%d' % (NETNS_PREFIX, self.token, index)
            self._add_netns(netns, 'nf%s%d' % (self.token, index), subnet.network_address + 4 * index + 1, address)
            host_key = os.path.join(host_dir, 'ssh_host_ed25519_key')
            _run('ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', spec.name, '-f', host_key)
            with open(host_key + '.pub') as handle:
                known_hosts.append('%s %s' % (address, ' '.join(handle.read().split()[:2])))
            interpreter = '/usr/local/bin/python' + ('' if version.startswith('2.') else '3')
            self.hosts.append(FleetHost(spec, address, netns, interpreter, version))
            if spec.sshd:
                self._start_sshd(self.hosts[-1], host_dir, host_key)
        with open(self.known_hosts, 'w') as handle:
            handle.write('\n'.join(known_hosts) + '\n')
        self._wait_listening()

    def _write_accounts(self, uid):
        """passwd/group/shadow copies with the fleet user (no password hash copied); sudoers.d variants."""
        accounts = os.path.join(self.workdir, 'etc')
        os.mkdir(accounts)
        with open('/etc/passwd') as handle:
            passwd = handle.read()
        with open('/etc/group') as handle:
            group = handle.read()
        names = [line.split(':')[0] for line in passwd.splitlines() if line]
        files = {
            'passwd': (passwd + '%s:x:%d:%d:nodeops.memcg test fleet:/home/%s:/bin/bash\n'
                       % (self.user, uid, uid, self.user), 0o644, 0),
            'group': (group + '%s:x:%d:\n' % (self.user, uid), 0o644, 0),
            'shadow': (''.join('%s:*:19000:0:99999:7:::\n' % name for name in names + [self.user]), 0o640,
                       grp.getgrnam('shadow').gr_gid),
        }
        for name, (content, mode, gid) in files.items():
            path = os.path.join(accounts, name)
            with open(path, 'w') as handle:
                handle.write(content)
            os.chown(path, 0, gid)
            os.chmod(path, mode)
        for variant, rule in (('sudoers-nopasswd', 'NOPASSWD: ALL'), ('sudoers-password', 'ALL')):
            directory = os.path.join(accounts, variant)
            os.mkdir(directory, 0o755)
            path = os.path.join(directory, 'nodeops-fleet')
            with open(path, 'w') as handle:
                handle.write('%s ALL=(ALL:ALL) %s\n' % (self.user, rule))
            os.chmod(path, 0o440)
        self._uid = uid

    def _add_netns(self, netns, veth, root_address, address):
        _run('ip', 'netns', 'add', netns)
        self._netns.append(netns)
        _run('ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns)
        _run('ip', 'addr', 'add', '%s/30' % root_address, 'dev', veth)
        _run('ip', 'link', 'set', veth, 'up')
        _run('ip', '-n', netns, 'addr', 'add', '%s/30' % address, 'dev', 'eth0')
        _run('ip', '-n', netns, 'link', 'set', 'eth0', 'up')
        _run('ip', '-n', netns, 'link', 'set', 'lo', 'up')

    def _start_sshd(self, host, host_dir, host_key):
        config = os.path.join(host_dir, 'sshd_config')
        with open(config, 'w') as handle:
            handle.write(SSHD_CONFIG.format(address=host.address, host_key=host_key, user=self.user))
        with open(self.private_key + '.pub') as handle:
            public_key = handle.read()
        real_python = os.path.realpath(host.spec.python)
        plan = {
            'user': self.user, 'uid': self._uid, 'public_key': public_key,
            'accounts': os.path.join(self.workdir, 'etc'),
            'sudoers': 'sudoers-password' if host.spec.sudo_password else 'sudoers-nopasswd',
            'python_tree': os.path.dirname(os.path.dirname(real_python)),
            'python_link': (host.interpreter, real_python),
            'drop_caches': os.path.join(host_dir, 'drop_caches') if self.capture_drop_caches else None,
        }
        if plan['drop_caches']:
            open(plan['drop_caches'], 'w').close()
        argv = ['nsenter', '--net=/run/netns/' + host.netns, 'unshare', '--mount', '--propagation', 'private', '--',
                sys.executable, os.path.abspath(__file__), 'node-init', json.dumps(plan), '--',
                SSHD, '-D', '-f', config, '-E', os.path.join(host_dir, 'sshd.log')]
        with open(os.path.join(host_dir, 'init.log'), 'w') as log:
            self._sshd[host.spec.name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                                          stderr=subprocess.STDOUT, start_new_session=True)

    def _wait_listening(self):
        deadline = time.monotonic() + self.start_timeout
        waiting = [host for host in self.hosts if host.spec.sshd]
        while waiting:
            for host in list(waiting):
                process = self._sshd[host.spec.name]
                if process.poll() is not None:
                    raise RuntimeError('sshd of %s exited with %s: %s'
                                       % (host.spec.name, process.returncode, self._logs(host.spec.name)))
                try:
                    with socket.create_connection((host.address, 22), timeout=1) as connection:
                        if connection.recv(4).startswith(b'SSH-'):
                            waiting.remove(host)
                except OSError:
                    pass
            if waiting and time.monotonic() > deadline:
                raise RuntimeError('sshd not answering after %ss on %s' % (
                    self.start_timeout, ', '.join(host.spec.name for host in waiting)))
            if waiting:
                time.sleep(0.05)

    def _logs(self, name):
        text = ''
        for log in ('init.log', 'sshd.log'):
            path = os.path.join(self.workdir, name, log)
            if os.path.exists(path):
                with open(path) as handle:
                    text += handle.read()
        return text.strip()

    # -- stop ----------------------------------------------------------------------------------

    def stop(self):
        """Stop and remove everything this fleet started; safe to call twice and after a partial start."""
        if self.workdir and os.path.isdir(self.control_path_dir):
            for socket_name in os.listdir(self.control_path_dir):
                subprocess.run(['ssh', '-o', 'ControlPath=' + os.path.join(self.control_path_dir, socket_name),
                                '-O', 'exit', 'fleet-master'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=10, check=False)
        for netns in self._netns:
            pids = subprocess.run(['ip', 'netns', 'pids', netns], stdout=subprocess.PIPE, text=True,
                                  check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for process in self._sshd.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        self._sshd = {}
        for netns in self._netns:
            subprocess.run(['ip', 'netns', 'del', netns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)
        self._netns = []
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


def _mount(*args):
    _run('mount', *args)


def _node_init(plan, command):
    """Inside a host's fresh mount namespace (as root): make it the host described above, exec sshd."""
    _mount('-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', '/run')
    os.mkdir('/run/sshd', 0o755)
    for name in ('passwd', 'group', 'shadow'):
        _mount('--bind', os.path.join(plan['accounts'], name), '/etc/' + name)
    _mount('--bind', os.path.join(plan['accounts'], plan['sudoers']), '/etc/sudoers.d')
    home = '/home/' + plan['user']
    _mount('-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', '/home')
    os.makedirs(home + '/.ssh', 0o700)
    with open(home + '/.ssh/authorized_keys', 'w') as handle:
        handle.write(plan['public_key'])
    for path in (home, home + '/.ssh', home + '/.ssh/authorized_keys'):
        os.chown(path, plan['uid'], plan['uid'])
    tree = plan['python_tree']
    masked = _masked_dir(tree)
    if masked:  # e.g. /root (0700): cover it, then put the Python tree alone back at its own path
        os.mkdir('/run/python-tree')
        _mount('--bind', tree, '/run/python-tree')
        _mount('-t', 'tmpfs', '-o', 'mode=0711', 'tmpfs', masked)
        os.makedirs(tree, 0o755)
        _mount('--move', '/run/python-tree', tree)
    link, target = plan['python_link']
    _mount('-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', '/usr/local')
    os.makedirs(os.path.dirname(link), 0o755)
    os.symlink(target, link)
    if plan['drop_caches']:
        _mount('--bind', plan['drop_caches'], '/proc/sys/vm/drop_caches')
    os.execv(command[0], command)


if __name__ == '__main__':
    if len(sys.argv) > 3 and sys.argv[1] == 'node-init' and sys.argv[3] == '--':
        _node_init(json.loads(sys.argv[2]), sys.argv[4:])
    sys.exit('usage: ssh_fleet.py node-init PLAN_JSON -- SSHD_ARGV (run by SshFleet only)')
