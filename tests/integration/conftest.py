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
