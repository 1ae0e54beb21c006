# -*- coding: utf-8 -*-
"""memcg_probe against a memory.stat that never answers (a FIFO), through real ansible-playbook.

The fixture node's root memory.stat is a FIFO nobody writes: open() blocks forever, as a read
of a sick node's memory.stat does for minutes. One playbook probes it three ways: without a
task timeout, with a task `timeout:` longer than read_timeout, and with one shorter (Ansible
then gives up on the task and leaves the module process behind, so the module must end by
itself). Every module process runs from a remote tmp directory unique to the test, so the
processes left on the machine are found by pid: /proc/<pid>/cmdline naming that directory, and
the reader pids the results report.
It runs with ansible-core 2.19 on the controller's Python and with 2.16 on CentOS 7's
Python 2.7 and 3.6.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

import pytest

from conftest import run_playbook
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree

READ_TIMEOUT = 2.0
KILL_GRACE = 0.5
# Without the deadline the FIFO blocks forever; the bounds below only allow for a loaded machine
# (ansible-playbook alone takes 10-30 s to start when 2 cores are shared by many test runs).
LOADED_MACHINE_SLACK = 5
PLAYBOOK_SECONDS = 180
SHORT_TASK_TIMEOUT = 1  # shorter than READ_TIMEOUT: Ansible abandons the task, the module goes on

PLAYBOOK = '''
- hosts: all
  gather_facts: false
  tasks:
    - name: Probe without a task timeout
      nodeops.memcg.memcg_probe: %(args)s
      register: plain
    - name: Probe with a task timeout longer than read_timeout
      nodeops.memcg.memcg_probe: %(args)s
      timeout: 60
      register: bounded
    - name: Probe with a task timeout shorter than read_timeout
      nodeops.memcg.memcg_probe: %(args)s
      timeout: %(short)d
      register: abandoned
      ignore_errors: true
    - name: Keep the results
      ansible.builtin.copy:
        content: "{{ {'plain': plain, 'bounded': bounded, 'abandoned': abandoned} | to_json }}"
        dest: "%(out)s/{{ inventory_hostname }}.json"
        mode: "0600"
      delegate_to: localhost
'''


def module_processes(marker):
    """Pids whose command line names marker (the test's remote tmp directory)."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as handle:
                if marker.encode() in handle.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def alive_as_before(pid, marker):
    """True when pid still runs the module (not reused by an unrelated process)."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return marker.encode() in handle.read()
    except OSError:
        return False


def fifo_node(tmp_path):
    root = tree.build_node(tmp_path / 'node', memory_num_cgroups=100, kubelet=None)
    stat_file = os.path.join(root, 'sys/fs/cgroup/memory/memory.stat')
    os.unlink(stat_file)
    os.mkfifo(stat_file)
    return root


def probe_hostile(env, tmp_path, hosts):
    """Run the playbook for hosts {name: python}; return (results by host, remote tmp, seconds)."""
    root = fifo_node(tmp_path)
    remote_tmp = str(tmp_path / 'remote-tmp')
    out = tmp_path / 'out'
    out.mkdir()
    inventory = tmp_path / 'inventory.ini'
    inventory.write_text(''.join('%s ansible_connection=local ansible_python_interpreter=%s\n' % (name, python)
                                 for name, python in hosts.items()))
    playbook = tmp_path / 'probe.yml'
    args = json.dumps({'root': root, 'cpu_interval': 0, 'read_timeout': READ_TIMEOUT})
    playbook.write_text(PLAYBOOK % {'args': args, 'short': SHORT_TASK_TIMEOUT, 'out': str(out)})
    env = dict(env, ANSIBLE_REMOTE_TMP=remote_tmp, ANSIBLE_FORKS='5')
    start = time.monotonic()
    completed = run_playbook(env, str(playbook), str(inventory), {})
    elapsed = time.monotonic() - start
    assert completed.returncode == 0, completed.stdout
    results = {}
    for name in hosts:
        results[name] = json.loads((out / ('%s.json' % name)).read_text())
    return results, remote_tmp, elapsed, completed.stdout


def assert_no_process_left(results, remote_tmp):
    # The module of the abandoned task ends by itself once its read deadline passes.
    deadline = time.monotonic() + READ_TIMEOUT + KILL_GRACE + LOADED_MACHINE_SLACK
    while module_processes(remote_tmp) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert module_processes(remote_tmp) == []
    for result in results.values():
        for name in ('plain', 'bounded'):
            reader = result[name]['read_latency']['root']['reader']
            assert reader['reaped'] is True
            assert not alive_as_before(reader['pid'], remote_tmp)


def assert_timed_out_measurement(results):
    for host, result in results.items():
        for name in ('plain', 'bounded'):
            probe = result[name]
            assert not probe.get('failed'), (host, name, probe)
            root = probe['read_latency']['root']
            assert root['timed_out'] is True and root['timeout_s'] == READ_TIMEOUT, (host, name, root)
            assert READ_TIMEOUT * 1000 <= root['waited_ms'] < (READ_TIMEOUT + LOADED_MACHINE_SLACK) * 1000
            assert root['reads'] == 0 and root['max_ms'] == root['waited_ms']
            assert probe['read_latency']['kubepods'] is None
            assert probe['verdict'] == 'critical'  # el7 fixture kernel: reads scale with dying memcgs
            assert probe['reasons'][0].startswith('The root memory.stat read (/sys/fs/cgroup/memory/memory.stat) '
                                                  'did not finish within 2.0 s (read_timeout)')
        abandoned = result['abandoned']
        # 2.19: 'Task failed: Timed out after 1 second(s).'; 2.16: '... expected time frame (1) and was terminated'
        assert abandoned['failed'] is True, (host, abandoned)
        assert re.search(r'(?i)timed out|expected time frame', abandoned['msg']), (host, abandoned)


@pytest.mark.usefixtures('require_root_v1')
def test_fifo_probe_through_ansible_2_19(ansible_env, tmp_path):
    results, remote_tmp, elapsed, output = probe_hostile(ansible_env, tmp_path, {'node': sys.executable})
    assert_timed_out_measurement(results)
    assert elapsed < PLAYBOOK_SECONDS, output
    assert_no_process_left(results, remote_tmp)


@pytest.mark.usefixtures('require_root_v1')
def test_fifo_probe_on_centos7_pythons(ansible_216_env, node_pythons, tmp_path):
    results, remote_tmp, elapsed, output = probe_hostile(
        ansible_216_env, tmp_path, {'python27': node_pythons['2.7'], 'python36': node_pythons['3.6']})
    assert_timed_out_measurement(results)
    assert elapsed < PLAYBOOK_SECONDS, output
    assert_no_process_left(results, remote_tmp)
