# -*- coding: utf-8 -*-
"""Shared fixtures for integration tests: real ansible-playbook against this machine."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


# The files whose tests read or change this machine's memory cgroups, drop_caches or CPU time (real
# dying memcgs, baselines, perf, timing bounds) are marked host_state: run-all.sh runs them alone,
# one after another, since another worker's memory pressure frees dying memcgs under their
# baselines. The others run under pytest-xdist (-n 2 --dist loadgroup), each file on one worker so
# its module-scoped fixtures (the SSH fleet) start once.
HOST_STATE_FILES = frozenset([
    'test_centos7_pythons.py', 'test_detect_real.py', 'test_diagnose_real.py', 'test_drop_caches_real.py',
    'test_probe_hostile.py', 'test_prometheus_scrape.py',
])


def pytest_configure(config):
    config.addinivalue_line('markers', 'host_state: reads or changes this machine\'s memory cgroups; run alone')


def pytest_collection_modifyitems(items):
    for item in items:
        name = item.path.name
        if name in HOST_STATE_FILES:
            item.add_marker(pytest.mark.host_state)
        item.add_marker(pytest.mark.xdist_group(name))


@pytest.fixture(scope='session')
def ansible_env(collections_path):
    """Environment for ansible-playbook / ansible-runner with this collection and no user config."""
    config_dir = tempfile.mkdtemp(prefix='nodeops-memcg-cfg-')
    config = os.path.join(config_dir, 'ansible.cfg')
    open(config, 'w').close()  # an empty config: no user or system settings leak in
    env = dict(os.environ)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': collections_path,
        'ANSIBLE_CONFIG': config,
        'ANSIBLE_HOST_KEY_CHECKING': 'False',
        'ANSIBLE_RETRY_FILES_ENABLED': 'False',
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_LOCAL_TEMP': tempfile.gettempdir(),
    })
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    yield env
    shutil.rmtree(config_dir)


# The node Pythons of CentOS 7 (2.7 as /usr/bin/python, 3.6 as python3): real CPython builds
# (pyenv on these machines, CI included), overridable with NODEOPS_MEMCG_PYTHON27 / _PYTHON36.
NODE_PYTHONS = {'2.7': 'NODEOPS_MEMCG_PYTHON27', '3.6': 'NODEOPS_MEMCG_PYTHON36'}


def node_python(version):
    """Path of a real CPython `version` for nodes, or None."""
    path = os.environ.get(NODE_PYTHONS[version])
    if not path:
        found = sorted(glob.glob(os.path.expanduser('~/.pyenv/versions/%s.*/bin/python%s' % (version, version))))
        path = found[-1] if found else None
    return path if path and os.access(path, os.X_OK) else None


@pytest.fixture(scope='session')
def node_pythons():
    """{'2.7': path, '3.6': path}; fails (never skips) when one is missing: CentOS 7 support rests on them."""
    pythons = dict((version, node_python(version)) for version in NODE_PYTHONS)
    missing = [version for version, path in pythons.items() if path is None]
    if missing:
        pytest.fail('no CPython %s for the CentOS 7 node tests: install it under ~/.pyenv/versions '
                    'or set %s' % (', '.join(missing), ', '.join(NODE_PYTHONS[v] for v in missing)))
    return pythons


@pytest.fixture(scope='session')
def ansible_216_env(ansible_env):
    """ansible_env with ansible-core 2.16 (the last controller that manages Python 2.7/3.6 nodes) first
    on PATH: run-all.sh's .venv-2.16 (NODEOPS_MEMCG_ANSIBLE_216_BIN). Fails when it is missing."""
    bin_dir = os.environ.get('NODEOPS_MEMCG_ANSIBLE_216_BIN') or os.path.join(REPO_ROOT, '.venv-2.16', 'bin')
    playbook = os.path.join(bin_dir, 'ansible-playbook')
    if not os.access(playbook, os.X_OK):
        pytest.fail('no ansible-core 2.16 at %s: run tests/run-all.sh (it builds .venv-2.16) '
                    'or set NODEOPS_MEMCG_ANSIBLE_216_BIN' % bin_dir)
    version = subprocess.run([os.path.join(bin_dir, 'python'), '-c', 'import ansible.release as r; print(r.__version__)'],
                             stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    if not version.startswith('2.16.'):
        pytest.fail('%s is ansible-core %s, not 2.16' % (bin_dir, version))
    env = dict(ansible_env)
    env['PATH'] = bin_dir + os.pathsep + env['PATH']
    return env


@pytest.fixture(scope='session')
def require_root_v1():
    if os.geteuid() != 0:
        pytest.fail('integration tests need root: they create real memory cgroups')
    import memcg_lab
    if memcg_lab.memory_hierarchy() is None:
        pytest.fail('integration tests need a cgroup v1 memory hierarchy on this machine')


def localhost_inventory(directory, extra_hosts=''):
    path = os.path.join(directory, 'inventory.ini')
    with open(path, 'w') as inventory:
        inventory.write('localhost ansible_connection=local '
                        'ansible_python_interpreter=%s\n%s' % (sys.executable, extra_hosts))
    return path


def run_playbook(env, playbook, inventory, extra_vars, *args):
    """Run ansible-playbook; return the CompletedProcess (output kept for assertion messages)."""
    command = ['ansible-playbook', '-i', inventory, playbook, '-e', json.dumps(extra_vars)] + list(args)
    return subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600, check=False)


def runner_stats(artifacts):
    """event_data of the playbook_on_stats event of an ansible-runner artifacts directory."""
    for event_file in glob.glob(os.path.join(artifacts, 'job_events', '*.json')):
        with open(event_file) as handle:
            event = json.load(handle)
        if event.get('event') == 'playbook_on_stats':
            return event['event_data']
    raise AssertionError('no playbook_on_stats event in %s' % artifacts)
