# -*- coding: utf-8 -*-
"""The self-healing timer (roles/mitigate/tasks/timer.yml) installed and removed by ansible-playbook.

Every run installs under a temporary mitigate_timer_prefix, so nothing touches this machine's real
/etc, /usr/local or /run; this machine runs no systemd, so the systemd variant is enabled offline
(systemctl --root) and checked with systemd-analyze verify.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, localhost_inventory, run_playbook
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree

PLAYBOOK = os.path.join(REPO_ROOT, 'tests', 'integration', 'playbooks', 'heal_timer.yml')
SCRIPT_SOURCE = os.path.join(REPO_ROOT, 'roles', 'mitigate', 'files', 'nodeops-memcg-heal')
MODULE_UTILS = ('errors', 'versions', 'kernel_policy', 'bounded', 'root_paths', 'cgroups', 'procfs', 'kernel_log',
                'probe', 'metrics', 'mitigation')
SYSTEMD_RUNNING = os.path.isdir('/run/systemd/system')


class Install:
    """Paths of one prefixed install, and the playbook run against it."""

    def __init__(self, env, tmp_path):
        self.env = env
        self.tmp = tmp_path
        self.prefix = str(tmp_path / 'prefix')
        os.mkdir(self.prefix)
        self.inventory = localhost_inventory(str(tmp_path))
        self.lib_dir = self.path('/usr/local/lib/nodeops-memcg')
        self.module_utils = os.path.join(self.lib_dir, 'ansible_collections/nodeops/memcg/plugins/module_utils')
        self.script = self.path('/usr/local/sbin/nodeops-memcg-heal')
        self.config = self.path('/etc/nodeops-memcg/heal.json')
        self.service = self.path('/etc/systemd/system/nodeops-memcg-heal.service')
        self.timer = self.path('/etc/systemd/system/nodeops-memcg-heal.timer')
        self.wants = self.path('/etc/systemd/system/timers.target.wants/nodeops-memcg-heal.timer')
        self.cron = self.path('/etc/cron.d/nodeops-memcg-heal')

    def path(self, absolute):
        return self.prefix + absolute

    def play(self, state, *args, **extra):
        extra_vars = {'mitigate_timer': state, 'mitigate_timer_prefix': self.prefix}
        extra_vars.update(extra)
        return run_playbook(self.env, PLAYBOOK, self.inventory, extra_vars, *args)

    def files(self):
        """Every file and symlink under the prefix (directories are not files)."""
        found = []
        for dirpath, dirnames, filenames in os.walk(self.prefix):
            found.extend(os.path.join(dirpath, name)[len(self.prefix):] for name in filenames)
            found.extend(os.path.join(dirpath, name)[len(self.prefix):] for name in dirnames
                         if os.path.islink(os.path.join(dirpath, name)))
        return sorted(found)


def recap(result):
    """ok/changed/failed counts from the PLAY RECAP line of localhost."""
    match = re.search(r'^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)',
                      result.stdout, re.MULTILINE)
    assert match, result.stdout
    return dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, match.groups())))


def succeeded(result, changed=None):
    assert result.returncode == 0, result.stdout
    counts = recap(result)
    if changed is not None:
        assert (counts['changed'] > 0) == changed, result.stdout
    return counts


def read(path):
    with open(path) as handle:
        return handle.read()


def installed_files(install, scheduler_files):
    packages = ['ansible_collections', 'nodeops', 'memcg', 'plugins', 'module_utils']
    inits = ['/usr/local/lib/nodeops-memcg/%s/__init__.py' % '/'.join(packages[:depth])
             for depth in range(1, len(packages) + 1)]
    utils = ['/usr/local/lib/nodeops-memcg/ansible_collections/nodeops/memcg/plugins/module_utils/%s.py' % name
             for name in MODULE_UTILS]
    return sorted(['/etc/nodeops-memcg/heal.json', '/usr/local/sbin/nodeops-memcg-heal']
                  + inits + utils + list(scheduler_files))


def verify_units(*units):
    """systemd-analyze verify: exit 0 and no complaint about our units (it works without a running systemd)."""
    command = shutil.which('systemd-analyze')
    if command is None:
        return 'systemd-analyze is not installed: unit content checked only'
    result = subprocess.run([command, 'verify'] + list(units), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, check=False)
    ours = [line for line in result.stdout.splitlines() if 'nodeops-memcg-heal' in line]
    assert result.returncode == 0 and not ours, result.stdout
    return 'verified'


@pytest.fixture
def install(ansible_env, tmp_path):
    made = Install(ansible_env, tmp_path)
    yield made
    if made.files():  # whatever a failed test left
        made.play('absent')
    shutil.rmtree(made.prefix, ignore_errors=True)


def test_systemd_timer_check_install_idempotent_remove(install):
    scheduler = {'mitigate_timer_scheduler': 'systemd', 'mitigate_timer_interval': 20, 'mitigate_timer_level': 3,
                 'mitigate_timer_splay': 90, 'mitigate_textfile_dir': str(install.tmp / 'textfile'),
                 'mitigate_thresholds': {'warn_dying': 4000}}

    checked = install.play('present', '--check', '--diff', **scheduler)
    succeeded(checked, changed=True)
    assert install.files() == [], 'check mode wrote files'
    assert 'Would install nodeops-memcg-heal, scheduled by systemd' in checked.stdout
    assert '+OnUnitActiveSec=20min' in checked.stdout  # the diff shows what would be written

    succeeded(install.play('present', **scheduler), changed=True)
    unit_files = ['/etc/systemd/system/nodeops-memcg-heal.service', '/etc/systemd/system/nodeops-memcg-heal.timer',
                  '/etc/systemd/system/timers.target.wants/nodeops-memcg-heal.timer']
    assert install.files() == installed_files(install, unit_files)
    for name in MODULE_UTILS:
        assert read(os.path.join(install.module_utils, name + '.py')) == \
            read(os.path.join(REPO_ROOT, 'plugins', 'module_utils', name + '.py'))
    assert read(install.script) == read(SCRIPT_SOURCE)
    assert os.stat(install.script).st_mode & 0o777 == 0o755
    assert json.loads(read(install.config)) == {
        'mode': 'heal', 'level': 3, 'min_verdict': 'warn', 'reaper': 'before', 'thresholds': {'warn_dying': 4000},
        'policy_overrides': [], 'textfile_dir': str(install.tmp / 'textfile'),
        'lock_file': install.path('/run/nodeops-memcg-heal.lock'), 'lib_dir': install.lib_dir}

    service = read(install.service)
    assert 'Type=oneshot\n' in service
    assert 'ExecStart=%s %s --config %s --quiet\n' % (sys.executable, install.script, install.config) in service
    for line in ('SuccessExitStatus=3', 'Nice=19', 'IOSchedulingClass=idle', 'PrivateNetwork=yes',
                 'TimeoutStartSec=1200', 'ConditionPathExists=%s' % install.config):
        assert line in service.splitlines(), line
    timer = read(install.timer)
    for line in ('OnBootSec=20min', 'OnUnitActiveSec=20min', 'RandomizedDelaySec=90', 'Persistent=false',
                 'Unit=nodeops-memcg-heal.service', 'WantedBy=timers.target'):
        assert line in timer.splitlines(), line
    assert os.path.islink(install.wants)  # systemctl --root enable
    verify_units(install.service, install.timer)

    again = install.play('present', **scheduler)
    assert succeeded(again)['changed'] == 0, again.stdout

    checked = install.play('absent', '--check')
    succeeded(checked, changed=True)
    assert 'Would remove the nodeops-memcg-heal timer' in checked.stdout
    assert install.files() == installed_files(install, unit_files), 'check mode removed files'

    # cron replaces systemd: units and the wants link go
    succeeded(install.play('present', **dict(scheduler, mitigate_timer_scheduler='cron')), changed=True)
    assert install.files() == installed_files(install, ['/etc/cron.d/nodeops-memcg-heal'])

    succeeded(install.play('absent'), changed=True)
    assert install.files() == []
    assert succeeded(install.play('absent'))['changed'] == 0


def test_systemd_older_than_229_gets_the_splay_in_the_job(install):
    # CentOS 7 runs systemd 219, which ignores RandomizedDelaySec: the job sleeps the splay itself.
    succeeded(install.play('present', mitigate_timer_scheduler='systemd', __mitigate_timer_systemd_version=219),
              changed=True)
    service, timer = read(install.service), read(install.timer)
    exec_start = 'ExecStart=%s %s --config %s --quiet --splay 120\n' % (sys.executable, install.script, install.config)
    assert exec_start in service
    assert 'RandomizedDelaySec' not in timer
    verify_units(install.service, install.timer)


def cron_jobs(text):
    return [line.lstrip('+') for line in text.splitlines()
            if re.match(r'^\+?[0-9*][^=]* root ', line)]


def test_cron_fallback(install):
    succeeded(install.play('present', mitigate_timer_scheduler='cron'), changed=True)
    assert install.files() == installed_files(install, ['/etc/cron.d/nodeops-memcg-heal'])
    cron = read(install.cron)
    assert cron_jobs(cron) == ['*/15 * * * * root nice -n 19 ionice -c 3 -t %s %s --config %s --quiet --splay 120'
                               % (sys.executable, install.script, install.config)]
    assert 'PATH=/usr/sbin:/usr/bin:/sbin:/bin' in cron.splitlines()
    assert os.stat(install.cron).st_mode & 0o777 == 0o644
    again = install.play('present', mitigate_timer_scheduler='cron')
    assert succeeded(again)['changed'] == 0, again.stdout
    # systemd replaces cron: the cron file goes
    succeeded(install.play('present', mitigate_timer_scheduler='systemd'), changed=True)
    assert not os.path.exists(install.cron) and os.path.islink(install.wants)
    succeeded(install.play('absent'), changed=True)
    assert install.files() == []


@pytest.mark.parametrize('interval, schedule', [(7, '*/7 * * * *'), (120, '0 */2 * * *'), (1440, '0 0 * * *')])
def test_cron_schedules(install, interval, schedule):
    # check mode with --diff shows the cron file it would write, and writes nothing
    result = install.play('present', '--check', '--diff', mitigate_timer_scheduler='cron',
                          mitigate_timer_interval=interval, mitigate_timer_splay=60)
    succeeded(result, changed=True)
    assert [job.split(' root ')[0] for job in cron_jobs(result.stdout)] == [schedule], result.stdout
    assert install.files() == []


@pytest.mark.skipif(SYSTEMD_RUNNING, reason='systemd runs here: auto picks systemd')
def test_auto_picks_cron_where_systemd_does_not_run(install):
    result = install.play('present')
    succeeded(result, changed=True)
    assert 'scheduled by cron' in result.stdout
    assert install.files() == installed_files(install, ['/etc/cron.d/nodeops-memcg-heal'])


def test_the_installed_job_runs_against_a_fixture_root(install):
    textfile_dir = install.tmp / 'textfile'
    textfile_dir.mkdir()
    succeeded(install.play('present', mitigate_timer_scheduler='cron', mitigate_timer_level=2,
                           mitigate_textfile_dir=str(textfile_dir)), changed=True)
    root = tree.build_node(install.tmp / 'root', memory_num_cgroups=68700)
    tree.write(root, '/proc/sys/vm/drop_caches', '0\n')

    # the cron line's command, as cron would run it, pointed at the fixture root and without the splay
    job = [line for line in read(install.cron).splitlines() if ' root ' in line][0]
    command = shlex.split(job.split(' root ', 1)[1])
    command = command[command.index('-t') + 1:command.index('--splay')] + ['--root', root]
    command.remove('--quiet')
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('nodeops-memcg-heal: action=dropped level=2 verdict=critical min_verdict=warn ')
    assert read(os.path.join(root, 'proc/sys/vm/drop_caches')) == '2'
    assert sorted(os.listdir(textfile_dir)) == ['nodeops_memcg.prom', 'nodeops_memcg_heal.prom']
    assert 'nodeops_memcg_dying 68692' in read(textfile_dir / 'nodeops_memcg.prom').splitlines()
    assert os.path.exists(install.path('/run/nodeops-memcg-heal.lock'))

    # the job refuses a second run while one holds the lock
    import fcntl
    with open(install.path('/run/nodeops-memcg-heal.lock')) as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        locked = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
                                check=False)
    assert locked.returncode == 3, locked.stderr

    # absent also removes what the job wrote: its lock and its own textfile (not the probe's)
    succeeded(install.play('absent', mitigate_textfile_dir=str(textfile_dir)), changed=True)
    assert install.files() == []
    assert os.listdir(textfile_dir) == ['nodeops_memcg.prom']


def test_monitor_mode_installs_a_probe_only_job(install):
    textfile_dir = install.tmp / 'textfile'
    textfile_dir.mkdir()
    settings = {'mitigate_timer_mode': 'monitor', 'mitigate_timer_scheduler': 'systemd',
                'mitigate_textfile_dir': str(textfile_dir)}
    result = install.play('present', **settings)
    succeeded(result, changed=True)
    assert 'it probes the node and writes the textfile metrics (%s); it never drops caches' % textfile_dir \
        in result.stdout
    assert json.loads(read(install.config))['mode'] == 'monitor'
    assert 'Description=nodeops.memcg monitor: probe dying memory cgroups and write the textfile metrics ' \
        '(never drops)' in read(install.service).splitlines()
    verify_units(install.service, install.timer)

    # the installed job, run as the unit runs it, against a sick fixture node: metrics, no drop
    root = tree.build_node(install.tmp / 'root', memory_num_cgroups=68700)
    tree.write(root, '/proc/sys/vm/drop_caches', '0\n')
    exec_start = [line for line in read(install.service).splitlines() if line.startswith('ExecStart=')][0]
    command = shlex.split(exec_start.split('=', 1)[1]) + ['--root', root]
    command.remove('--quiet')
    job = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    assert job.returncode == 0, job.stderr
    assert job.stdout.startswith('nodeops-memcg-heal: action=monitor:would-drop level=2 verdict=critical '), job.stdout
    assert read(os.path.join(root, 'proc/sys/vm/drop_caches')) == '0\n'
    assert 'nodeops_memcg_verdict 2' in read(textfile_dir / 'nodeops_memcg.prom').splitlines()
    assert 'nodeops_memcg_heal_dropped 0' in read(textfile_dir / 'nodeops_memcg_heal.prom').splitlines()

    succeeded(install.play('absent', **settings), changed=True)
    assert install.files() == []


def test_a_bad_threshold_is_refused_before_the_config_is_written(install):
    result = install.play('present', mitigate_timer_scheduler='cron', mitigate_thresholds={'warn_dyng': 10})
    assert result.returncode != 0
    assert "unknown threshold 'warn_dyng'" in result.stdout, result.stdout
    assert not os.path.exists(install.config)
    assert not os.path.exists(install.cron)


@pytest.mark.parametrize('settings, message', [
    # choices are the role's argument spec's, which runs first
    ({'mitigate_timer_level': 4}, 'value of mitigate_timer_level must be one of: 1, 2, 3, got: 4'),
    ({'mitigate_timer_mode': 'watch'}, 'value of mitigate_timer_mode must be one of: heal, monitor, got: watch'),
    ({'mitigate_timer_mode': 'monitor'}, 'mitigate_timer_mode monitor needs mitigate_textfile_dir'),
    ({'mitigate_timer_scheduler': 'launchd'}, 'value of mitigate_timer_scheduler must be one of: auto, systemd, cron, got: launchd'),
    ({'mitigate_timer_interval': 10, 'mitigate_timer_splay': 600}, 'mitigate_timer_splay whole seconds below the interval'),
    ({'mitigate_timer_scheduler': 'cron', 'mitigate_timer_interval': 90},
     'with cron, mitigate_timer_interval must be 1-59 minutes or a multiple of 60 (got 90)'),
])
def test_bad_variables_fail_before_anything_is_written(install, settings, message):
    result = install.play('present', **settings)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout
    assert install.files() == []
