# -*- coding: utf-8 -*-
"""k8s_node, k8s_node_info and k8s_cluster_lock through real `ansible` and the real, pinned kubectl,
against the fake Kubernetes API (tests/k8s_fake): what reaches the API is asserted on its records."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time

import pytest

from conftest import localhost_inventory

from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import nodes as k8s_nodes
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import times as k8s_times

pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']

RUN = 'upgrade-20240501T1000'
LOCK_PATH = '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases'


@pytest.fixture
def adhoc(ansible_env, kube_env, kubeconfig, kubectl_bin, tmp_path):
    """adhoc(module, args, *flags) -> (result, failed, output): one real `ansible localhost -m` run.

    The default callback prints `localhost | STATUS => {json}`; warnings and diffs go beside it, so
    `output` (stdout and stderr) is returned for those.
    """
    inventory = localhost_inventory(str(tmp_path))
    env = dict(ansible_env)
    for key in ('KUBECONFIG', 'KUBECACHEDIR', 'NO_PROXY', 'no_proxy'):
        env[key] = kube_env[key]

    def run(module, args, *flags):
        args = dict({'kubectl': kubectl_bin, 'kubeconfig': kubeconfig}, **args)
        command = ['ansible', 'localhost', '-i', inventory, '-m', 'nodeops.memcg.' + module,
                   '-a', json.dumps(args)] + list(flags)
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=300, check=False)
        found = re.search(r'^localhost \| (SUCCESS|CHANGED|FAILED!) => ', done.stdout, re.MULTILINE)
        if not found:
            raise AssertionError('ansible printed no result (rc %d):\n%s\n%s'
                                 % (done.returncode, done.stdout, done.stderr))
        result, _end = json.JSONDecoder().raw_decode(done.stdout[found.end():])
        failed = found.group(1) == 'FAILED!'
        assert (done.returncode != 0) == failed, done.stdout + done.stderr
        return result, failed, done.stdout + done.stderr
    return run


def writes(fake, since=0):
    """Mutating requests that were not dry runs, after the first `since`."""
    return [m for m in fake.mutations[since:] if not m.dry_run]


def annotations(fake, name):
    return fake.node(name)['metadata'].get('annotations') or {}


def unschedulable(fake, name):
    return bool(fake.node(name)['spec'].get('unschedulable'))


# ---------------------------------------------------------------- k8s_node


def test_cordon_annotates_then_uncordon_only_by_the_same_run(fake_kube, adhoc):
    fake_kube.add_node('n1')
    result, failed, output = adhoc('k8s_node', {'name': 'n1', 'state': 'cordoned', 'run_id': RUN}, '--check', '--diff')
    assert not failed, result.get('msg')
    assert result['changed'] is True and fake_kube.mutations == []
    assert '"nodeops.memcg/cordoned-by": "%s"' % RUN in output  # the diff

    result, failed, output = adhoc('k8s_node', {'name': 'n1', 'state': 'cordoned', 'run_id': RUN})
    assert not failed, result.get('msg')
    assert result['changed'] is True and result['cordoned_by'] == RUN and result['unschedulable'] is True
    assert unschedulable(fake_kube, 'n1') and annotations(fake_kube, 'n1')[k8s_nodes.CORDONED_BY] == RUN
    [cordon] = fake_kube.mutations
    assert (cordon.method, cordon.path, cordon.status) == ('PATCH', '/api/v1/nodes/n1', 200)
    assert cordon.content_type == 'application/merge-patch+json'
    assert cordon.body['spec'] == {'unschedulable': True} and cordon.body['metadata']['resourceVersion']

    result, failed, output = adhoc('k8s_node', {'name': 'n1', 'state': 'cordoned', 'run_id': RUN})
    assert not failed and result['changed'] is False and len(fake_kube.mutations) == 1

    # another run does not uncordon it
    result, failed, output = adhoc('k8s_node', {'name': 'n1', 'state': 'uncordoned', 'run_id': 'other-run'})
    assert not failed and result['changed'] is False and result['left_cordoned'] is True
    assert 'cordoned by run %s' % RUN in result['left_cordoned_reason']
    assert len(fake_kube.mutations) == 1 and unschedulable(fake_kube, 'n1')

    result, failed, output = adhoc('k8s_node', {'name': 'n1', 'state': 'uncordoned', 'run_id': RUN}, '--check')
    assert not failed and result['changed'] is True and len(fake_kube.mutations) == 1

    result, failed, output = adhoc('k8s_node', {'name': 'n1', 'state': 'uncordoned', 'run_id': RUN})
    assert not failed and result['changed'] is True and result['left_cordoned'] is False
    assert not unschedulable(fake_kube, 'n1') and k8s_nodes.CORDONED_BY not in annotations(fake_kube, 'n1')
    assert len(fake_kube.mutations) == 2

    result, failed, output = adhoc('k8s_node', {'name': 'n1', 'state': 'uncordoned', 'run_id': RUN})
    assert not failed and result['changed'] is False and len(fake_kube.mutations) == 2


def test_admin_cordoned_node_stays_cordoned(fake_kube, adhoc):
    fake_kube.add_node('n2', unschedulable=True)
    result, failed, output = adhoc('k8s_node', {'name': 'n2', 'state': 'drained', 'run_id': RUN, 'timeout': 30})
    assert not failed, result.get('msg')
    assert result['admin_cordoned'] is True and result['cordon_owner'] == 'admin' and result['changed'] is False
    result, failed, output = adhoc('k8s_node', {'name': 'n2', 'state': 'uncordoned', 'run_id': RUN})
    assert not failed
    assert result['left_cordoned'] is True and result['changed'] is False
    assert result['left_cordoned_reason'].startswith('cordoned by an admin')
    assert unschedulable(fake_kube, 'n2') and annotations(fake_kube, 'n2') == {}
    assert writes(fake_kube) == []  # kubectl drain's own cordon of an unschedulable node sends nothing


def test_failed_annotates_and_keeps_the_cordon(fake_kube, adhoc):
    fake_kube.add_node('n1', unschedulable=True, annotations={k8s_nodes.CORDONED_BY: RUN})
    reason = 'node not Ready 600 s after booting 5.4.274-1.el7.elrepo.x86_64'
    result, failed, output = adhoc('k8s_node', {'name': 'n1', 'state': 'failed', 'run_id': RUN, 'reason': reason})
    assert not failed and result['changed'] is True and result['unschedulable'] is True
    assert annotations(fake_kube, 'n1') == {k8s_nodes.CORDONED_BY: RUN, k8s_nodes.FAILURE: reason, k8s_nodes.FAILURE_RUN: RUN}
    assert unschedulable(fake_kube, 'n1')


def test_bad_input_fails_naming_the_option(fake_kube, adhoc):
    fake_kube.add_node('n1')
    result, failed, output = adhoc('k8s_node', {'name': 'n1', 'state': 'cordoned'})
    assert failed and result['msg'] == 'state is cordoned but all of the following are missing: run_id'
    result, failed, output = adhoc('k8s_node', {'name': 'n9', 'state': 'cordoned', 'run_id': RUN})
    assert failed and result['msg'].startswith('node n9 not found: Error from server (NotFound)')
    result, failed, output = adhoc('k8s_node', {'name': 'n1', 'state': 'cordoned', 'run_id': RUN, 'context': 'nope'})
    assert failed and result['msg'] == ('kubectl could not use its kubeconfig or context while accessing node n1: '
                                        'Error in configuration: context was not found for specified context: nope')
    assert fake_kube.mutations == []


def seed_workload(fake, blocked):
    fake.add_node('n1')
    fake.add_node('n2')
    fake.add_daemonset('node-exporter', namespace='monitoring', nodes=['n1', 'n2'])
    fake.add_pod('web-5d8f7', 'n1', namespace='shop', owner='ReplicaSet/web-5d8f', labels={'app': 'web'})
    fake.add_pod('api-7c9b4', 'n1', namespace='shop', owner='ReplicaSet/api-7c9b', labels={'app': 'api'})
    fake.add_pdb('web-pdb', namespace='shop', match_labels={'app': 'web'},
                 disruptions_allowed=0 if blocked else 1)


def test_drain_blocked_by_a_pdb_fails_naming_the_pod_and_the_budget(fake_kube, adhoc):
    seed_workload(fake_kube, blocked=True)
    started = time.monotonic()
    result, failed, output = adhoc('k8s_node', {'name': 'n1', 'state': 'drained', 'run_id': RUN, 'timeout': 12})
    assert failed
    assert time.monotonic() - started < 60
    assert result['msg'] == ('drain of node n1 failed (drain timeout 12s): shop/web-5d8f7: blocked by '
                             'PodDisruptionBudget web-pdb. The node stays cordoned (nodeops.memcg/cordoned-by=%s).'
                             % RUN)
    assert result['blocking'] == [{'namespace': 'shop', 'pod': 'web-5d8f7', 'reason': 'pdb', 'pdbs': ['web-pdb'],
                                   'message': "Cannot evict pod as it would violate the pod's disruption budget."}]
    assert result['evicted'] == ['shop/api-7c9b4']
    assert [p.split('/')[0] for p in result['ignored_daemonset_pods']] == ['monitoring']
    assert unschedulable(fake_kube, 'n1') and annotations(fake_kube, 'n1') == {k8s_nodes.CORDONED_BY: RUN}
    evictions = [(m.path.split('/')[-2], m.status) for m in writes(fake_kube) if m.path.endswith('/eviction')]
    assert ('web-5d8f7', 429) in evictions and ('api-7c9b4', 201) in evictions
    assert not any(m.method == 'DELETE' for m in fake_kube.mutations), 'a pod was deleted, not evicted'
    assert fake_kube.pod('web-5d8f7', 'shop') is not None


def test_drain_check_mode_makes_no_write(fake_kube, adhoc):
    seed_workload(fake_kube, blocked=False)
    result, failed, output = adhoc('k8s_node', {'name': 'n1', 'state': 'drained', 'run_id': RUN, 'timeout': 30}, '--check')
    assert not failed, result.get('msg')
    assert result['changed'] is True and result['dry_run'] is True
    assert result['evicted'] == ['shop/api-7c9b4', 'shop/web-5d8f7']
    assert writes(fake_kube) == []
    assert all(m.dry_run for m in fake_kube.mutations) and fake_kube.mutations  # kubectl's dryRun=All requests
    assert not unschedulable(fake_kube, 'n1') and annotations(fake_kube, 'n1') == {}
    assert {p['metadata']['name'] for p in fake_kube.pods(node='n1')} >= {'web-5d8f7', 'api-7c9b4'}


def test_drain_evicts_and_a_rerun_changes_nothing(fake_kube, adhoc):
    seed_workload(fake_kube, blocked=False)
    result, failed, output = adhoc('k8s_node', {'name': 'n1', 'state': 'drained', 'run_id': RUN, 'timeout': 60})
    assert not failed, result.get('msg')
    assert result['changed'] is True and result['evicted'] == ['shop/api-7c9b4', 'shop/web-5d8f7']
    left = sorted(p['metadata']['name'] for p in fake_kube.pods(node='n1'))
    assert len(left) == 1 and left[0].startswith('node-exporter-')
    result, failed, output = adhoc('k8s_node', {'name': 'n1', 'state': 'drained', 'run_id': RUN, 'timeout': 60})
    assert not failed and result['changed'] is False and result['evicted'] == []
    assert fake_kube.max_unschedulable_seen == 1


# ---------------------------------------------------------------- k8s_node_info


def test_node_info_reports_and_waits(fake_kube, adhoc):
    fake_kube.add_node('cp-1', control_plane=True)
    fake_kube.add_node('n1', kernel='5.4.274-1.el7.elrepo.x86_64', unschedulable=True,
                       annotations={k8s_nodes.CORDONED_BY: RUN})
    fake_kube.add_node('n2', ready=False)
    fake_kube.add_pod('web-5d8f7', 'n1', namespace='shop', owner='ReplicaSet/web-5d8f')
    result, failed, output = adhoc('k8s_node_info', {'names': ['n1', 'n2', 'cp-1', 'n9'], 'include_pods': True}, '--check')
    assert not failed, result.get('msg')
    assert [n['name'] for n in result['nodes']] == ['cp-1', 'n1', 'n2']
    assert result['missing'] == ['n9'] and result['not_ready'] == ['n2'] and result['unschedulable'] == ['n1']
    assert result['control_plane'] == ['cp-1']
    n1 = result['nodes'][1]
    assert n1['kernel_version'] == '5.4.274-1.el7.elrepo.x86_64' and n1['cordoned_by'] == RUN
    assert [(p['namespace'], p['name'], p['owner_kind']) for p in n1['pods']] == [('shop', 'web-5d8f7', 'ReplicaSet')]

    # n2 turns Ready only after the wait has seen it NotReady (its first node read), however slowly
    # the module starts on a loaded machine
    seen = len(fake_kube.requests)
    done = threading.Event()

    def ready_after_first_poll():
        while not done.is_set():
            if any(r.path.startswith('/api/v1/nodes') for r in fake_kube.requests[seen:]):
                done.wait(1)
                fake_kube.set_node_ready('n2', True)
                return
            done.wait(0.1)

    kubelet = threading.Thread(target=ready_after_first_poll, daemon=True)
    kubelet.start()
    try:
        result, failed, output = adhoc('k8s_node_info', {'names': ['n2'], 'wait_for': 'ready', 'timeout': 60})
    finally:
        done.set()
        kubelet.join()
    assert not failed, result.get('msg')
    assert result['wait']['met'] is True and result['wait']['polls'] >= 2 and result['not_ready'] == []

    fake_kube.set_node_never_ready('n2')
    result, failed, output = adhoc('k8s_node_info', {'names': ['n2'], 'wait_for': 'daemonsets_ready', 'timeout': 4})
    assert failed
    assert result['msg'] == ('timed out after 4s waiting for daemonsets_ready on 1 node(s): node n2: its Ready '
                             'condition is False')
    assert fake_kube.mutations == []


def test_kubectl_wait_against_the_api(fake_kube, kubeconfig, kubectl_bin, kube_env):
    fake_kube.add_node('n1', ready=False)

    def run(argv, data=None):
        done = subprocess.run(argv, input=data, env=kube_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=60, check=False)
        return done.returncode, done.stdout, done.stderr
    kube = k8s_client.Kubectl(run, binary=kubectl_bin, kubeconfig=kubeconfig, request_timeout=30)
    with pytest.raises(k8s_client.WaitTimeoutError, match='node n1 did not reach condition=Ready within 2s'):
        kube.wait('node', 'n1', 'condition=Ready', 2)
    threading.Timer(1, fake_kube.set_node_ready, args=('n1', True)).start()
    kube.wait('node', 'n1', 'condition=Ready', 30)


# ---------------------------------------------------------------- k8s_cluster_lock


def test_lock_acquire_refuse_release(fake_kube, adhoc):
    result, failed, output = adhoc('k8s_cluster_lock', {'holder': 'run-a', 'ttl': 600})
    assert not failed, result.get('msg')
    assert result['acquired'] is True and result['decision'] == 'create' and result['lease']['holder'] == 'run-a'
    lease = fake_kube.get('leases', 'nodeops-memcg-kernel-upgrade', 'kube-system')
    assert lease['spec']['holderIdentity'] == 'run-a' and lease['spec']['leaseDurationSeconds'] == 600
    [create] = fake_kube.mutations
    assert (create.method, create.path, create.status) == ('POST', LOCK_PATH, 201)

    for flags in (('--check',), ()):
        result, failed, output = adhoc('k8s_cluster_lock', {'holder': 'run-b'}, *flags)
        assert failed
        assert result['msg'].startswith('lock kube-system/nodeops-memcg-kernel-upgrade is held by run-a (renewed ')
        assert result['held_by'] == 'run-a'
    assert len(fake_kube.mutations) == 1

    result, failed, output = adhoc('k8s_cluster_lock', {'holder': 'run-b', 'state': 'released'})
    assert not failed and result['changed'] is False and result['decision'] == 'held_by_other'
    assert 'held by run-a, not by run-b: left alone' in output  # the warning
    assert len(fake_kube.mutations) == 1

    result, failed, output = adhoc('k8s_cluster_lock', {'holder': 'run-a', 'ttl': 600})
    assert not failed and result['decision'] == 'renew'
    assert fake_kube.mutations[-1].method == 'PUT' and fake_kube.mutations[-1].status == 200

    result, failed, output = adhoc('k8s_cluster_lock', {'holder': 'run-a', 'state': 'released'})
    assert not failed and result['released'] is True and result['lease']['holder'] is None
    assert 'holderIdentity' not in fake_kube.get('leases', 'nodeops-memcg-kernel-upgrade', 'kube-system')['spec']

    result, failed, output = adhoc('k8s_cluster_lock', {'holder': 'run-b'})
    assert not failed and result['acquired'] is True and result['decision'] == 'take_over_expired'
    assert result['lease']['transitions'] == 1


def test_expired_lock_is_taken_over(fake_kube, adhoc, kubectl, tmp_path):
    two_hours_ago = k8s_times.format_time(time.time() - 7200)
    manifest = tmp_path / 'lease.json'
    manifest.write_text(json.dumps({
        'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
        'metadata': {'name': 'upgrade-lock', 'namespace': 'kube-system'},
        'spec': {'holderIdentity': 'crashed-run', 'leaseDurationSeconds': 3600, 'acquireTime': two_hours_ago,
                 'renewTime': two_hours_ago, 'leaseTransitions': 4}}))
    created = kubectl('create', '-f', str(manifest))
    assert created.returncode == 0, created.stderr
    before = len(fake_kube.mutations)
    result, failed, output = adhoc('k8s_cluster_lock', {'holder': 'run-c', 'name': 'upgrade-lock'}, '--check')
    assert not failed and result['would_acquire'] is True and result['decision'] == 'take_over_expired'
    assert result['held_by'] == 'crashed-run' and len(fake_kube.mutations) == before
    result, failed, output = adhoc('k8s_cluster_lock', {'holder': 'run-c', 'name': 'upgrade-lock'})
    assert not failed, result.get('msg')
    assert result['acquired'] is True and result['lease']['transitions'] == 5
    put = fake_kube.mutations[-1]
    assert (put.method, put.status) == ('PUT', 200) and put.body['metadata']['resourceVersion']
    assert fake_kube.get('leases', 'upgrade-lock', 'kube-system')['spec']['holderIdentity'] == 'run-c'
