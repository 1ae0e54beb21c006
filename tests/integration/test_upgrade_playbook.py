# -*- coding: utf-8 -*-
"""playbooks/upgrade.yml against the fake Kubernetes API with real kubectl: the API side of the rollout.

Every node is this machine over the local connection; the node procedure is
tasks/fake_node_procedure.yml, which takes the node NotReady and back in the API the way a reboot
does. What reached the API is asserted on the fake's records.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from conftest import REPO_ROOT, run_playbook

pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'upgrade.yml')
PROCEDURE = os.path.join(REPO_ROOT, 'tests', 'integration', 'tasks', 'fake_node_procedure.yml')
OLD = '3.10.0-1160.el7.x86_64'
NEW = '5.4.225-1.el7.elrepo.x86_64'
CORDONED_BY = 'nodeops.memcg/cordoned-by'
FAILURE = 'nodeops.memcg/failure'
LEASES = '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases'
QUIET_THRESHOLDS = {'warn_dying': 10 ** 6, 'warn_dying_ratio_min': 10 ** 6, 'critical_dying': 2 * 10 ** 6,
                    'warn_read_ms': 10 ** 5, 'critical_read_ms': 2 * 10 ** 5, 'warn_kubelet_system_percent': 100}


def cluster(fake, nodes, kernel=OLD):
    for name in nodes:
        fake.add_node(name, kernel=kernel)
        fake.add_pod('web-' + name, name, owner='ReplicaSet/web', labels={'app': 'web'})
    fake.add_daemonset('node-exporter', nodes=list(nodes))


def inventory(tmp_path, nodes):
    path = tmp_path / 'hosts.ini'
    path.write_text('localhost ansible_connection=local ansible_python_interpreter=%s\n[workers]\n%s\n'
                    '[workers:vars]\nansible_connection=local\nansible_python_interpreter=%s\n'
                    % (sys.executable, '\n'.join(nodes), sys.executable))
    return str(path)


def upgrade(ansible_env, kube_env, fake, kubeconfig, kubectl_bin, tmp_path, nodes, *flags, **extra):
    env = dict(ansible_env, **{key: kube_env[key] for key in ('KUBECONFIG', 'KUBECACHEDIR', 'NO_PROXY', 'no_proxy')
                               if key in kube_env})
    variables = {
        'kernel_upgrade_hosts': 'workers', 'kernel_upgrade_kubectl': kubectl_bin,
        'kernel_upgrade_kubeconfig': kubeconfig, 'kernel_upgrade_release_source': 'api',
        'kernel_upgrade_node_procedure': PROCEDURE, 'kernel_upgrade_kubelet_service': '',
        'kernel_upgrade_ready_timeout': 10, 'kernel_upgrade_daemonsets_timeout': 10,
        'kernel_upgrade_drain_timeout': 12, 'kernel_upgrade_report_dir': str(tmp_path / 'report'),
        'fake_kube_url': fake.url, 'fake_target_release': NEW, 'fake_boot_dir': str(tmp_path / 'boot'),
        # every node is this shared machine, where other tests make dying memcgs: the gate's probe must not see them
        'kernel_upgrade_thresholds': QUIET_THRESHOLDS,
    }
    variables.update(extra)
    os.makedirs(variables['fake_boot_dir'], exist_ok=True)
    return run_playbook(env, PLAYBOOK, inventory(tmp_path, nodes), variables, *flags)


def report(tmp_path):
    with open(tmp_path / 'report' / 'upgrade.json') as handle:
        doc = json.load(handle)
    return doc, {row['node']: row for row in doc['nodes']}


def changes(fake):
    """Mutating requests that persisted something (server-side dry runs excluded)."""
    return [m for m in fake.mutations if not m.dry_run]


def node_patches(fake, name):
    return [m for m in changes(fake) if m.method == 'PATCH' and m.path == '/api/v1/nodes/' + name]


def annotations(fake, name):
    return fake.node(name)['metadata'].get('annotations') or {}


def lease_holder(fake):
    lease = fake.get('leases', 'nodeops-memcg-kernel-upgrade', 'kube-system')
    return lease and lease['spec'].get('holderIdentity')


@pytest.fixture
def rollout(ansible_env, kube_env, fake_kube, kubeconfig, kubectl_bin, tmp_path):
    def run(nodes, *flags, **extra):
        return upgrade(ansible_env, kube_env, fake_kube, kubeconfig, kubectl_bin, tmp_path, nodes, *flags, **extra)
    return run


NODES5 = ['n1', 'n2', 'n3', 'n4', 'n5']


def test_happy_path_in_batches_of_two(rollout, fake_kube, tmp_path):
    cluster(fake_kube, NODES5)
    result = rollout(NODES5, kernel_upgrade_batch=2)
    assert result.returncode == 0, result.stdout
    for name in NODES5:
        node = fake_kube.node(name)
        assert node['status']['nodeInfo']['kernelVersion'] == NEW
        assert not node['spec'].get('unschedulable'), name
        assert CORDONED_BY not in annotations(fake_kube, name) and FAILURE not in annotations(fake_kube, name)
    assert fake_kube.max_unschedulable_seen == 2
    assert not lease_holder(fake_kube)
    doc, rows = report(tmp_path)
    assert doc['summary']['upgraded'] == 5 and doc['stopped_at'] is None
    assert [step['step'] for step in rows['n1']['timeline']] == ['cordon', 'drain', 'boot', 'ready', 'finalize', 'uncordon']
    assert rows['n5']['kernel_before'] == OLD and rows['n5']['kernel_after'] == NEW
    # A second run finds every node on a fixed kernel: nothing in the API changes.
    before = len(changes(fake_kube))
    again = rollout(NODES5, kernel_upgrade_batch=2)
    assert again.returncode == 0, again.stdout
    assert len(changes(fake_kube)) == before
    assert 'nothing to do' in again.stdout


def test_pdb_blocking_a_drain_stops_the_rollout_there(rollout, fake_kube, tmp_path):
    nodes = ['n1', 'n2', 'n3', 'n4']
    cluster(fake_kube, nodes)
    fake_kube.add_pod('db-0', 'n2', owner='StatefulSet/db', labels={'app': 'db'})
    fake_kube.add_pdb('db', match_labels={'app': 'db'}, min_available=1)
    result = rollout(nodes, kernel_upgrade_preflight_drain='warn')  # the preflight names it; the run goes on
    assert result.returncode != 0
    assert 'WARNING: the preflight dry-run drain would be refused on n2 (the rollout will stop there)' in result.stdout
    assert 'stopped at node n2, step drain' in result.stdout
    assert 'db-0' in result.stdout and 'db' in result.stdout
    assert fake_kube.node('n1')['status']['nodeInfo']['kernelVersion'] == NEW
    assert fake_kube.node('n2')['spec'].get('unschedulable') is True
    assert 'drain' in annotations(fake_kube, 'n2')[FAILURE] and 'db-0' in annotations(fake_kube, 'n2')[FAILURE]
    assert node_patches(fake_kube, 'n3') == [] and node_patches(fake_kube, 'n4') == []
    assert not lease_holder(fake_kube)
    doc, rows = report(tmp_path)
    assert doc['stopped_at']['node'] == 'n2' and doc['stopped_at']['step'] == 'drain'
    assert rows['n3']['status'] == 'not_started' and rows['n1']['status'] == 'upgraded'


def test_node_never_ready_after_reboot_stops_the_rollout(rollout, fake_kube, tmp_path):
    nodes = ['n1', 'n2', 'n3']
    cluster(fake_kube, nodes)
    result = rollout(nodes, fake_never_ready=['n2'])  # its reboot takes it down for good
    assert result.returncode != 0
    assert 'stopped at node n2, step ready' in result.stdout
    assert fake_kube.node('n2')['spec'].get('unschedulable') is True
    assert 'ready' in annotations(fake_kube, 'n2')[FAILURE]
    assert node_patches(fake_kube, 'n3') == []
    assert report(tmp_path)[0]['stopped_at']['step'] == 'ready'


def test_second_run_while_the_lock_is_held_is_refused(rollout, fake_kube):
    nodes = ['n1', 'n2']
    cluster(fake_kube, nodes)
    fake_kube.add_lease('nodeops-memcg-kernel-upgrade', holder='another-run', duration_seconds=3600)
    result = rollout(nodes)
    assert result.returncode != 0
    assert 'another-run' in result.stdout
    assert changes(fake_kube) == []


def test_admin_cordoned_node_stays_cordoned(rollout, fake_kube, tmp_path):
    nodes = ['n1', 'n2', 'n3']
    cluster(fake_kube, nodes)
    fake_kube.add_node('n4', kernel=NEW, unschedulable=True)  # cordoned by an admin, outside the rollout
    refused = rollout(nodes)  # the budget is the batch: n4 would be one more
    assert refused.returncode != 0
    assert ("the batch n1 would make 2 nodes unavailable at once, over kernel_upgrade_max_unavailable '' "
            "(the batch size) (1 of 4 workers): already NotReady or unschedulable: n4") in refused.stdout
    assert changes(fake_kube) == []

    result = rollout(nodes + ['n4'], kernel_upgrade_max_unavailable=2)
    assert result.returncode == 0, result.stdout
    assert fake_kube.node('n4')['spec'].get('unschedulable') is True
    assert CORDONED_BY not in annotations(fake_kube, 'n4')
    assert all(not fake_kube.node(name)['spec'].get('unschedulable') for name in nodes)
    rows = report(tmp_path)[1]
    assert rows['n4']['status'] == 'already_fixed' and rows['n1']['status'] == 'upgraded'


def test_admin_cordoned_node_to_upgrade_is_upgraded_and_left_cordoned(rollout, fake_kube, tmp_path):
    cluster(fake_kube, ['n1'])
    fake_kube.add_node('n2', unschedulable=True)
    result = rollout(['n1', 'n2'], kernel_upgrade_max_unavailable='100%')
    assert result.returncode == 0, result.stdout
    assert fake_kube.node('n2')['status']['nodeInfo']['kernelVersion'] == NEW
    assert fake_kube.node('n2')['spec'].get('unschedulable') is True
    row = report(tmp_path)[1]['n2']
    assert row['admin_cordoned'] is True and row['status'] == 'upgraded'


def test_all_nodes_already_fixed_make_no_mutating_call(rollout, fake_kube):
    cluster(fake_kube, NODES5, kernel=NEW)
    result = rollout(NODES5)
    assert result.returncode == 0, result.stdout
    assert fake_kube.mutations == []


def test_check_mode_changes_nothing_in_the_api(rollout, fake_kube, tmp_path):
    cluster(fake_kube, NODES5)
    result = rollout(NODES5, '--check', kernel_upgrade_batch=2)
    assert result.returncode == 0, result.stdout
    assert changes(fake_kube) == []
    assert all(m.dry_run for m in fake_kube.mutations)
    assert "Batches of 2, in order: [['n1', 'n2'], ['n3', 'n4'], ['n5']]" in result.stdout
    assert not os.path.exists(tmp_path / 'report')


def test_control_plane_nodes_are_refused_unless_allowed(rollout, fake_kube):
    cluster(fake_kube, ['n1'])
    fake_kube.add_node('cp1', control_plane=True)
    result = rollout(['n1', 'cp1'])
    assert result.returncode != 0 and 'control-plane nodes to upgrade: cp1' in result.stdout
    assert changes(fake_kube) == []
