# -*- coding: utf-8 -*-
"""detect_node_conditions: the detect playbook sets a node condition of its own and records Events
through the real kubectl against the fake API (tests/k8s_fake), as node-problem-detector does.
kubelet's conditions stay as they were; check mode sends dry runs only."""

from __future__ import annotations

import os

from conftest import REPO_ROOT, localhost_inventory, run_playbook
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree

pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'detect.yml')
STATUS_PATH = '/api/v1/nodes/n1/status'
EVENTS_PATH = '/api/v1/namespaces/default/events'


def conditions(fake):
    return {condition['type']: condition for condition in fake.node('n1')['status']['conditions']}


def events(fake):
    return [obj for (_namespace, _name), obj in sorted(fake.store.objects['events'].items())]


def test_condition_and_events_follow_the_verdict(ansible_env, fake_kube, kubeconfig, kubectl_bin, kube_env, tmp_path):
    fake_kube.add_node('n1')
    kubelet_conditions = conditions(fake_kube)
    env = dict(ansible_env, KUBECACHEDIR=kube_env['KUBECACHEDIR'])
    inventory = localhost_inventory(str(tmp_path))
    sick = tree.build_node(tmp_path / 'sick', memory_num_cgroups=68700)
    healthy = tree.build_node(tmp_path / 'healthy', memory_num_cgroups=10, release='6.1.0-25-amd64',
                              cmdline='ro quiet\0')

    def detect(root, *args):
        result = run_playbook(env, PLAYBOOK, inventory, {
            'detect_root': root, 'detect_node_conditions': True, 'detect_node_name': 'n1',
            'detect_kubectl': kubectl_bin, 'detect_kubeconfig': kubeconfig, 'detect_report_dir': '',
            'detect_print_report': False, 'detect_cpu_interval': 0}, *args)
        assert result.returncode == 0, result.stdout
        return result.stdout

    # check mode: dry runs only, nothing stored
    detect(sick, '--check')
    sent = [m for m in fake_kube.mutations if m.path in (STATUS_PATH, EVENTS_PATH)]
    assert sent and all(m.dry_run for m in sent), sent
    assert conditions(fake_kube) == kubelet_conditions and events(fake_kube) == []

    # critical: our condition True with the numbers, a Warning Event; kubelet's conditions untouched
    output = detect(sick)
    patches = [m for m in fake_kube.mutations if m.method == 'PATCH' and not m.dry_run]
    assert [m.path for m in patches] == [STATUS_PATH]
    assert patches[0].content_type == 'application/strategic-merge-patch+json'
    assert [c['type'] for c in patches[0].body['status']['conditions']] == ['DyingMemoryCgroups']
    now = conditions(fake_kube)
    assert {kind: now[kind] for kind in kubelet_conditions} == kubelet_conditions
    ours = now['DyingMemoryCgroups']
    assert (ours['status'], ours['reason']) == ('True', 'DyingMemoryCgroupsCritical')
    assert ours['message'].startswith('critical: 68692 dying memory cgroups (8 live), kernel 3.10.0-1160.el7.x86_64; ')
    assert 'exceed critical_dying (20000)' in ours['message']
    [warning] = events(fake_kube)
    assert (warning['type'], warning['reason'], warning['involvedObject']['kind'], warning['involvedObject']['name'],
            warning['source']['component']) == ('Warning', 'DyingMemoryCgroupsCritical', 'Node', 'n1', 'nodeops-memcg')
    assert 'changed=1' in output.split('PLAY RECAP')[1]

    # the same state again: no write, no new Event
    before = len(fake_kube.mutations)
    output = detect(sick)
    assert [m for m in fake_kube.mutations[before:] if not m.dry_run] == []
    assert 'changed=0' in output.split('PLAY RECAP')[1]

    # ok again: the condition clears (a transition) and a Normal Event says so
    detect(healthy)
    cleared = conditions(fake_kube)['DyingMemoryCgroups']
    assert (cleared['status'], cleared['reason']) == ('False', 'MemoryCgroupsOk')
    assert cleared['lastTransitionTime'] >= ours['lastTransitionTime']
    # generateName suffixes are random: compare the Events as a set
    assert sorted((e['type'], e['reason']) for e in events(fake_kube)) == [
        ('Normal', 'MemoryCgroupsOk'), ('Warning', 'DyingMemoryCgroupsCritical')]
    assert {kind: conditions(fake_kube)[kind] for kind in kubelet_conditions} == kubelet_conditions


def test_a_kubelet_condition_type_is_refused(ansible_env, fake_kube, kubeconfig, kubectl_bin, kube_env, tmp_path):
    fake_kube.add_node('n1')
    before = conditions(fake_kube)
    env = dict(ansible_env, KUBECACHEDIR=kube_env['KUBECACHEDIR'])
    sick = tree.build_node(tmp_path / 'sick', memory_num_cgroups=68700)
    result = run_playbook(env, PLAYBOOK, localhost_inventory(str(tmp_path)), {
        'detect_root': sick, 'detect_node_conditions': True, 'detect_node_name': 'n1', 'detect_condition_type': 'Ready',
        'detect_kubectl': kubectl_bin, 'detect_kubeconfig': kubeconfig, 'detect_report_dir': '',
        'detect_print_report': False, 'detect_cpu_interval': 0})
    assert result.returncode != 0
    assert "condition type 'Ready' is owned by kubelet" in result.stdout, result.stdout
    assert [m for m in fake_kube.mutations if m.method != 'GET'] == []
    assert conditions(fake_kube) == before
