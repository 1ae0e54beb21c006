# -*- coding: utf-8 -*-
"""roles/mitigate/files/nodeops-memcg-heal, the self-healing timer's job, run against fixture nodes.

The script runs as the timer runs it: a separate process on a bare interpreter (-I -S: no
site-packages, so no Ansible), importing the module_utils from a tree shipped the way
roles/mitigate/tasks/timer.yml ships it. Python 2.7 and 3.6 run it too where they are installed.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fcntl
import glob
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time

import pytest
import yaml

from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
SCRIPT = os.path.join(REPO, 'roles', 'mitigate', 'files', 'nodeops-memcg-heal')
TIMER_TASKS = os.path.join(REPO, 'roles', 'mitigate', 'tasks', 'timer.yml')
MODULE_UTILS = os.path.join(REPO, 'plugins', 'module_utils')
IMPORT_RE = re.compile(r'^\s*from ansible_collections\.nodeops\.memcg\.plugins\.module_utils(?:\.(\w+))? import \(?([\w, ]+)',
                       re.MULTILINE)


def shipped_lists():
    """(module_utils, packages) as timer.yml ships them: the block vars of its install block."""
    with open(TIMER_TASKS) as handle:
        tasks = yaml.safe_load(handle)
    for task in tasks:
        found = task.get('vars', {})
        if '__mitigate_timer_module_utils' in found:
            return found['__mitigate_timer_module_utils'], found['__mitigate_timer_packages']
    raise AssertionError('timer.yml has no __mitigate_timer_module_utils')


def imported_module_utils(text):
    names = set()
    for module, imported in IMPORT_RE.findall(text):
        if module:
            names.add(module)
        else:
            names.update(name.strip() for name in imported.split(',') if name.strip())
    return names


@pytest.fixture(scope='module')
def lib_dir(tmp_path_factory):
    """The module_utils tree the role ships, built from the role's own lists."""
    lib = str(tmp_path_factory.mktemp('lib'))
    modules, packages = shipped_lists()
    for package in packages:
        os.makedirs(os.path.join(lib, package))
        open(os.path.join(lib, package, '__init__.py'), 'w').close()
    for name in modules:
        shutil.copy(os.path.join(MODULE_UTILS, name + '.py'), os.path.join(lib, packages[-1]))
    return lib


@pytest.fixture
def node(tmp_path):
    """A sick CentOS 7 node (68,700 memcgs, 8 live) with a drop_caches file, and a textfile dir."""
    root = tree.build_node(tmp_path / 'root', memory_num_cgroups=68700)
    tree.write(root, '/proc/sys/vm/drop_caches', '0\n')
    textfile_dir = tmp_path / 'textfile'
    textfile_dir.mkdir()
    return {'root': root, 'textfile_dir': str(textfile_dir), 'tmp': tmp_path}


def write_config(node, lib_dir, **settings):
    config = {'lib_dir': lib_dir, 'lock_file': str(node['tmp'] / 'run' / 'heal.lock'),
              'textfile_dir': node['textfile_dir'], 'cpu_interval': 0, 'settle_seconds': 0}
    config.update(settings)
    path = str(node['tmp'] / 'heal.json')
    with open(path, 'w') as handle:
        json.dump(config, handle)
    return path


def isolated(python):
    """Interpreter flags that leave site-packages (and so Ansible) out."""
    out = subprocess.check_output([python, '-c', 'import sys; print(sys.version_info[0])'])
    return [python, '-I', '-S'] if out.strip() == b'3' else [python, '-E', '-s', '-S']


def run(node, config, *args, **kwargs):
    python = kwargs.get('python', sys.executable)
    command = isolated(python) + [SCRIPT, '--config', config, '--root', node['root']] + list(args)
    return subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=120, check=False)


def drop_caches(node):
    with open(os.path.join(node['root'], 'proc/sys/vm/drop_caches')) as handle:
        return handle.read()


def tree_state(top):
    """Every file under top with its content and mtime: what a run that writes nothing leaves."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            content = open(path, 'rb').read() if stat.S_ISREG(info.st_mode) else None
            state[path] = (info.st_mtime_ns, content)
    return state


def other_pythons():
    """Python 2.7 and 3.6 (CentOS 7's and EL8's platform Pythons) where this machine has them."""
    found = []
    for version in ('2.7', '3.6'):
        candidates = [shutil.which('python' + version)] + sorted(glob.glob(
            os.path.expanduser('~/.pyenv/versions/%s*/bin/python%s' % (version, version))))
        for candidate in candidates:
            if candidate and subprocess.call([candidate, '-c', 'import sys'], stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL) == 0:
                found.append(pytest.param(candidate, id='python' + version))
                break
        else:
            found.append(pytest.param(None, id='python' + version))
    return found


def load_script():
    """The script as a module, for the tests that watch its syslog calls and renames."""
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader('nodeops_memcg_heal', SCRIPT)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


# ---------------------------------------------------------------- shipping

def test_shipped_module_utils_are_closed_under_imports():
    modules, packages = shipped_lists()
    with open(SCRIPT) as handle:
        needed = imported_module_utils(handle.read())
    pending = set(needed)
    while pending:
        name = pending.pop()
        with open(os.path.join(MODULE_UTILS, name + '.py')) as handle:
            for imported in imported_module_utils(handle.read()) - needed:
                needed.add(imported)
                pending.add(imported)
    assert needed <= set(modules), 'timer.yml must ship %s' % sorted(needed - set(modules))
    assert packages[-1].endswith('nodeops/memcg/plugins/module_utils')
    assert [p.count('/') for p in packages] == list(range(len(packages))), 'an __init__.py at every level'


def test_isolation_really_hides_ansible():
    probe = subprocess.run(isolated(sys.executable) + ['-c', 'import ansible'], stderr=subprocess.PIPE,
                           universal_newlines=True, check=False)
    assert probe.returncode != 0 and 'ansible' in probe.stderr


# ---------------------------------------------------------------- the gate

def test_below_threshold_nothing_is_dropped(tmp_path, lib_dir):
    root = tree.build_node(tmp_path / 'root', memory_num_cgroups=12)  # 4 dying
    tree.write(root, '/proc/sys/vm/drop_caches', '0\n')
    node = {'root': root, 'textfile_dir': '', 'tmp': tmp_path}
    result = run(node, write_config(node, lib_dir))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ''
    assert drop_caches(node) == '0\n'
    line = result.stdout.strip()
    assert line.startswith('nodeops-memcg-heal: action=none verdict=ok min_verdict=warn dying=4 total=12 ')
    assert 'level=' not in line and '->' not in line


def test_above_threshold_the_level_is_written(node, lib_dir):
    result = run(node, write_config(node, lib_dir, level=3))
    assert result.returncode == 0, result.stderr
    assert drop_caches(node) == '3'
    assert re.match(r'nodeops-memcg-heal: action=dropped level=3 verdict=critical min_verdict=warn '
                    r'dying=68692->68692\(\+0\) total=68700->68700\(\+0\) slab_kb=1412332->1412332\(\+0\) '
                    r'nr_dentry=1152113->1152113\(\+0\) root_read_ms=[0-9.]+->[0-9.]+\([-+][0-9.e-]+\) '
                    r'verdict_after=critical reason="68692 dying memory cgroups exceed critical_dying \(20000\)',
                    result.stdout), result.stdout


def test_min_verdict_critical_leaves_a_warn_node_alone(tmp_path, lib_dir):
    # 6,000 dying: over warn_dying (5,000), under critical_dying (20,000)
    root = tree.build_node(tmp_path / 'root', memory_num_cgroups=6008, cmdline='ro cgroup.memory=nokmem\0')
    tree.write(root, '/proc/sys/vm/drop_caches', '0\n')
    node = {'root': root, 'textfile_dir': '', 'tmp': tmp_path}
    result = run(node, write_config(node, lib_dir, min_verdict='critical'))
    assert result.returncode == 0, result.stderr
    assert 'action=none verdict=warn min_verdict=critical dying=6000 ' in result.stdout
    assert drop_caches(node) == '0\n'
    result = run(node, write_config(node, lib_dir, min_verdict='warn'))
    assert 'action=dropped level=2 verdict=warn' in result.stdout
    assert drop_caches(node) == '2'


def test_thresholds_and_policy_overrides_from_the_config_apply(tmp_path, lib_dir):
    root = tree.build_node(tmp_path / 'root', memory_num_cgroups=12, release='6.1.0-18-amd64',
                           cmdline='ro quiet\0')
    tree.write(root, '/proc/sys/vm/drop_caches', '0\n')
    node = {'root': root, 'textfile_dir': '', 'tmp': tmp_path}
    override = {'match': r'^6\.1\.0-18-amd64$', 'stream': 'lab', 'status': 'severe'}
    result = run(node, write_config(node, lib_dir, thresholds={'warn_dying': 1, 'critical_dying': 3},
                                    policy_overrides=[override]))
    assert result.returncode == 0, result.stderr
    assert 'action=dropped level=2 verdict=critical' in result.stdout
    assert 'exceed critical_dying (3); on this kernel' in result.stdout


def test_dry_run_writes_nothing(node, lib_dir):
    config = write_config(node, lib_dir)
    before = tree_state(str(node['tmp']))
    result = run(node, config, '--dry-run')
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('nodeops-memcg-heal: action=dry-run:would-drop level=2 verdict=critical ')
    assert '->' not in result.stdout
    assert tree_state(str(node['tmp'])) == before  # no drop, no textfile, no lock file
    assert drop_caches(node) == '0\n'


def test_monitor_mode_probes_and_writes_the_textfiles_but_never_drops(node, lib_dir):
    config = write_config(node, lib_dir, mode='monitor')
    for run_number in (1, 2):
        result = run(node, config)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith('nodeops-memcg-heal: action=monitor:would-drop level=2 verdict=critical '
                                        'min_verdict=warn dying=68692 '), result.stdout
        assert drop_caches(node) == '0\n'
        with open(os.path.join(node['textfile_dir'], 'nodeops_memcg.prom')) as handle:
            probe = handle.read().splitlines()
        assert 'nodeops_memcg_dying 68692' in probe and 'nodeops_memcg_verdict 2' in probe
        with open(os.path.join(node['textfile_dir'], 'nodeops_memcg_heal.prom')) as handle:
            heal = handle.read().splitlines()
        for line in ('nodeops_memcg_heal_success 1', 'nodeops_memcg_heal_dropped 0', 'nodeops_memcg_heal_reaped 0',
                     'nodeops_memcg_heal_drops_total 0'):
            assert line in heal, (run_number, line)
        assert not [line for line in heal if line.startswith('nodeops_memcg_heal_last_drop_timestamp_seconds')]


def test_quiet_prints_nothing(node, lib_dir):
    result = run(node, write_config(node, lib_dir), '--quiet')
    assert (result.returncode, result.stdout, result.stderr) == (0, '', '')
    assert drop_caches(node) == '2'


# ---------------------------------------------------------------- textfile metrics

def test_textfiles_are_replaced_atomically_with_the_metrics(node, lib_dir):
    probe_file = os.path.join(node['textfile_dir'], 'nodeops_memcg.prom')
    with open(probe_file, 'w') as handle:
        handle.write('old content\n')
    old = open(probe_file)  # a reader (node_exporter) holding the old file
    try:
        result = run(node, write_config(node, lib_dir))
        assert result.returncode == 0, result.stderr
        assert old.read() == 'old content\n', 'the file was rewritten in place, not replaced by a rename'
    finally:
        old.close()
    assert sorted(os.listdir(node['textfile_dir'])) == ['nodeops_memcg.prom', 'nodeops_memcg_heal.prom']
    for name in os.listdir(node['textfile_dir']):
        assert stat.S_IMODE(os.stat(os.path.join(node['textfile_dir'], name)).st_mode) == 0o644
    with open(probe_file) as handle:
        probe = handle.read()
    for line in ('# TYPE nodeops_memcg_dying gauge', 'nodeops_memcg_total 68700', 'nodeops_memcg_live 8',
                 'nodeops_memcg_dying 68692', 'nodeops_memcg_verdict 2', 'nodeops_memcg_kmem_leak_suspected 1',
                 'nodeops_memcg_kernel_status{release="3.10.0-1160.el7.x86_64",stream="el7"} 2',
                 'nodeops_memcg_slab_bytes{kind="reclaimable"} 1332449280'):
        assert line in probe.splitlines(), line
    assert re.search(r'^nodeops_memcg_probe_timestamp_seconds \d+\.\d+$', probe, re.MULTILINE)
    with open(os.path.join(node['textfile_dir'], 'nodeops_memcg_heal.prom')) as handle:
        heal = handle.read()
    for line in ('nodeops_memcg_heal_success 1', 'nodeops_memcg_heal_dropped 1', 'nodeops_memcg_heal_reaped 0',
                 'nodeops_memcg_heal_freed_dying 0', 'nodeops_memcg_heal_drops_total 1',
                 '# TYPE nodeops_memcg_heal_drops_total counter'):
        assert line in heal.splitlines(), line

    result = run(node, write_config(node, lib_dir))  # the counter carries over
    with open(os.path.join(node['textfile_dir'], 'nodeops_memcg_heal.prom')) as handle:
        assert 'nodeops_memcg_heal_drops_total 2' in handle.read().splitlines()


def test_textfile_goes_through_a_temp_file_in_the_same_directory(node, lib_dir, monkeypatch):
    script = load_script()
    renames = []
    real_rename = os.rename

    def spy(src, dst):
        with open(src) as handle:
            renames.append((src, dst, handle.read()))
        real_rename(src, dst)

    monkeypatch.setattr(script.os, 'rename', spy)
    monkeypatch.setattr(sys, 'path', list(sys.path))
    monkeypatch.setattr(sys, 'dont_write_bytecode', sys.dont_write_bytecode)
    assert script.main(['--config', write_config(node, lib_dir), '--root', node['root'], '--quiet']) == 0
    assert [os.path.basename(rename[1]) for rename in renames] == ['nodeops_memcg.prom', 'nodeops_memcg_heal.prom']
    for src, dst, content in renames:
        assert os.path.dirname(src) == os.path.dirname(dst) == node['textfile_dir']
        assert os.path.basename(src).startswith('.') and src.endswith('.tmp'), 'never a *.prom while written'
        with open(dst) as handle:
            assert handle.read() == content and content.endswith('\n')


def test_a_failed_run_marks_the_heal_textfile(node, lib_dir):
    os.remove(os.path.join(node['root'], 'proc/cgroups'))
    result = run(node, write_config(node, lib_dir))
    assert result.returncode == 1
    assert 'nodeops-memcg-heal: error: cannot read %s/proc/cgroups' % node['root'] in result.stderr
    with open(os.path.join(node['textfile_dir'], 'nodeops_memcg_heal.prom')) as handle:
        assert 'nodeops_memcg_heal_success 0' in handle.read().splitlines()
    assert not os.path.exists(os.path.join(node['textfile_dir'], 'nodeops_memcg.prom'))
    assert drop_caches(node) == '0\n'


# ---------------------------------------------------------------- syslog

class FakeSyslog:
    LOG_PID, LOG_DAEMON = 1, 24
    LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO = 3, 4, 5, 6

    def __init__(self):
        self.opened, self.lines = None, []

    def openlog(self, *args):
        self.opened = args

    def syslog(self, priority, message):
        self.lines.append((priority, message))


@pytest.fixture
def fake_syslog(monkeypatch):
    script = load_script()
    fake = FakeSyslog()
    monkeypatch.setattr(script, 'syslog', fake)
    monkeypatch.setattr(sys, 'path', list(sys.path))
    monkeypatch.setattr(sys, 'dont_write_bytecode', sys.dont_write_bytecode)
    return script, fake


def test_syslog_line_of_a_drop(node, lib_dir, fake_syslog, capsys):
    script, fake = fake_syslog
    assert script.main(['--config', write_config(node, lib_dir), '--root', node['root']]) == 0
    assert fake.opened == ('nodeops-memcg-heal', FakeSyslog.LOG_PID, FakeSyslog.LOG_DAEMON)
    assert len(fake.lines) == 1
    priority, message = fake.lines[0]
    assert priority == FakeSyslog.LOG_NOTICE
    assert message.startswith('action=dropped level=2 verdict=critical min_verdict=warn dying=68692->68692(+0) ')
    assert '(+2 more)"' in message
    assert capsys.readouterr().out == 'nodeops-memcg-heal: %s\n' % message


def test_syslog_line_when_nothing_is_needed(tmp_path, lib_dir, fake_syslog):
    script, fake = fake_syslog
    root = tree.build_node(tmp_path / 'root', memory_num_cgroups=12)
    tree.write(root, '/proc/sys/vm/drop_caches', '0\n')
    node = {'root': root, 'textfile_dir': '', 'tmp': tmp_path}
    assert script.main(['--config', write_config(node, lib_dir), '--root', root, '--quiet']) == 0
    assert [line[0] for line in fake.lines] == [FakeSyslog.LOG_INFO]
    assert fake.lines[0][1].startswith('action=none verdict=ok ')


def test_syslog_line_of_an_error(node, lib_dir, fake_syslog, capsys):
    script, fake = fake_syslog
    assert script.main(['--config', write_config(node, lib_dir, level=4), '--root', node['root']]) == 1
    assert fake.lines == [(FakeSyslog.LOG_ERR, 'error: config %s: level must be one of 1, 2, 3, got 4'
                           % (node['tmp'] / 'heal.json'))]
    assert 'level must be one of 1, 2, 3, got 4' in capsys.readouterr().err


# ---------------------------------------------------------------- config errors, lock

@pytest.mark.parametrize('settings, message', [
    ({'level': 5}, 'level must be one of 1, 2, 3, got 5'),
    ({'level': '2'}, 'level must be an integer 1, 2 or 3, got "2"'),
    ({'min_verdict': 'ok'}, "min_verdict must be one of warn, critical, got 'ok'"),
    ({'reaper': 'always'}, "reaper must be one of before, instead, never, got 'always'"),
    ({'levle': 2}, "unknown key 'levle' (known keys: cpu_interval, kubelet_name, level,"),
    ({'thresholds': {'warn_dyng': 10}}, "unknown threshold 'warn_dyng'"),
    ({'thresholds': {'warn_dying': 30000}}, 'threshold warn_dying (30000) must not exceed critical_dying (20000)'),
    ({'textfile_dir': 'var/lib/node_exporter'}, 'textfile_dir must be an absolute path or "", got "var/lib/node_exporter"'),
    ({'policy_overrides': [{'match': '(', 'status': 'fixed'}]}, "policy_overrides[0]: match '(' is not a valid regular expression"),
    ({'stat_reads': 9}, 'stat_reads must be between 0 and 5, got 9'),
    ({'mode': 'watch'}, 'mode must be heal or monitor, got "watch"'),
])
def test_bad_config_names_the_key(node, lib_dir, settings, message):
    config = write_config(node, lib_dir, **settings)
    for args in (('--check-config',), ()):
        result = run(node, config, *args)
        assert result.returncode == 1
        assert 'nodeops-memcg-heal: error: config %s: ' % config in result.stderr
        assert message in result.stderr, result.stderr
        assert drop_caches(node) == '0\n'
        if args:  # the role's validate step writes nothing
            assert os.listdir(node['textfile_dir']) == []
    if 'textfile_dir' in settings or 'levle' in settings or 'mode' in settings or settings.get('level') == '2':
        # the config file itself is malformed: none of it is trusted, textfile_dir included
        assert os.listdir(node['textfile_dir']) == []
    else:  # a well-formed config with a bad value: the failed run shows up in the metrics
        with open(os.path.join(node['textfile_dir'], 'nodeops_memcg_heal.prom')) as handle:
            assert 'nodeops_memcg_heal_success 0' in handle.read().splitlines()
        assert os.listdir(node['textfile_dir']) == ['nodeops_memcg_heal.prom']


def test_unreadable_or_broken_config(node, lib_dir):
    missing = run(node, str(node['tmp'] / 'nope.json'))
    assert missing.returncode == 1 and 'nope.json: cannot read it: No such file or directory' in missing.stderr
    broken = node['tmp'] / 'broken.json'
    broken.write_text('{"level": 2,}')
    result = run(node, str(broken))
    assert result.returncode == 1 and 'broken.json: not valid JSON' in result.stderr
    wrong_lib = run(node, write_config(node, str(node['tmp'] / 'nolib')))
    assert wrong_lib.returncode == 1
    assert 'cannot import the collection module_utils from %s (lib_dir)' % (node['tmp'] / 'nolib') in wrong_lib.stderr


def test_check_config_accepts_a_good_config_silently(node, lib_dir):
    result = run(node, write_config(node, lib_dir), '--check-config')
    assert (result.returncode, result.stdout, result.stderr) == (0, '', '')
    assert drop_caches(node) == '0\n'


def test_a_second_run_skips_while_the_lock_is_held(node, lib_dir):
    config = write_config(node, lib_dir)
    lock_file = str(node['tmp'] / 'run' / 'heal.lock')
    os.makedirs(os.path.dirname(lock_file))
    with open(lock_file, 'w') as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run(node, config)
    assert result.returncode == 3
    assert result.stderr == 'nodeops-memcg-heal: skipped: another run holds %s\n' % lock_file
    assert drop_caches(node) == '0\n'
    assert run(node, config).returncode == 0  # released: the next run drops
    assert drop_caches(node) == '2'


# ---------------------------------------------------------------- node Pythons

@pytest.mark.parametrize('python', other_pythons())
def test_runs_on_the_node_pythons(node, lib_dir, python):
    if python is None:
        pytest.skip('this interpreter is not installed here (vermin checks the syntax statically)')
    result = run(node, write_config(node, lib_dir), python=python)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('nodeops-memcg-heal: action=dropped level=2 verdict=critical ')
    assert drop_caches(node) == '2'
    assert sorted(os.listdir(node['textfile_dir'])) == ['nodeops_memcg.prom', 'nodeops_memcg_heal.prom']
    assert not [path for path in glob.glob(os.path.join(lib_dir, '**', '*'), recursive=True)
                if path.endswith('.pyc') or path.endswith('__pycache__')], 'no bytecode in the shipped tree'


# ---------------------------------------------------------------- a memory.stat that never answers

@pytest.mark.parametrize('python', [pytest.param(sys.executable, id='controller')] + other_pythons())
def test_a_memory_stat_that_never_answers_does_not_hang_the_job(node, lib_dir, python):
    if python is None:
        pytest.skip('this interpreter is not installed here (vermin checks the syntax statically)')
    stat_file = os.path.join(node['root'], 'sys/fs/cgroup/memory/memory.stat')
    os.unlink(stat_file)
    os.mkfifo(stat_file)
    start = time.monotonic()
    result = run(node, write_config(node, lib_dir, read_timeout=1.5), python=python)
    # two probes (before and after the drop), each abandoning one read after 1.5 s
    assert time.monotonic() - start < 2 * (1.5 + 0.5) + 5
    assert result.returncode == 0, result.stderr
    assert re.search(r' root_read_ms=1[56][0-9.]*->1[56][0-9.]*\([-+][0-9.e-]+\) .*root_read_timed_out=true',
                     result.stdout), result.stdout
    assert drop_caches(node) == '2'


def test_bad_read_timeout_is_refused(node, lib_dir):
    result = run(node, write_config(node, lib_dir, read_timeout=0.5), '--check-config')
    assert result.returncode == 1
    assert 'read_timeout must be over critical_read_ms (1.0 s)' in result.stderr
