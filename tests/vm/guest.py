# -*- coding: utf-8 -*-
"""A Debian test guest under qemu, for tests that reboot a real node.

Controller-side test code (never shipped to nodes). Stdlib only.

    image = build_image()                      # tests/vm/build_image.sh: the cached base image
    with Guest(image, workdir) as g:           # a fresh qcow2 overlay, qemu as our child process
        g.wait_ssh()
        print(g.run('uname -r').stdout)
        g.reboot()                             # waits until the boot id changed and SSH is back
        g.console()                            # the serial console so far (GRUB, kernel, getty)

qemu runs as a child of the test process (never -daemonize) and is stopped by its pid. The
guest's only network is qemu's user networking with restrict=on: SSH forwarded from a loopback
port, nothing else. KVM is used only when a short boot under it reaches "Linux version" on the
serial console (a stock Debian kernel hangs under this machine's /dev/kvm); otherwise TCG.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_SCRIPT = os.path.join(HERE, 'build_image.sh')
DEFAULT_CACHE = '/var/cache/nodeops-memcg-vm'
QEMU = 'qemu-system-x86_64'
TCG_ACCEL = ['-accel', 'tcg,thread=multi,tb-size=512', '-cpu', 'max']
# -cpu host/max crashed qemu under KVM here; a named model does not need them
KVM_ACCEL = ['-accel', 'kvm', '-cpu', 'qemu64']


def cache_dir():
    return os.environ.get('NODEOPS_MEMCG_VM_CACHE', DEFAULT_CACHE)


class Image(object):
    """A built base image directory: base.qcow2, id_ed25519, manifest.json."""

    def __init__(self, path):
        self.path = path
        self.disk = os.path.join(path, 'base.qcow2')
        self.key = os.path.join(path, 'id_ed25519')
        with open(os.path.join(path, 'manifest.json')) as f:
            self.manifest = json.load(f)

    @property
    def old_release(self):
        return self.manifest['old_release']


def build_image(force=False, log=None):
    """Run build_image.sh (cheap when cached) and return the Image. Needs root."""
    cmd = [BUILD_SCRIPT] + (['--force'] if force else [])
    env = dict(os.environ, NODEOPS_MEMCG_VM_CACHE=cache_dir())
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log or subprocess.PIPE, text=True, env=env,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError('build_image.sh failed (%d): %s' % (proc.returncode, (proc.stderr or '')[-3000:]))
    return Image(proc.stdout.strip().splitlines()[-1])


def fetch_deb(package, dest=None):
    """Download a package's .deb on the host with apt-get download; cached; returns its path.

    The guest has no network: the newer kernel is copied in from here."""
    dest = dest or os.path.join(cache_dir(), 'debs')
    os.makedirs(dest, exist_ok=True)
    prefix = package + '_'
    found = sorted(f for f in os.listdir(dest) if f.startswith(prefix) and f.endswith('.deb'))
    if not found:
        proc = subprocess.run(['apt-get', 'download', '-q', package], cwd=dest, check=False,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            raise RuntimeError('apt-get download %s failed (%d; stale package lists? apt-get update): %s'
                               % (package, proc.returncode, proc.stdout[-2000:]))
        found = sorted(f for f in os.listdir(dest) if f.startswith(prefix) and f.endswith('.deb'))
    if not found:
        raise RuntimeError('apt-get download %s left no .deb in %s' % (package, dest))
    return os.path.join(dest, found[-1])


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _kill(proc, grace=10.0):
    """Stop a child process by its pid: SIGTERM, then SIGKILL; always reaped."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.kill(proc.pid, signal.SIGTERM)
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait()
    except ProcessLookupError:
        return proc.wait()


def _kvm_probe_key(image):
    qemu = subprocess.run([QEMU, '--version'], stdout=subprocess.PIPE, text=True,
                          check=True).stdout.splitlines()[0]
    return '%s|%s|%s' % (os.uname().release, qemu, image.manifest.get('key'))


def kvm_works(image, seconds=20.0, workdir=None):
    """Whether KVM really boots a guest here: /dev/kvm usable and "Linux version" on the serial
    console within `seconds` (seen here: qemu64/kvm64 hang right after the kernel is decompressed,
    host/max abort on MSR 0x10a). The answer is cached in the cache directory per host kernel,
    qemu version and image; NODEOPS_MEMCG_VM_ACCEL=tcg|kvm overrides it."""
    forced = os.environ.get('NODEOPS_MEMCG_VM_ACCEL')
    if forced in ('tcg', 'kvm'):
        return forced == 'kvm'
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        return False
    key = _kvm_probe_key(image)
    cache_file = os.path.join(cache_dir(), 'kvm-probe.json')
    try:
        with open(cache_file) as f:
            cached = json.load(f)
        if cached.get('key') == key:
            return bool(cached['kvm'])
    except (OSError, ValueError, KeyError):
        pass
    ok = False
    tmp = tempfile.mkdtemp(prefix='kvm-probe-', dir=workdir)
    try:
        g = Guest(image, tmp, accel='kvm')
        g.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and g.running():
            if 'Linux version' in g.console():
                ok = True
                break
            time.sleep(0.5)
        g.stop()
    except GuestError:
        ok = False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(cache_file + '.tmp', 'w') as f:
        json.dump({'key': key, 'kvm': ok, 'probed_at': int(time.time())}, f)
    os.rename(cache_file + '.tmp', cache_file)
    return ok


class GuestError(RuntimeError):
    pass


class Guest(object):
    """One boot of the base image through a fresh qcow2 overlay in workdir."""

    def __init__(self, image, workdir, accel=None, memory_mb=1024, cpus=2, name='vmguest'):
        self.image = image
        self.workdir = workdir
        self.accel = accel  # 'kvm', 'tcg' or None: decided by kvm_works() at start
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.name = name
        self.port = None
        self.proc = None
        self.overlay = os.path.join(workdir, name + '.qcow2')
        self.console_path = os.path.join(workdir, name + '-console.log')
        self.qemu_log = os.path.join(workdir, name + '-qemu.log')
        self.timings = {}

    # ------------------------------------------------------------------ process

    def qemu_command(self):
        accel = KVM_ACCEL if self.accel == 'kvm' else TCG_ACCEL
        return [
            QEMU, '-name', self.name, '-nodefaults', '-no-user-config',
            '-machine', 'pc', '-m', str(self.memory_mb), '-smp', str(self.cpus),
        ] + accel + [
            '-drive', 'file=%s,format=qcow2,if=virtio,cache=unsafe' % self.overlay,
            '-netdev', 'user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22' % self.port,
            '-device', 'virtio-net-pci,netdev=n0',
            '-display', 'none', '-monitor', 'none',
            '-serial', 'file:%s' % self.console_path,
        ]

    def start(self):
        if self.accel is None:
            self.accel = 'kvm' if kvm_works(self.image, workdir=self.workdir) else 'tcg'
        os.makedirs(self.workdir, exist_ok=True)
        if not os.path.exists(self.overlay):
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b',
                            self.image.disk, self.overlay], check=True)
        for _attempt in range(5):
            self.port = free_port()
            log = open(self.qemu_log, 'w')
            self.proc = subprocess.Popen(self.qemu_command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            self.started_at = time.monotonic()
            time.sleep(0.5)
            if self.proc.poll() is None:
                return self
            with open(self.qemu_log) as f:
                err = f.read()
            if 'Could not set up host forwarding' not in err:
                raise GuestError('qemu exited (%s): %s' % (self.proc.returncode, err[-2000:]))
        raise GuestError('qemu could not bind a loopback port for SSH')

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Stop qemu by its pid (no guest shutdown: the overlay is thrown away)."""
        if self.proc is not None:
            _kill(self.proc)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def console(self):
        try:
            with open(self.console_path, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    # ------------------------------------------------------------------ SSH

    def ssh_options(self):
        return ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
                '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes',
                '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3']

    def ssh_command(self, command):
        return ['ssh'] + self.ssh_options() + ['-i', self.image.key, '-p', str(self.port),
                                               'root@127.0.0.1', command]

    def run(self, command, check=True, timeout=600):
        """Run a shell command in the guest over SSH -> CompletedProcess (text)."""
        if isinstance(command, (list, tuple)):
            command = ' '.join(shlex.quote(c) for c in command)
        proc = subprocess.run(self.ssh_command(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise GuestError('guest command %r failed (%d): %s%s'
                             % (command, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
        return proc

    def copy_in(self, local, remote):
        subprocess.run(['scp', '-q'] + self.ssh_options() + ['-i', self.image.key, '-P', str(self.port),
                                                             local, 'root@127.0.0.1:' + remote], check=True)

    def wait_ssh(self, timeout=600):
        """Wait until a command runs over SSH (slirp accepts the TCP connection before sshd is up,
        so only a command's success counts). Returns the seconds waited."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            if not self.running():
                raise GuestError('qemu exited (%s) while waiting for SSH; console tail:\n%s'
                                 % (self.proc.returncode, self.console()[-3000:]))
            try:
                if self.run('true', check=False, timeout=30).returncode == 0:
                    return time.monotonic() - start
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                raise GuestError('no SSH after %d s; console tail:\n%s' % (timeout, self.console()[-3000:]))
            time.sleep(2)

    def boot_id(self):
        return self.run('cat /proc/sys/kernel/random/boot_id').stdout.strip()

    def reboot(self, timeout=900):
        """Reboot the guest from inside and wait until it is back (a new boot id over SSH).
        Returns the seconds from the reboot command to SSH."""
        before = self.boot_id()
        start = time.monotonic()
        self.run('systemd-run --on-active=1 --timer-property=AccuracySec=100ms /bin/systemctl reboot', check=True)
        deadline = start + timeout
        while True:
            time.sleep(3)
            if not self.running():
                raise GuestError('qemu exited during the reboot; console tail:\n%s' % self.console()[-3000:])
            try:
                proc = self.run('cat /proc/sys/kernel/random/boot_id', check=False, timeout=30)
                if proc.returncode == 0 and proc.stdout.strip() != before:
                    return time.monotonic() - start
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                raise GuestError('not back %d s after the reboot; console tail:\n%s'
                                 % (timeout, self.console()[-3000:]))

    def set_kernel_args(self, args):
        """Append `args` to every GRUB entry's kernel command line from the next update-grub on
        (e.g. systemd.unified_cgroup_hierarchy=0 for cgroup v1), and regenerate grub.cfg now."""
        self.run("mkdir -p /etc/default/grub.d && printf 'GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX %%s\"\\n' %s"
                 " > /etc/default/grub.d/90-nodeops-test.cfg && update-grub" % shlex.quote(args))

    # ------------------------------------------------------------------ Ansible

    def inventory(self, path, group='nodes', extra_vars=None):
        """Write an INI inventory with this guest as host `self.name`; returns path."""
        host_vars = {
            'ansible_host': '127.0.0.1',
            'ansible_port': self.port,
            'ansible_user': 'root',
            'ansible_ssh_private_key_file': self.image.key,
            'ansible_ssh_common_args': '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes',
            'ansible_python_interpreter': '/usr/bin/python3',
        }
        host_vars.update(extra_vars or {})
        line = self.name + ' ' + ' '.join("%s='%s'" % (k, v) for k, v in host_vars.items())
        with open(path, 'w') as f:
            f.write('[%s]\n%s\n' % (group, line))
        return path


class NodeHeartbeat(object):
    """The guest's kubelet, as far as the fake Kubernetes API can tell: a thread that asks the
    guest for its boot id and `uname -r` over SSH every `interval` seconds and reports the node
    Ready (with that kernel and boot id) or, after `misses` failed asks in a row, NotReady.

        kube.add_node('vmguest', kernel=guest_release)
        with NodeHeartbeat(guest, kube, 'vmguest'):
            ...run playbooks/upgrade.yml...

    `kube` is a tests.k8s_fake FakeKube (anything with set_node_ready(name, ready, kernel, boot_id)).
    `reports` lists (monotonic time, ready, kernel, boot_id) for every change reported.
    With `sample` (a shell command), `samples` lists (Unix time, kernel, its output) for every
    successful ask, e.g. `grub-editenv list` to see when the default boot entry changed."""

    def __init__(self, guest, kube, node, interval=3.0, misses=2, ssh_timeout=20, sample=None):
        self.guest = guest
        self.kube = kube
        self.node = node
        self.interval = interval
        self.misses = misses
        self.ssh_timeout = ssh_timeout
        self.reports = []
        self.sample = sample
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name='heartbeat-' + node, daemon=True)
        self._state = None  # (ready, kernel, boot_id) last reported

    def _ask(self):
        command = 'cat /proc/sys/kernel/random/boot_id; uname -r'
        if self.sample:
            command += '; echo ---; ' + self.sample
        try:
            proc = self.guest.run(command, check=False, timeout=self.ssh_timeout)
        except subprocess.TimeoutExpired:
            return None
        head, _sep, sampled = proc.stdout.partition('---\n')
        lines = head.split()
        if proc.returncode != 0 or len(lines) != 2:
            return None
        if self.sample:
            self.samples.append((time.time(), lines[1], sampled))
        return lines[1], lines[0]  # kernel, boot id

    def _report(self, ready, kernel=None, boot_id=None):
        state = (ready, kernel, boot_id) if ready else (False, None, None)
        if state == self._state:
            return
        self._state = state
        self.kube.set_node_ready(self.node, ready, kernel=kernel, boot_id=boot_id)
        self.reports.append((time.monotonic(), ready, kernel, boot_id))

    def _loop(self):
        failed = 0
        while not self._stop.is_set():
            answer = self._ask() if self.guest.running() else None
            if answer:
                failed = 0
                self._report(True, *answer)
            else:
                failed += 1
                if failed >= self.misses:
                    self._report(False)
            self._stop.wait(self.interval)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=self.ssh_timeout + 10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
