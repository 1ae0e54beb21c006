# -*- coding: utf-8 -*-
"""The detect playbook under ansible-runner, the engine AWX/Tower uses, with an unreachable node."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import runner_stats


def closed_loopback_port():
    """A loopback port nothing listens on: ssh to it is refused at once (an unreachable node)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(text)


@pytest.mark.usefixtures('require_root_v1')
def test_runner_job_reports_every_host_and_sets_stats(ansible_env, collections_path, tmp_path):
    data = str(tmp_path / 'runner')
    report_dir = str(tmp_path / 'report')
    write(os.path.join(data, 'project', 'detect.yml'),
          '---\n- name: Detect\n  ansible.builtin.import_playbook: nodeops.memcg.detect\n')
    write(os.path.join(data, 'inventory', 'hosts'),
          'localhost ansible_connection=local ansible_python_interpreter=%s\n'
          'gone-node ansible_host=127.0.0.1 ansible_port=%d ansible_connection=ssh '
          'ansible_ssh_common_args="-o ConnectTimeout=5 -o StrictHostKeyChecking=no"\n'
          % (sys.executable, closed_loopback_port()))
    write(os.path.join(data, 'env', 'extravars'), json.dumps({
        'detect_report_dir': report_dir, 'detect_cpu_interval': 0.2}))
    write(os.path.join(data, 'env', 'envvars'), json.dumps({
        'ANSIBLE_COLLECTIONS_PATH': collections_path, 'ANSIBLE_HOST_KEY_CHECKING': 'False'}))

    subprocess.run(['ansible-runner', 'run', data, '-p', 'detect.yml', '--ident', 'detect1'],
                   env=ansible_env, stdout=subprocess.DEVNULL, timeout=600, check=False)

    artifacts = os.path.join(data, 'artifacts', 'detect1')
    with open(os.path.join(artifacts, 'status')) as status, open(os.path.join(artifacts, 'rc')) as rc:
        assert (status.read(), rc.read()) == ('successful', '0'), open(os.path.join(artifacts, 'stdout')).read()

    summary = runner_stats(artifacts)['artifact_data']['detect_summary']
    assert summary['hosts'] == 2 and summary['probed'] == 1 and summary['unreachable'] == 1

    with open(os.path.join(report_dir, 'detect.json')) as handle:
        report = json.load(handle)
    by_host = {node['host']: node for node in report['nodes']}
    assert by_host['gone-node']['status'] == 'unreachable'
    assert by_host['gone-node']['error']
    assert by_host['localhost']['status'] == 'probed'
    assert by_host['localhost']['verdict'] in ('ok', 'warn', 'critical')
    with open(os.path.join(report_dir, 'detect.md')) as handle:
        assert '| gone-node | unreachable |' in handle.read()
