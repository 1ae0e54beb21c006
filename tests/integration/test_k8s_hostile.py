# -*- coding: utf-8 -*-
"""Hostile names given to k8s_node, k8s_node_info and k8s_cluster_lock through real ansible-playbook:
kubectl is never started for them.

The injected tasks run a kubectl wrapper that records each start in a file before it execs the
real, pinned kubectl; a last task with a valid name runs a second wrapper, to show that the
recording works. The `--server=` the injections point at is a socket of the test's own that
counts connections, and the fake API must record no change. (The unit tests try every injection
and option; this run takes one or two per module, each task costs an Ansible module start.)
"""

from __future__ import annotations

import json
import os
import socket
import stat

import pytest

from conftest import localhost_inventory, run_playbook

pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']


def wrapper(directory, name, real):
    """A kubectl that appends its argv to <name>.log, then runs the real one."""
    log = os.path.join(directory, name + '.log')
    path = os.path.join(directory, name)
    with open(path, 'w') as handle:
        handle.write('#!/bin/sh\nprintf "%%s\\n" "$*" >> "%s"\nexec "%s" "$@"\n' % (log, real))
    os.chmod(path, stat.S_IRWXU)
    return path, log


@pytest.fixture
def decoy():
    """A listening socket on loopback that an injected --server would reach."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(('127.0.0.1', 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def connections(server):
    count = 0
    while True:
        try:
            client, _address = server.accept()
        except BlockingIOError:
            return count
        client.close()
        count += 1


def test_kubectl_is_never_started_for_hostile_names(ansible_env, fake_kube, kube_env, kubeconfig, kubectl_bin,
                                                    decoy, tmp_path):
    fake_kube.add_node('n1')
    hostile, hostile_log = wrapper(str(tmp_path), 'kubectl-hostile', kubectl_bin)
    control, control_log = wrapper(str(tmp_path), 'kubectl-control', kubectl_bin)
    server = '--server=http://127.0.0.1:%d' % decoy.getsockname()[1]
    injected = [
        ('k8s_node', {'name': server, 'state': 'cordoned', 'run_id': 'run-1'}, 'name must be a DNS-1123 subdomain'),
        ('k8s_node', {'name': 'n1', 'state': 'cordoned', 'run_id': '--as=system:admin'},
         'run_id must be letters, digits'),
        ('k8s_node_info', {'names': ['n1', server]}, 'names[1] must be a DNS-1123 subdomain'),
        ('k8s_cluster_lock', {'holder': 'run-1', 'namespace': '--as=system:admin'},
         'namespace must be a DNS-1123 label'),
        ('k8s_cluster_lock', {'holder': 'run-1', 'ttl': 2147483648},
         'ttl must be between 1 and 2147483647 seconds, got 2147483648'),
    ]
    tasks = []
    for index, (module, args, _message) in enumerate(injected):
        args = dict(args, kubectl=hostile, kubeconfig=kubeconfig)
        tasks.append({'name': 'Injection %d' % index, 'nodeops.memcg.' + module: args,
                      'register': 'injection_%d' % index, 'ignore_errors': True})
    control_args = {'names': ['n1'], 'kubectl': control, 'kubeconfig': kubeconfig}
    tasks.append({'name': 'Control', 'nodeops.memcg.k8s_node_info': control_args, 'register': 'control'})
    out = tmp_path / 'results.json'
    keep = '{{ [%s] | to_json }}' % ', '.join('injection_%d' % index for index in range(len(injected)))
    tasks.append({'name': 'Keep the results', 'ansible.builtin.copy': {'content': keep, 'dest': str(out),
                                                                       'mode': '0600'}})
    playbook = tmp_path / 'hostile.yml'
    playbook.write_text(json.dumps([{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}]))
    env = dict(ansible_env, KUBECONFIG=kube_env['KUBECONFIG'], KUBECACHEDIR=kube_env['KUBECACHEDIR'])

    completed = run_playbook(env, str(playbook), localhost_inventory(str(tmp_path)), {})

    assert completed.returncode == 0, completed.stdout
    results = json.loads(out.read_text())
    for (module, args, message), result in zip(injected, results):
        assert result['failed'] is True and message in result['msg'], (module, args, result['msg'])
    assert not os.path.exists(hostile_log), open(hostile_log).read()  # never started
    assert os.path.getsize(control_log) > 0  # the recording works: the control started kubectl
    assert connections(decoy) == 0
    assert fake_kube.mutations == []
