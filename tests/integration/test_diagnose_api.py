# -*- coding: utf-8 -*-
"""The diagnose playbook's Kubernetes side through the real, pinned kubectl against the fake API:
which workloads create memory cgroups on the node (pods with owners and restarts, container Started
events of pods that are gone), kubelet's CPU profile through nodes/proxy, no write to the API, and
no listening socket opened by any process of the run (traced with strace)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from conftest import REPO_ROOT

pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'diagnose.yml')


def seed(kube):
    kube.add_node('n1')
    kube.add_node('n2')
    # A CronJob's Jobs: three pods still there, five more known only from their Started events.
    for minute in ('28900000', '28900010', '28900020'):
        pod = 'report-%s-%s' % (minute, 'ab' + minute[-3:])
        kube.add_pod(pod, 'n1', namespace='batch', owner='Job/report-' + minute, phase='Succeeded', ready=False,
                     age_seconds=600)
        kube.add_event(pod, 'n1', namespace='batch')
    for index in range(5):
        kube.add_event('report-2889990%d-gone%d' % (index, index), 'n1', namespace='batch')
    kube.add_event('report-28899900-gone0', 'n1', reason='Pulled', namespace='batch')  # not a start
    # A crash-looping Deployment pod, an old StatefulSet pod, and churn on another node.
    kube.add_pod('api-7d9f8b6c5d-x1y2z', 'n1', namespace='shop', owner='ReplicaSet/api-7d9f8b6c5d', restarts=7,
                 age_seconds=86400)
    kube.add_pod('db-0', 'n1', namespace='shop', owner='StatefulSet/db', age_seconds=864000)
    kube.add_pod('other-1-zzzzz', 'n2', namespace='batch', owner='Job/other-1', age_seconds=60)
    kube.add_event('other-1-zzzzz', 'n2', namespace='batch', count=40)


def test_sources_and_pprof_through_the_api_without_a_listener(
        ansible_env, fake_kube, kube_env, kubeconfig, kubectl_bin, tmp_path):
    seed(fake_kube)
    report_dir = tmp_path / 'report'
    inventory = tmp_path / 'inventory.ini'
    inventory.write_text('n1 ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
    env = dict(ansible_env)
    for key in ('KUBECONFIG', 'KUBECACHEDIR', 'NO_PROXY', 'no_proxy'):
        env[key] = kube_env[key]
    trace = tmp_path / 'strace.log'
    extra = {'diagnose_report_dir': str(report_dir), 'diagnose_kubelet_name': 'no-such-kubelet',
             'diagnose_method': 'proc', 'diagnose_duration': 1, 'diagnose_timeout': 7,
             'diagnose_kubernetes': True, 'diagnose_pprof_seconds': 1,
             'diagnose_kubectl': kubectl_bin, 'diagnose_kubeconfig': kubeconfig}
    # Every process of the run, kubectl included, is traced for listen(2).
    command = ['strace', '-f', '-qq', '-e', 'trace=listen', '-o', str(trace),
               'ansible-playbook', '-i', str(inventory), PLAYBOOK, '-e', json.dumps(extra)]
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stdout
    traced = trace.read_text()
    assert not re.search(r'\blisten\(', traced), traced

    node = json.loads((report_dir / 'diagnose-n1.json').read_text())
    kubernetes = node['kubernetes']
    assert kubernetes['queried'] and kubernetes['error'] is None, kubernetes
    first, second = kubernetes['sources'][:2]
    assert (first['namespace'], first['owner_kind'], first['owner_name']) == ('batch', 'CronJob', 'report'), first
    assert (first['pods'], first['job_pods'], first['recent_pods'], first['started_events'], first['score']) == \
        (3, 3, 3, 8, 8), first
    assert (second['namespace'], second['owner_kind'], second['owner_name'], second['restarts'], second['score']) == \
        ('shop', 'Deployment', 'api', 7, 7), second
    assert [ns['namespace'] for ns in kubernetes['namespaces']] == ['batch', 'shop']
    assert kubernetes['look_first'][0].startswith('batch CronJob/report: 8 container starts'), kubernetes['look_first']
    assert 'crash loop' in kubernetes['look_first'][1]
    assert not any(source['owner_name'] == 'other-1' for source in kubernetes['sources'])

    pprof = node['pprof']
    assert pprof['path'] == str(report_dir / 'kubelet-n1.pprof') and pprof['error'] is None, pprof
    assert (report_dir / 'kubelet-n1.pprof').read_bytes() == fake_kube.pprof_profile
    assert pprof['top'][0] == {'function': 'syscall.Syscall', 'flat': 80.0, 'cum': 80.0}
    assert pprof['memory_stat_share_percent'] == 80.0

    requests = [(r.method, r.path, r.query) for r in fake_kube.requests]
    assert any(request[1:] == ('/api/v1/nodes/n1/proxy/debug/pprof/profile', dict(request[2], seconds='1'))
               for request in requests), requests
    assert any(request[1] == '/api/v1/events' and request[2].get('fieldSelector') == 'involvedObject.kind=Pod,reason=Started'
               for request in requests), requests
    assert {request[0] for request in requests} == {'GET'}
    assert fake_kube.mutations == []  # read-only against the cluster

    markdown = (report_dir / 'diagnose-n1.md').read_text()
    assert 'Look first at:' in markdown and '| batch | CronJob/report | 3 | 3 | 0 | 3 | 8 | 8 |' in markdown
    assert '80.0% of kubelet\'s CPU under cAdvisor\'s memory stat readers' in markdown
    assert '| n1 | unknown |' in (report_dir / 'diagnose.md').read_text()
    assert 'batch CronJob/report' in (report_dir / 'diagnose.md').read_text()
