# -*- coding: utf-8 -*-
"""The fake Kubernetes API (tests/k8s_fake) driven by the real, pinned kubectl: it must answer and fail as a real API does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PDB_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."


def ok(result):
    assert result.returncode == 0, 'kubectl failed (%d):\n%s\n%s' % (result.returncode, result.stdout, result.stderr)
    return result


def kube_json(kubectl, *args):
    return json.loads(ok(kubectl(*(args + ('-o', 'json')))).stdout)


def admin(fake, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(fake.url + path, data=data, method=method,
                                     headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def three_nodes(fake):
    fake.add_node('cp1', control_plane=True)
    fake.add_node('n1')
    fake.add_node('n2')


def test_pinned_kubectl_is_the_venv_one(kubectl_bin, kubectl_version):
    assert os.path.realpath(kubectl_bin) != '/usr/bin/kubectl'
    assert os.path.dirname(kubectl_bin) == os.path.dirname(sys.executable)
    assert kubectl_version.startswith('v1.')


def test_get_nodes_json(fake_kube, kubectl):
    three_nodes(fake_kube)
    fake_kube.set_node_ready('n2', False)
    nodes = kube_json(kubectl, 'get', 'nodes')
    assert nodes['kind'] == 'List'  # kubectl's own wrapper; the server's list is a NodeList:
    raw = json.loads(ok(kubectl('get', '--raw', '/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse')).stdout)
    assert raw['kind'] == 'NodeList' and int(raw['metadata']['resourceVersion']) > 1000 and len(raw['items']) == 3
    assert all(item['kind'] == 'Node' and item['apiVersion'] == 'v1' for item in raw['items'])
    by_name = {n['metadata']['name']: n for n in nodes['items']}
    assert sorted(by_name) == ['cp1', 'n1', 'n2']
    assert 'node-role.kubernetes.io/control-plane' in by_name['cp1']['metadata']['labels']
    assert by_name['n1']['status']['nodeInfo']['kernelVersion'] == '3.10.0-1160.el7.x86_64'
    ready = {name: [c['status'] for c in n['status']['conditions'] if c['type'] == 'Ready'][0]
             for name, n in by_name.items()}
    assert ready == {'cp1': 'True', 'n1': 'True', 'n2': 'False'}
    assert fake_kube.mutations == []
    one = kube_json(kubectl, 'get', 'nodes', '-l', 'node-role.kubernetes.io/control-plane')
    assert [n['metadata']['name'] for n in one['items']] == ['cp1']


def test_cordon_uncordon(fake_kube, kubectl):
    three_nodes(fake_kube)
    assert 'node/n1 cordoned' in ok(kubectl('cordon', 'n1')).stdout
    node = fake_kube.node('n1')
    assert node['spec']['unschedulable'] is True
    assert {'key': 'node.kubernetes.io/unschedulable', 'effect': 'NoSchedule'}.items() <= node['spec']['taints'][0].items()
    patch = fake_kube.mutations[-1]
    assert (patch.method, patch.path, patch.body, patch.status) == ('PATCH', '/api/v1/nodes/n1',
                                                                    {'spec': {'unschedulable': True}}, 200)
    assert patch.content_type == 'application/strategic-merge-patch+json'
    ok(kubectl('cordon', 'n2'))
    assert fake_kube.max_unschedulable_seen == 2
    ok(kubectl('uncordon', 'n1'))
    ok(kubectl('uncordon', 'n2'))
    assert not fake_kube.node('n1')['spec'].get('unschedulable')
    assert 'taints' not in fake_kube.node('n1')['spec']
    assert fake_kube.mutations[-1].body == {'spec': {'unschedulable': None}}
    assert fake_kube.max_unschedulable_seen == 2


def test_annotate_and_unannotate(fake_kube, kubectl):
    three_nodes(fake_kube)
    ok(kubectl('annotate', 'node', 'n1', 'nodeops.io/cordoned-by=run-42'))
    assert fake_kube.node('n1')['metadata']['annotations']['nodeops.io/cordoned-by'] == 'run-42'
    ok(kubectl('label', 'node', 'n1', 'nodeops.io/kernel-upgrade=pending'))
    assert fake_kube.node('n1')['metadata']['labels']['nodeops.io/kernel-upgrade'] == 'pending'
    ok(kubectl('annotate', 'node', 'n1', 'nodeops.io/cordoned-by-'))
    assert 'nodeops.io/cordoned-by' not in fake_kube.node('n1')['metadata'].get('annotations', {})
    last = fake_kube.mutations[-1]
    assert last.body == {'metadata': {'annotations': {'nodeops.io/cordoned-by': None}}}
    assert last.content_type == 'application/merge-patch+json'


def test_drain_evicts_and_ignores_daemonset_pods(fake_kube, kubectl):
    three_nodes(fake_kube)
    fake_kube.add_daemonset('node-exporter', nodes=['n1', 'n2'])
    fake_kube.add_pod('web-7d9f-abcde', 'n1', owner='ReplicaSet/web-7d9f', labels={'app': 'web'}, empty_dir=True)
    result = ok(kubectl('drain', 'n1', '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=30s'))
    assert 'pod/web-7d9f-abcde evicted' in result.stdout and 'node/n1 drained' in result.stdout
    evictions = [m for m in fake_kube.mutations if m.path.endswith('/eviction')]
    assert [(m.method, m.path, m.status) for m in evictions] == [
        ('POST', '/api/v1/namespaces/default/pods/web-7d9f-abcde/eviction', 201)]
    assert evictions[0].body['apiVersion'] == 'policy/v1' and evictions[0].body['kind'] == 'Eviction'
    assert fake_kube.pod('web-7d9f-abcde') is None
    on_n1 = [p['metadata']['name'] for p in fake_kube.pods(node='n1')]
    assert len(on_n1) == 1 and on_n1[0].startswith('node-exporter-')
    assert fake_kube.node('n1')['spec']['unschedulable'] is True
    # the ReplicaSet's replacement comes up elsewhere: n2 (cp1 has the control-plane taint, n1 is cordoned)
    assert wait_until(lambda: any(p['metadata']['name'].startswith('web-7d9f-') for p in fake_kube.pods(node='n2')))


def test_drain_blocked_by_pdb_times_out(fake_kube, kubectl):
    three_nodes(fake_kube)
    fake_kube.add_pod('db-0', 'n1', owner='StatefulSet/db', labels={'app': 'db'})
    fake_kube.add_pdb('db', match_labels={'app': 'db'}, disruptions_allowed=0)
    started = time.monotonic()
    result = kubectl('drain', 'n1', '--ignore-daemonsets', '--timeout=12s')
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert PDB_MESSAGE in result.stderr
    assert 'error when evicting pods/"db-0" -n "default": global timeout reached: 12s' in result.stderr
    assert 12 <= elapsed < 30
    refused = [m for m in fake_kube.mutations if m.path.endswith('/pods/db-0/eviction')]
    assert len(refused) >= 2 and {m.status for m in refused} == {429}
    assert fake_kube.node('n1')['spec']['unschedulable'] is True  # kubectl leaves it cordoned
    assert fake_kube.pod('db-0') is not None


def test_pdb_refusal_is_a_429_status_with_a_disruption_budget_cause(fake_kube, kubectl, tmp_path):
    three_nodes(fake_kube)
    fake_kube.add_pod('db-0', 'n1', owner='StatefulSet/db', labels={'app': 'db'})
    fake_kube.add_pdb('db', match_labels={'app': 'db'}, min_available=1)
    eviction = json.dumps({'apiVersion': 'policy/v1', 'kind': 'Eviction', 'metadata': {'name': 'db-0'}})
    (tmp_path / 'eviction.json').write_text(eviction)
    result = kubectl('create', '--raw', '/api/v1/namespaces/default/pods/db-0/eviction', '-f',
                     str(tmp_path / 'eviction.json'))
    assert result.returncode != 0
    assert 'Error from server (TooManyRequests): ' + PDB_MESSAGE in result.stderr
    request = urllib.request.Request(fake_kube.url + '/api/v1/namespaces/default/pods/db-0/eviction',
                                     data=eviction.encode(), method='POST', headers={'Content-Type': 'application/json'})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    status = json.loads(refused.value.read())
    assert refused.value.code == 429 and status['code'] == 429
    assert status['reason'] == 'TooManyRequests' and status['message'] == PDB_MESSAGE
    assert status['details']['causes'] == [{'reason': 'DisruptionBudget', 'message':
                                            'The disruption budget db needs 1 healthy pods and has 1 currently'}]
    assert fake_kube.pod('db-0') is not None


def test_drain_refuses_bare_pod_without_force(fake_kube, kubectl):
    three_nodes(fake_kube)
    fake_kube.add_pod('debug', 'n1')
    result = kubectl('drain', 'n1', '--ignore-daemonsets', '--timeout=10s')
    assert result.returncode != 0
    assert 'cannot delete Pods that declare no controller (use --force to override): default/debug' in result.stderr
    assert not [m for m in fake_kube.mutations if 'pods' in m.path]
    ok(kubectl('drain', 'n1', '--ignore-daemonsets', '--force', '--timeout=10s'))
    assert fake_kube.pod('debug') is None


def test_drain_server_dry_run_mutates_nothing(fake_kube, kubectl):
    three_nodes(fake_kube)
    fake_kube.add_pod('web-1', 'n1', owner='ReplicaSet/web-1', labels={'app': 'web'})
    fake_kube.add_pdb('web', match_labels={'app': 'web'}, max_unavailable=1)
    before = fake_kube.store.resource_version
    result = ok(kubectl('drain', 'n1', '--ignore-daemonsets', '--dry-run=server'))
    assert 'node/n1 drained (server dry run)' in result.stdout
    assert fake_kube.mutations and all(m.dry_run for m in fake_kube.mutations)
    assert {m.method for m in fake_kube.mutations} == {'PATCH', 'POST'}
    assert fake_kube.store.resource_version == before
    assert not fake_kube.node('n1')['spec'].get('unschedulable')
    assert fake_kube.pod('web-1') is not None and fake_kube.max_unschedulable_seen == 0


def test_drain_disable_eviction_deletes(fake_kube, kubectl):
    three_nodes(fake_kube)
    fake_kube.add_pod('web-1', 'n1', owner='ReplicaSet/web-1', grace_seconds=1)
    ok(kubectl('drain', 'n1', '--ignore-daemonsets', '--disable-eviction', '--timeout=30s'))
    deletes = [m for m in fake_kube.mutations if m.method == 'DELETE']
    assert [m.path for m in deletes] == ['/api/v1/namespaces/default/pods/web-1']
    assert deletes[0].content_type == 'application/vnd.kubernetes.protobuf'
    assert deletes[0].body['kind'] == 'DeleteOptions'  # decoded from protobuf, not parsed as JSON
    assert not [m for m in fake_kube.mutations if m.path.endswith('/eviction')]
    assert fake_kube.pod('web-1') is None


def test_wait_ready_succeeds_when_the_node_comes_back(fake_kube, kubectl_bin, kube_env):
    three_nodes(fake_kube)
    fake_kube.set_node_ready('n1', False)
    started = time.monotonic()
    with subprocess.Popen([kubectl_bin, 'wait', '--for=condition=Ready', 'node/n1', '--timeout=30s'], env=kube_env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert wait_until(lambda: any(r.query.get('watch') == 'true' for r in fake_kube.requests), 15)
            time.sleep(0.3)
            node = admin(fake_kube, 'POST', '/_fake/nodes/n1/ready', {'ready': True, 'kernelVersion': '5.14.0-1'})
            assert node['ready'] is True and node['kernelVersion'] == '5.14.0-1'
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert 'node/n1 condition met' in out
    assert time.monotonic() - started < 20


def test_wait_times_out_when_the_node_never_becomes_ready(fake_kube, kubectl):
    three_nodes(fake_kube)
    fake_kube.set_node_never_ready('n1')
    admin(fake_kube, 'POST', '/_fake/nodes/n1/ready', {'ready': True, 'kernelVersion': '5.14.0-1'})
    node = fake_kube.node('n1')
    assert node['status']['nodeInfo']['kernelVersion'] == '5.14.0-1'
    result = kubectl('wait', '--for=condition=Ready', 'node/n1', '--timeout=3s')
    assert result.returncode != 0
    assert 'timed out waiting for the condition on nodes/n1' in result.stderr


def test_lease_lock_optimistic_concurrency(fake_kube, kubectl, tmp_path):
    lease = {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
             'metadata': {'name': 'kernel-upgrade', 'namespace': 'kube-system'},
             'spec': {'holderIdentity': 'run-1', 'leaseDurationSeconds': 900}}
    path = tmp_path / 'lease.json'
    path.write_text(json.dumps(lease))
    created = json.loads(ok(kubectl('create', '-f', str(path), '-o', 'json')).stdout)
    first_rv = created['metadata']['resourceVersion']
    again = kubectl('create', '-f', str(path))
    assert again.returncode != 0 and 'AlreadyExists' in again.stderr and 'already exists' in again.stderr

    lease['metadata']['resourceVersion'] = first_rv
    lease['spec']['holderIdentity'] = 'run-2'
    path.write_text(json.dumps(lease))
    replaced = json.loads(ok(kubectl('replace', '-f', str(path), '-o', 'json')).stdout)
    assert int(replaced['metadata']['resourceVersion']) > int(first_rv)
    assert fake_kube.get('leases', 'kernel-upgrade', 'kube-system')['spec']['holderIdentity'] == 'run-2'

    lease['spec']['holderIdentity'] = 'run-3'  # still first_rv: stale now
    path.write_text(json.dumps(lease))
    stale = kubectl('replace', '-f', str(path))
    assert stale.returncode != 0
    assert 'Error from server (Conflict)' in stale.stderr
    assert 'Operation cannot be fulfilled on leases.coordination.k8s.io "kernel-upgrade": the object has been ' \
           'modified' in stale.stderr
    assert fake_kube.mutations[-1].status == 409
    assert fake_kube.get('leases', 'kernel-upgrade', 'kube-system')['spec']['holderIdentity'] == 'run-2'

    typo = dict(lease, spec={'holder': 'run-4'})
    path.write_text(json.dumps(typo))
    strict = kubectl('replace', '-f', str(path))
    assert strict.returncode != 0
    assert 'Lease in version "v1" cannot be handled as a Lease: strict decoding error: unknown field "spec.holder"' \
        in strict.stderr

    ok(kubectl('delete', 'lease', 'kernel-upgrade', '-n', 'kube-system'))
    missing = kubectl('get', 'lease', 'kernel-upgrade', '-n', 'kube-system')
    assert missing.returncode != 0 and 'Error from server (NotFound)' in missing.stderr


def test_admin_endpoints_and_server_going_away(fake_kube, kubectl):
    three_nodes(fake_kube)
    ok(kubectl('cordon', 'n1'))
    admin(fake_kube, 'POST', '/_fake/nodes/n1/ready', {'ready': False})
    assert kube_json(kubectl, 'get', 'node', 'n1')['spec']['taints'][-1]['key'] == 'node.kubernetes.io/not-ready'
    admin(fake_kube, 'POST', '/_fake/nodes/n1/ready', {'ready': True, 'kernelVersion': '5.14.0-427.el9.x86_64'})
    state = admin(fake_kube, 'GET', '/_fake/state')
    node = [n for n in state['nodes'] if n['name'] == 'n1'][0]
    assert node['ready'] and node['unschedulable'] and node['kernelVersion'] == '5.14.0-427.el9.x86_64'
    assert state['max_unschedulable_seen'] == 1
    mutations = admin(fake_kube, 'GET', '/_fake/mutations')
    assert [(m['method'], m['path']) for m in mutations] == [('PATCH', '/api/v1/nodes/n1')]

    fake_kube.delay = 1.0
    started = time.monotonic()
    ok(kubectl('get', 'node', 'n1', '-o', 'name'))
    assert time.monotonic() - started >= 1.0
    fake_kube.delay = 0
    fake_kube.hang(r'^/api/v1/nodes')
    hung = kubectl('get', 'nodes', '-o', 'json', '--request-timeout=2s')
    # the Go client words it either way, depending on where the deadline hits
    assert hung.returncode != 0 and ('context deadline exceeded' in hung.stderr
                                     or 'Client.Timeout exceeded while awaiting headers' in hung.stderr), hung.stderr
    fake_kube.unhang()

    fake_kube.stop()
    gone = kubectl('get', 'nodes', '-o', 'json', '--request-timeout=5s')
    assert gone.returncode != 0 and 'The connection to the server 127.0.0.1:%d was refused' % fake_kube.port in gone.stderr
    fake_kube.restart()
    assert [n['metadata']['name'] for n in kube_json(kubectl, 'get', 'nodes')['items']] == ['cp1', 'n1', 'n2']


def raw_get(fake, path, accept):
    request = urllib.request.Request(fake.url + path, headers={'Accept': accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers['Content-Type'], json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers['Content-Type'], json.loads(error.read())


@pytest.mark.parametrize('accept, content_type, kind', [
    ('application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json',
     'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList', 'APIGroupDiscoveryList'),
    # kubectl 1.26-1.29 know only v2beta1
    ('application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json',
     'application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList', 'APIGroupDiscoveryList'),
    ('application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json;q=0.9',
     'application/json', 'APIVersions'),
    ('', 'application/json', 'APIVersions'),
    ('application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList', 'application/json',
     'Status'),
])
def test_discovery_follows_the_accept_list(fake_kube, accept, content_type, kind):
    status, got_type, body = raw_get(fake_kube, '/api', accept)
    assert (got_type, body['kind']) == (content_type, kind)
    assert status == (406 if kind == 'Status' else 200)
    if kind == 'APIGroupDiscoveryList':
        pods = [r for r in body['items'][0]['versions'][0]['resources'] if r['resource'] == 'pods'][0]
        assert {'subresource': 'eviction', 'responseKind': {'group': 'policy', 'version': 'v1', 'kind': 'Eviction'},
                'verbs': ['create']} in pods['subresources']
    _status, _type, resources = raw_get(fake_kube, '/api/v1', 'application/json, */*')
    eviction = [r for r in resources['resources'] if r['name'] == 'pods/eviction'][0]
    assert (eviction['group'], eviction['version'], eviction['kind']) == ('policy', 'v1', 'Eviction')


@pytest.mark.parametrize('entry', [['-m', 'tests.k8s_fake'], ['tests/k8s_fake/server.py']])
def test_cli_serves_a_seed_until_killed(entry, kubectl_bin, tmp_path):
    seed = {'nodes': [{'name': 'n1', 'kernel': '4.18.0-553.el8_10.x86_64'}, {'name': 'cp1', 'control_plane': True}],
            'pods': [{'name': 'web-1', 'node': 'n1', 'owner': 'ReplicaSet/web'}],
            'pdbs': [{'name': 'web', 'match_labels': {'app': 'web'}, 'disruptions_allowed': 0}]}
    (tmp_path / 'seed.json').write_text(json.dumps(seed))
    kubeconfig = str(tmp_path / 'kubeconfig')
    command = [sys.executable] + entry + ['--port', '0', '--state', str(tmp_path / 'seed.json'),
                                          '--kubeconfig', kubeconfig]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            url = proc.stdout.readline().strip()
            assert url.startswith('http://127.0.0.1:'), proc.stderr.read() if proc.poll() is not None else url
            env = dict(os.environ, KUBECONFIG=kubeconfig, KUBECACHEDIR=str(tmp_path / 'cache'))
            nodes = subprocess.run([kubectl_bin, 'get', 'nodes', '-o', 'json'], env=env, stdout=subprocess.PIPE,
                                   text=True, timeout=60, check=True)
            kernels = {n['metadata']['name']: n['status']['nodeInfo']['kernelVersion']
                       for n in json.loads(nodes.stdout)['items']}
            assert kernels['n1'] == '4.18.0-553.el8_10.x86_64'
            with urllib.request.urlopen(url + '/_fake/state', timeout=10) as response:
                state = json.loads(response.read())
            assert state['objects']['poddisruptionbudgets'][0]['status']['disruptionsAllowed'] == 0
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    assert proc.returncode == 0
