# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubectl and the Kubernetes decisions of the upgrade (plugins/module_utils/k8s/: client, nodes, lease, times)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import json

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import lease as k8s_lease
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import nodes as k8s_nodes
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import times as k8s_times
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

# A worker node as `kubectl get node worker-1 -o json` prints it on a kubeadm cluster (trimmed: images, volumes).
WORKER = json.loads('''{
  "apiVersion": "v1",
  "kind": "Node",
  "metadata": {
    "annotations": {
      "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
      "node.alpha.kubernetes.io/ttl": "0",
      "volumes.kubernetes.io/controller-managed-attach-detach": "true"
    },
    "creationTimestamp": "2024-03-11T08:14:55Z",
    "labels": {
      "beta.kubernetes.io/arch": "amd64",
      "beta.kubernetes.io/os": "linux",
      "kubernetes.io/arch": "amd64",
      "kubernetes.io/hostname": "worker-1",
      "kubernetes.io/os": "linux"
    },
    "name": "worker-1",
    "resourceVersion": "5214390",
    "uid": "0b7c3e8e-8f5e-4c1e-9a55-2b1f0d6f3c11"
  },
  "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
  "status": {
    "addresses": [{"address": "10.0.0.21", "type": "InternalIP"}, {"address": "worker-1", "type": "Hostname"}],
    "allocatable": {"cpu": "3800m", "ephemeral-storage": "56403987978", "hugepages-2Mi": "0",
                    "memory": "15258360Ki", "pods": "110"},
    "capacity": {"cpu": "4", "ephemeral-storage": "61202244Ki", "hugepages-2Mi": "0", "memory": "16262400Ki",
                 "pods": "110"},
    "conditions": [
      {"lastHeartbeatTime": "2024-05-01T09:58:12Z", "lastTransitionTime": "2024-03-11T08:14:55Z",
       "message": "kubelet has sufficient memory available", "reason": "KubeletHasSufficientMemory",
       "status": "False", "type": "MemoryPressure"},
      {"lastHeartbeatTime": "2024-05-01T09:58:12Z", "lastTransitionTime": "2024-03-11T08:14:55Z",
       "message": "kubelet has no disk pressure", "reason": "KubeletHasNoDiskPressure",
       "status": "False", "type": "DiskPressure"},
      {"lastHeartbeatTime": "2024-05-01T09:58:12Z", "lastTransitionTime": "2024-03-11T08:15:27Z",
       "message": "kubelet is posting ready status", "reason": "KubeletReady",
       "status": "True", "type": "Ready"}
    ],
    "nodeInfo": {
      "architecture": "amd64", "containerRuntimeVersion": "containerd://1.6.31",
      "kernelVersion": "3.10.0-1160.119.1.el7.x86_64", "kubeProxyVersion": "v1.27.13",
      "kubeletVersion": "v1.27.13", "operatingSystem": "linux", "osImage": "CentOS Linux 7 (Core)",
      "machineID": "f0e1d2c3b4a5968778695a4b3c2d1e0f", "systemUUID": "4c4c4544-0048-3010-8051-b4c04f565432",
      "bootID": "5d6c3c2f-0a3f-4d0e-9c4f-1e2d3c4b5a69"
    }
  }
}''')


def node(name='worker-1', ready='True', unschedulable=False, annotations=None, labels=None, rv='5214390'):
    obj = copy.deepcopy(WORKER)
    obj['metadata']['name'] = name
    obj['metadata']['resourceVersion'] = rv
    obj['metadata']['annotations'].update(annotations or {})
    obj['metadata']['labels'].update(labels or {})
    obj['status']['conditions'][2]['status'] = ready
    if unschedulable:
        obj['spec']['unschedulable'] = True
        obj['spec']['taints'] = [{'effect': 'NoSchedule', 'key': 'node.kubernetes.io/unschedulable',
                                  'timeAdded': '2024-05-01T10:00:00Z'}]
    return obj


def pod(namespace, name, labels=None, owner=None, node_name='worker-1', phase='Running', ready=True, mirror=False):
    meta = {'namespace': namespace, 'name': name, 'labels': labels or {}, 'uid': 'uid-' + name,
            'resourceVersion': '5214001', 'annotations': {}}
    if owner:
        meta['ownerReferences'] = [{'apiVersion': 'apps/v1', 'kind': owner[0], 'name': owner[1],
                                    'uid': 'uid-' + owner[1], 'controller': True, 'blockOwnerDeletion': True}]
    if mirror:
        meta['annotations']['kubernetes.io/config.mirror'] = 'c0ffee'
    return {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': meta,
            'spec': {'nodeName': node_name, 'containers': [{'name': 'main', 'image': 'nginx:1.25'}]},
            'status': {'phase': phase, 'conditions': [
                {'type': 'Initialized', 'status': 'True'},
                {'type': 'Ready', 'status': 'True' if ready else 'False'},
                {'type': 'ContainersReady', 'status': 'True' if ready else 'False'},
                {'type': 'PodScheduled', 'status': 'True'}]}}


def pdb(namespace, name, selector, allowed, min_available=None):
    return {'apiVersion': 'policy/v1', 'kind': 'PodDisruptionBudget',
            'metadata': {'namespace': namespace, 'name': name, 'generation': 1, 'resourceVersion': '4410'},
            'spec': {'minAvailable': min_available if min_available is not None else 2, 'selector': selector},
            'status': {'currentHealthy': 2, 'desiredHealthy': 2, 'disruptionsAllowed': allowed, 'expectedPods': 2,
                       'observedGeneration': 1,
                       'conditions': [{'type': 'DisruptionAllowed', 'status': 'True' if allowed else 'False',
                                       'reason': 'SufficientPods' if allowed else 'InsufficientPods',
                                       'lastTransitionTime': '2024-05-01T09:00:00Z', 'message': '',
                                       'observedGeneration': 1}]}}


# kubectl's stderr (as kubectl 1.37 prints it) of `kubectl drain worker-1 --ignore-daemonsets --delete-emptydir-data --timeout 12s`
# with a PodDisruptionBudget allowing no disruption in front of shop/web-5d8f7.
DRAIN_PDB_STDERR = '''Warning: ignoring DaemonSet-managed Pods: kube-system/kube-proxy-x7k2p, kube-system/calico-node-5nq8d
error when evicting pods/"web-5d8f7" -n "shop" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.
error when evicting pods/"web-5d8f7" -n "shop" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.
There are pending pods in node "worker-1" when an error occurred: error when evicting pods/"web-5d8f7" -n "shop": global timeout reached: 12s
pod/web-5d8f7
error: unable to drain node "worker-1" due to error: error when evicting pods/"web-5d8f7" -n "shop": global timeout reached: 12s, continuing command...
There are pending nodes to be drained:
 worker-1
error when evicting pods/"web-5d8f7" -n "shop": global timeout reached: 12s
'''
DRAIN_PDB_STDOUT = '''node/worker-1 cordoned
evicting pod shop/web-5d8f7
evicting pod shop/api-7c9b4-2kq8x
evicting pod shop/web-5d8f7
pod/api-7c9b4-2kq8x evicted
evicting pod shop/web-5d8f7
'''
# kubectl's wording for bare pods really says "cannot delete" twice
DRAIN_FILTER_STDERR = (
    'error: unable to drain node "worker-1" due to error: [cannot delete cannot delete Pods that declare no '
    'controller (use --force to override): default/bare, cannot delete Pods with local storage (use '
    '--delete-emptydir-data to override): shop/cache-0, shop/cache-1], continuing command...\n'
    'There are pending nodes to be drained:\n'
    ' worker-1\n')
DRAIN_OLD_STDERR = '''error when evicting pod "web-5d8f7" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.
There are pending pods in node "worker-1" when an error occurred: error when evicting pod "web-5d8f7": global timeout reached: 12s
'''


class Recorder(object):
    """A kubectl runner: records argv (and stdin), answers from a list of (rc, out, err)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, argv, data=None):
        self.calls.append((list(argv), data))
        return self.answers.pop(0) if self.answers else (0, '{}', '')


def kube(*answers, **kwargs):
    runner = Recorder(*answers)
    kwargs.setdefault('binary', '/usr/local/bin/kubectl')
    return k8s_client.Kubectl(runner, **kwargs), runner


# ---------------------------------------------------------------- node_summary


def test_node_summary_of_a_real_worker():
    summary = k8s_nodes.node_summary(WORKER)
    assert summary == {
        'name': 'worker-1', 'ready': True, 'ready_status': 'True', 'unschedulable': False,
        'control_plane': False, 'kernel_version': '3.10.0-1160.119.1.el7.x86_64',
        'kubelet_version': 'v1.27.13', 'os_image': 'CentOS Linux 7 (Core)',
        'cordoned_by': None, 'failure': None, 'step': None, 'target': None, 'annotations': {},
        'allocatable': {'cpu_millis': 3800, 'memory_bytes': 15258360 * 1024, 'pods': 110}}


@pytest.mark.parametrize('label', ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master'])
def test_node_summary_control_plane_labels(label):
    assert k8s_nodes.node_summary(node('cp-1', labels={label: ''}))['control_plane'] is True


def test_node_summary_our_annotations_and_cordon():
    obj = node(unschedulable=True, ready='Unknown',
               annotations={k8s_nodes.CORDONED_BY: 'run-1', k8s_nodes.FAILURE: 'not Ready after reboot'})
    summary = k8s_nodes.node_summary(obj)
    assert summary['unschedulable'] is True and summary['ready'] is False and summary['ready_status'] == 'Unknown'
    assert summary['cordoned_by'] == 'run-1' and summary['failure'] == 'not Ready after reboot'
    assert summary['annotations'] == {k8s_nodes.CORDONED_BY: 'run-1', k8s_nodes.FAILURE: 'not Ready after reboot'}


def test_node_without_status_is_not_ready():
    summary = k8s_nodes.node_summary({'metadata': {'name': 'new'}})
    assert summary['ready'] is False and summary['ready_status'] == 'Unknown' and summary['kernel_version'] is None


def test_annotation_keys():
    assert k8s_nodes.CORDONED_BY == 'nodeops.memcg/cordoned-by'
    assert k8s_nodes.FAILURE == 'nodeops.memcg/failure'
    assert k8s_nodes.FAILURE_RUN == 'nodeops.memcg/failure-run'


# ---------------------------------------------------------------- cordon ownership and patches


def test_cordon_owner():
    assert k8s_nodes.cordon_owner(node(), 'run-1') is None
    assert k8s_nodes.cordon_owner(node(unschedulable=True), 'run-1') == 'admin'
    assert k8s_nodes.cordon_owner(node(unschedulable=True, annotations={k8s_nodes.CORDONED_BY: 'run-1'}), 'run-1') == 'this_run'
    assert k8s_nodes.cordon_owner(node(unschedulable=True, annotations={k8s_nodes.CORDONED_BY: 'run-0'}), 'run-1') == 'other_run'
    # a stale annotation on a schedulable node (someone uncordoned by hand) does not make it cordoned
    assert k8s_nodes.cordon_owner(node(annotations={k8s_nodes.CORDONED_BY: 'run-0'}), 'run-1') is None


def test_cordon_patch_annotates_and_cordons_in_one_request_with_a_precondition():
    assert k8s_nodes.cordon_patch('run-1', '5214390') == {
        'metadata': {'annotations': {'nodeops.memcg/cordoned-by': 'run-1'}, 'resourceVersion': '5214390'},
        'spec': {'unschedulable': True}}


def test_uncordon_patch_only_for_our_cordon():
    ours = node(unschedulable=True, annotations={k8s_nodes.CORDONED_BY: 'run-1'})
    assert k8s_nodes.uncordon_patch(ours, 'run-1', '7') == {
        'metadata': {'annotations': {k8s_nodes.CORDONED_BY: None}, 'resourceVersion': '7'},
        'spec': {'unschedulable': None}}
    assert k8s_nodes.uncordon_patch(ours, 'run-2') is None
    assert k8s_nodes.uncordon_patch(node(unschedulable=True), 'run-1') is None
    assert k8s_nodes.uncordon_patch(node(), 'run-1') is None


def test_uncordon_patch_clears_only_this_runs_failure():
    failed_here = node(unschedulable=True, annotations={k8s_nodes.CORDONED_BY: 'run-1', k8s_nodes.FAILURE: 'x',
                                                        k8s_nodes.FAILURE_RUN: 'run-1'})
    assert k8s_nodes.uncordon_patch(failed_here, 'run-1')['metadata']['annotations'] == {
        k8s_nodes.CORDONED_BY: None, k8s_nodes.FAILURE: None, k8s_nodes.FAILURE_RUN: None}
    failed_before = node(unschedulable=True, annotations={k8s_nodes.CORDONED_BY: 'run-1', k8s_nodes.FAILURE: 'x',
                                                          k8s_nodes.FAILURE_RUN: 'run-0'})
    assert k8s_nodes.uncordon_patch(failed_before, 'run-1')['metadata']['annotations'] == {k8s_nodes.CORDONED_BY: None}
    # an admin cordon stays, but this run's stale failure note goes
    admin = node(unschedulable=True, annotations={k8s_nodes.FAILURE: 'x', k8s_nodes.FAILURE_RUN: 'run-1'})
    assert k8s_nodes.uncordon_patch(admin, 'run-1') == {
        'metadata': {'annotations': {k8s_nodes.FAILURE: None, k8s_nodes.FAILURE_RUN: None}}}


def test_uncordon_patch_of_a_hand_uncordoned_node_only_drops_the_annotation():
    assert k8s_nodes.uncordon_patch(node(annotations={k8s_nodes.CORDONED_BY: 'run-1'}), 'run-1') == {
        'metadata': {'annotations': {k8s_nodes.CORDONED_BY: None}}}


def test_failure_patch():
    assert k8s_nodes.failure_patch(node(), 'drain refused', 'run-1', '9') == {
        'metadata': {'annotations': {k8s_nodes.FAILURE: 'drain refused', k8s_nodes.FAILURE_RUN: 'run-1'},
                     'resourceVersion': '9'}}
    same = node(annotations={k8s_nodes.FAILURE: 'drain refused', k8s_nodes.FAILURE_RUN: 'run-1'})
    assert k8s_nodes.failure_patch(same, 'drain refused', 'run-1') is None
    long_reason = k8s_nodes.failure_patch(node(), 'x' * 5000)['metadata']['annotations'][k8s_nodes.FAILURE]
    assert len(long_reason) == k8s_nodes.MAX_ANNOTATION_CHARS and long_reason.endswith('...')


def test_apply_merge_patch_predicts_the_node():
    ours = node(unschedulable=True, annotations={k8s_nodes.CORDONED_BY: 'run-1'})
    after = k8s_nodes.apply_merge_patch(ours, k8s_nodes.uncordon_patch(ours, 'run-1'))
    assert k8s_nodes.node_state(after) == {'unschedulable': False, 'annotations': {}}
    assert k8s_nodes.node_state(ours) == {'unschedulable': True, 'annotations': {k8s_nodes.CORDONED_BY: 'run-1'}}
    assert ours['spec']['unschedulable'] is True  # the input is not changed


# ---------------------------------------------------------------- PodDisruptionBudgets


def test_selector_matches():
    labels = {'app': 'web', 'tier': 'front'}
    assert k8s_nodes.selector_matches({}, labels)
    assert not k8s_nodes.selector_matches(None, labels)
    assert k8s_nodes.selector_matches({'matchLabels': {'app': 'web'}}, labels)
    assert not k8s_nodes.selector_matches({'matchLabels': {'app': 'api'}}, labels)
    assert k8s_nodes.selector_matches({'matchExpressions': [{'key': 'tier', 'operator': 'In', 'values': ['front', 'x']}]},
                                      labels)
    assert not k8s_nodes.selector_matches({'matchExpressions': [{'key': 'tier', 'operator': 'NotIn', 'values': ['front']}]},
                                          labels)
    assert k8s_nodes.selector_matches({'matchExpressions': [{'key': 'app', 'operator': 'Exists'},
                                                            {'key': 'canary', 'operator': 'DoesNotExist'}]}, labels)
    assert not k8s_nodes.selector_matches({'matchExpressions': [{'key': 'canary', 'operator': 'Exists'}]}, labels)


def test_pods_blocking_names_the_budgets_with_no_disruption_left():
    pods = [
        pod('shop', 'web-5d8f7', {'app': 'web'}, ('ReplicaSet', 'web-5d8f7c9b')),
        pod('shop', 'api-7c9b4-2kq8x', {'app': 'api'}, ('ReplicaSet', 'api-7c9b4')),
        pod('shop', 'web-other-node', {'app': 'web'}, ('ReplicaSet', 'web-5d8f7c9b'), node_name='worker-2'),
        pod('blog', 'web-1', {'app': 'web'}, ('StatefulSet', 'web')),
        pod('kube-system', 'kube-proxy-x7k2p', {'k8s-app': 'kube-proxy'}, ('DaemonSet', 'kube-proxy')),
        pod('shop', 'job-done', {'app': 'web'}, ('Job', 'nightly'), phase='Succeeded', ready=False),
        pod('kube-system', 'etcd-worker-1', {'component': 'etcd'}, ('Node', 'worker-1'), mirror=True),
    ]
    pdbs = [
        pdb('shop', 'web-pdb', {'matchLabels': {'app': 'web'}}, 0),
        pdb('shop', 'api-pdb', {'matchLabels': {'app': 'api'}}, 1),
        pdb('blog', 'blog-pdb', {'matchExpressions': [{'key': 'app', 'operator': 'In', 'values': ['web']}]}, 0),
        pdb('kube-system', 'everything', {}, 0),
    ]
    assert k8s_nodes.pods_blocking(pods, pdbs, node='worker-1') == [
        {'namespace': 'blog', 'pod': 'web-1', 'pdbs': ['blog-pdb'],
         'reason': 'PodDisruptionBudget blog-pdb allows no disruption'},
        {'namespace': 'shop', 'pod': 'web-5d8f7', 'pdbs': ['web-pdb'],
         'reason': 'PodDisruptionBudget web-pdb allows no disruption'},
    ]
    # without a node filter the pod on worker-2 counts too
    assert [b['pod'] for b in k8s_nodes.pods_blocking(pods, pdbs)] == ['web-1', 'web-5d8f7', 'web-other-node']


def test_pods_blocking_two_budgets_on_one_pod():
    pods = [pod('shop', 'web-5d8f7', {'app': 'web', 'tier': 'front'}, ('ReplicaSet', 'web-5d8f7c9b'))]
    pdbs = [pdb('shop', 'by-app', {'matchLabels': {'app': 'web'}}, 1),
            pdb('shop', 'by-tier', {'matchLabels': {'tier': 'front'}}, 3)]
    blocked = k8s_nodes.pods_blocking(pods, pdbs)
    assert blocked[0]['pdbs'] == ['by-app', 'by-tier']
    assert 'more than one PodDisruptionBudget' in blocked[0]['reason']


def test_pods_blocking_ignores_other_namespaces_and_missing_status():
    pods = [pod('shop', 'web-5d8f7', {'app': 'web'}, ('ReplicaSet', 'web-5d8f7c9b'))]
    fresh = pdb('shop', 'fresh', {'matchLabels': {'app': 'web'}}, 0)
    del fresh['status']  # the disruption controller has not counted yet: nothing allowed
    assert k8s_nodes.pods_blocking(pods, [fresh])[0]['pdbs'] == ['fresh']
    assert k8s_nodes.pods_blocking(pods, [pdb('blog', 'web-pdb', {'matchLabels': {'app': 'web'}}, 0)]) == []


# ---------------------------------------------------------------- kubectl drain's error text


def test_parse_drain_errors_pdb_then_timeout_is_one_pdb_refusal():
    assert k8s_nodes.parse_drain_errors(DRAIN_PDB_STDERR) == [
        {'namespace': 'shop', 'pod': 'web-5d8f7', 'reason': 'pdb',
         'message': "Cannot evict pod as it would violate the pod's disruption budget."}]


def test_parse_drain_errors_filters():
    assert k8s_nodes.parse_drain_errors(DRAIN_FILTER_STDERR) == [
        {'namespace': 'default', 'pod': 'bare', 'reason': 'no_controller',
         'message': 'cannot delete Pods that declare no controller (use --force to override)'},
        {'namespace': 'shop', 'pod': 'cache-0', 'reason': 'local_storage',
         'message': 'cannot delete Pods with local storage (use --delete-emptydir-data to override)'},
        {'namespace': 'shop', 'pod': 'cache-1', 'reason': 'local_storage',
         'message': 'cannot delete Pods with local storage (use --delete-emptydir-data to override)'},
    ]


def test_parse_drain_errors_brief_wordings():
    text = ('cannot delete Pods declare no controller (use --force to override): default/bare\n'
            'cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-system/kube-proxy-x7k2p\n')
    assert [(r['pod'], r['reason']) for r in k8s_nodes.parse_drain_errors(text)] == [
        ('bare', 'no_controller'), ('kube-proxy-x7k2p', 'daemonset')]


def test_parse_drain_errors_old_kubectl_has_no_namespace():
    assert k8s_nodes.parse_drain_errors(DRAIN_OLD_STDERR) == [
        {'namespace': None, 'pod': 'web-5d8f7', 'reason': 'pdb',
         'message': "Cannot evict pod as it would violate the pod's disruption budget."}]


def test_parse_drain_errors_timeout_multiple_budgets_and_nothing():
    text = ('error when evicting pods/"stuck" -n "db" : global timeout reached: 12s\n'
            'error when evicting pods/"stuck" -n "db": global timeout reached: 12s\n'
            'error when evicting pods/"web" -n "shop": This pod has more than one PodDisruptionBudget, which the '
            'eviction subresource does not support.\n')
    assert [(r['namespace'], r['pod'], r['reason']) for r in k8s_nodes.parse_drain_errors(text)] == [
        ('db', 'stuck', 'timeout'), ('shop', 'web', 'multiple_pdbs')]
    assert k8s_nodes.parse_drain_errors('') == []
    assert k8s_nodes.parse_drain_errors(None) == []


def test_parse_drain_output_counts_only_pods_that_went():
    assert k8s_nodes.parse_drain_output(DRAIN_PDB_STDOUT, DRAIN_PDB_STDERR) == {
        'evicted': ['shop/api-7c9b4-2kq8x'],
        'ignored_daemonset_pods': ['kube-system/calico-node-5nq8d', 'kube-system/kube-proxy-x7k2p']}
    dry = ('node/worker-1 cordoned (server dry run)\nevicting pod shop/web-5d8f7 (server dry run)\n'
           'evicting pod shop/api-7c9b4-2kq8x (server dry run)\nnode/worker-1 drained (server dry run)\n')
    assert k8s_nodes.parse_drain_output(dry)['evicted'] == ['shop/api-7c9b4-2kq8x', 'shop/web-5d8f7']


def test_summarize_refusals():
    refusals = k8s_nodes.parse_drain_errors(DRAIN_PDB_STDERR + DRAIN_FILTER_STDERR)
    refusals[-1]['pdbs'] = ['web-pdb']
    text = k8s_nodes.summarize_refusals(refusals)
    assert text.startswith('default/bare: a bare pod without controller, force=true would delete it; ')
    assert text.endswith('shop/web-5d8f7: blocked by PodDisruptionBudget web-pdb')


def test_eviction_supported():
    api = {'kind': 'APIResourceList', 'groupVersion': 'v1', 'resources': [
        {'name': 'pods', 'namespaced': True, 'kind': 'Pod', 'verbs': ['create', 'delete', 'get', 'list']},
        {'name': 'pods/eviction', 'namespaced': True, 'group': 'policy', 'version': 'v1', 'kind': 'Eviction',
         'verbs': ['create']}]}
    assert k8s_nodes.eviction_supported(api)
    api['resources'].pop()
    assert not k8s_nodes.eviction_supported(api)


# ---------------------------------------------------------------- argv


def test_get_argv_passes_the_kubeconfig_path_and_never_a_shell_string():
    kc, runner = kube((0, json.dumps(WORKER), ''), kubeconfig='/home/ops/.kube/prod', context='prod-admin',
                      request_timeout=30)
    assert kc.get_json('node', 'worker-1')['metadata']['name'] == 'worker-1'
    assert runner.calls == [(['/usr/local/bin/kubectl', '--kubeconfig', '/home/ops/.kube/prod',
                              '--context', 'prod-admin', '--request-timeout', '30s',
                              'get', 'node', '--output', 'json', '--', 'worker-1'], None)]


def test_get_argv_lists_with_selectors():
    kc, runner = kube((0, '{"kind": "PodList", "items": []}', ''))
    assert kc.get_items('pods', all_namespaces=True, field_selector='spec.nodeName=worker-1',
                        label_selector='app=web') == []
    kc.get_items('poddisruptionbudgets', namespace='shop')
    assert runner.calls[0][0] == ['/usr/local/bin/kubectl', 'get', 'pods', '--all-namespaces',
                                  '--field-selector', 'spec.nodeName=worker-1', '--selector', 'app=web',
                                  '--output', 'json']
    assert runner.calls[1][0] == ['/usr/local/bin/kubectl', 'get', 'poddisruptionbudgets', '--namespace', 'shop',
                                  '--output', 'json']


def test_patch_argv_is_a_json_argument():
    kc, runner = kube((0, '{}', ''))
    kc.patch('node', 'worker-1', k8s_nodes.cordon_patch('run-1', '5'))
    argv = runner.calls[0][0]
    assert argv[:4] == ['/usr/local/bin/kubectl', 'patch', 'node', '--type']
    assert argv[4] == 'merge' and argv[5] == '--patch'
    assert json.loads(argv[6]) == {'metadata': {'annotations': {k8s_nodes.CORDONED_BY: 'run-1'}, 'resourceVersion': '5'},
                                   'spec': {'unschedulable': True}}
    assert argv[7:] == ['--output', 'json', '--', 'worker-1']


def test_patch_argv_of_a_subresource_dry_run():
    kc, runner = kube((0, '{}', ''))
    kc.patch('node', 'worker-1', {'status': {'conditions': []}}, patch_type='strategic', dry_run=True,
             subresource='status')
    argv = runner.calls[0][0]
    assert argv[1:5] == ['patch', 'node', '--subresource', 'status']
    assert argv[5:7] == ['--type', 'strategic']
    assert argv[-5:] == ['--dry-run=server', '--output', 'json', '--', 'worker-1']


def test_create_and_replace_send_the_object_on_stdin():
    lease = k8s_lease.lease_object('lock', 'kube-system', 'run-1', 60, 1714557600.0)
    kc, runner = kube((0, json.dumps(lease), ''), (0, json.dumps(lease), ''))
    kc.create(lease)
    kc.replace(lease, dry_run=True)
    assert runner.calls[0][0] == ['/usr/local/bin/kubectl', 'create', '--filename', '-', '--output', 'json']
    assert json.loads(runner.calls[0][1]) == lease
    assert runner.calls[1][0] == ['/usr/local/bin/kubectl', 'replace', '--filename', '-', '--dry-run=server',
                                  '--output', 'json']


def test_delete_argv():
    kc, runner = kube((0, 'lease.coordination.k8s.io "lock" deleted', ''))
    kc.delete(k8s_lease.LEASE_KIND, 'lock', namespace='kube-system', ignore_not_found=True)
    assert runner.calls[0][0] == ['/usr/local/bin/kubectl', 'delete', 'leases.coordination.k8s.io',
                                  '--namespace', 'kube-system', '--ignore-not-found', '--wait=false', '--', 'lock']


def test_drain_argv_defaults_and_options():
    kc, runner = kube((0, 'node/worker-1 drained\n', ''), (0, '', ''))
    kc.drain('worker-1')
    kc.drain('worker-1', timeout=12, grace_period=30, delete_emptydir_data=False, ignore_daemonsets=False,
             disable_eviction=True, force=True, dry_run=True)
    assert runner.calls[0][0] == ['/usr/local/bin/kubectl', 'drain', '--timeout', '600s',
                                  '--grace-period', '-1', '--ignore-daemonsets', '--delete-emptydir-data', '--', 'worker-1']
    assert runner.calls[1][0] == ['/usr/local/bin/kubectl', 'drain', '--timeout', '12s', '--grace-period', '30',
                                  '--force', '--disable-eviction', '--dry-run=server', '--', 'worker-1']


def test_drain_failure_carries_the_refusals():
    kc, _runner = kube((1, DRAIN_PDB_STDOUT, DRAIN_PDB_STDERR))
    with pytest.raises(k8s_client.DrainError) as info:
        kc.drain('worker-1', timeout=12)
    assert info.value.refusals[0]['pod'] == 'web-5d8f7'
    assert 'shop/web-5d8f7: refused by a PodDisruptionBudget' in str(info.value)
    assert info.value.stdout == DRAIN_PDB_STDOUT


def test_drain_connection_failure_is_not_a_drain_refusal():
    kc, _runner = kube((1, '', 'The connection to the server 127.0.0.1:6443 was refused - did you specify the '
                               'right host or port?\n'))
    with pytest.raises(k8s_client.KubeConnectionError) as info:
        kc.drain('worker-1')
    assert 'node worker-1' in str(info.value)


def test_wait_argv_and_timeout_message():
    kc, runner = kube((1, '', 'error: timed out waiting for the condition on nodes/worker-1\n'),
                      kubeconfig='/k', request_timeout=30)
    with pytest.raises(k8s_client.WaitTimeoutError) as info:
        kc.wait('node', 'worker-1', 'condition=Ready', 120)
    assert str(info.value) == 'node worker-1 did not reach condition=Ready within 120s'
    assert runner.calls[0][0] == ['/usr/local/bin/kubectl', '--kubeconfig', '/k', 'wait',
                                  '--for', 'condition=Ready', '--timeout', '120s', '--', 'node/worker-1']


def test_get_raw():
    kc, runner = kube((0, '{"kind": "APIResourceList", "resources": []}', ''))
    assert kc.get_raw('/api/v1')['kind'] == 'APIResourceList'
    assert runner.calls[0][0] == ['/usr/local/bin/kubectl', 'get', '--raw', '/api/v1']


def test_not_json_is_an_error():
    kc, _runner = kube((0, 'node/worker-1', ''))
    with pytest.raises(k8s_client.KubectlError, match='kubectl returned no JSON for node worker-1'):
        kc.get_json('node', 'worker-1')


# ---------------------------------------------------------------- error mapping


@pytest.mark.parametrize('stderr, cls, message', [
    ('Error from server (NotFound): nodes "worker-9" not found', k8s_client.NotFoundError, 'node worker-9 not found'),
    ('Error from server (Conflict): Operation cannot be fulfilled on leases.coordination.k8s.io "lock": the object '
     'has been modified; please apply your changes to the latest version and try again', k8s_client.ConflictError,
     'lease kube-system/lock was changed by someone else meanwhile (conflict)'),
    ('Error from server (AlreadyExists): error when creating "STDIN": leases.coordination.k8s.io "lock" already '
     'exists', k8s_client.AlreadyExistsError, 'lease kube-system/lock already exists'),
    ('Error from server (Forbidden): nodes "worker-1" is forbidden: User "system:serviceaccount:ops:upgrader" '
     'cannot patch resource "nodes" in API group "" at the cluster scope', k8s_client.ForbiddenError,
     'not allowed to access node worker-1'),
    ('error: You must be logged in to the server (Unauthorized)', k8s_client.UnauthorizedError,
     'the API server rejected the credentials'),
    ('The connection to the server 10.0.0.1:6443 was refused - did you specify the right host or port?',
     k8s_client.KubeConnectionError, 'cannot reach the Kubernetes API server'),
    ('Unable to connect to the server: dial tcp 10.0.0.1:6443: i/o timeout', k8s_client.KubeConnectionError,
     'cannot reach the Kubernetes API server'),
    ('error: context "prod" does not exist', k8s_client.KubeconfigError, 'could not use its kubeconfig'),
    ('Error in configuration: context was not found for specified context: prod', k8s_client.KubeconfigError,
     'could not use its kubeconfig'),
    ('error: stat /nonexistent/kubeconfig: no such file or directory', k8s_client.KubeconfigError,
     'could not use its kubeconfig'),
    ('Error from server (Invalid): Lease.coordination.k8s.io "lock" is invalid: spec.leaseDurationSeconds: '
     'Invalid value: 0: must be greater than 0', k8s_client.InvalidError, 'the API server refused the request'),
    ('Error from server (NotFound): the server could not find the requested resource', k8s_client.KubectlError,
     'does not serve the resource type'),
    ('error: the server doesn\'t have a resource type "leasez"', k8s_client.KubectlError, 'kubectl failed on'),
])
def test_map_error(stderr, cls, message):
    what = 'lease kube-system/lock' if 'lock' in stderr else 'node worker-%s' % ('9' if '9' in stderr else '1')
    err = k8s_client.map_error(stderr + '\n', what)
    assert err.__class__ is cls
    assert message in str(err)
    assert isinstance(err, MemcgError)


def test_errors_never_carry_tokens():
    stderr = ('I0501 10:00:00.000000 round_trippers.go:466] curl -v -XGET -H "Authorization: Bearer '
              'eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJvcHMifQ.c2lnbmF0dXJl" https://10.0.0.1:6443/api\n'
              'token: abcdef.0123456789abcdef\n'
              'client-key-data: ' + 'A' * 200 + '\n'
              'Unable to connect to the server: dial tcp 10.0.0.1:6443: connect: connection refused')
    err = k8s_client.map_error(stderr, 'node worker-1')
    for secret in ('eyJhbGci', '0123456789abcdef', 'A' * 120):
        assert secret not in str(err) and secret not in err.stderr
    assert '<redacted>' in err.stderr


def test_call_raises_the_mapped_error_with_argv():
    kc, _runner = kube((1, '', 'Error from server (NotFound): nodes "worker-9" not found\n'))
    with pytest.raises(k8s_client.NotFoundError) as info:
        kc.get_json('node', 'worker-9')
    assert info.value.argv[-5:] == ['node', '--output', 'json', '--', 'worker-9']
    kc, _runner = kube((1, '', 'Error from server (NotFound): leases.coordination.k8s.io "lock" not found\n'))
    assert kc.get_optional(k8s_lease.LEASE_KIND, 'lock', namespace='kube-system') is None


# ---------------------------------------------------------------- wait conditions


def test_wait_condition_met():
    ds_ready = pod('kube-system', 'kube-proxy-x7k2p', owner=('DaemonSet', 'kube-proxy'))
    ds_starting = pod('kube-system', 'calico-node-5nq8d', owner=('DaemonSet', 'calico-node'), ready=False)
    web = pod('shop', 'web-5d8f7', owner=('ReplicaSet', 'web'), ready=False)
    assert k8s_nodes.wait_condition_met('ready', node(), []) == (True, '')
    assert k8s_nodes.wait_condition_met('ready', node(ready='Unknown'), []) == (False, 'its Ready condition is Unknown')
    assert k8s_nodes.wait_condition_met('not_ready', node(ready='False'), [])[0] is True
    assert k8s_nodes.wait_condition_met('not_ready', node(), []) == (False, 'its Ready condition is still True')
    assert k8s_nodes.wait_condition_met('daemonsets_ready', node(), [ds_ready, web]) == (True, '')
    assert k8s_nodes.wait_condition_met('daemonsets_ready', node(), [ds_ready, ds_starting]) == (
        False, 'DaemonSet pods not Ready: kube-system/calico-node-5nq8d')
    assert k8s_nodes.wait_condition_met('daemonsets_ready', node(ready='False'), [ds_ready])[0] is False
    assert k8s_nodes.wait_condition_met('ready', None) == (False, 'the node does not exist')


# ---------------------------------------------------------------- the lock

T0 = 1714557600.0  # 2024-05-01T10:00:00Z


def lease(holder, renew='2024-05-01T10:00:00.000000Z', duration=600, rv='812'):
    spec = {'acquireTime': '2024-05-01T09:00:00.000000Z', 'renewTime': renew, 'leaseDurationSeconds': duration,
            'leaseTransitions': 2}
    if holder is not None:
        spec['holderIdentity'] = holder
    return {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
            'metadata': {'name': 'nodeops-memcg-kernel-upgrade', 'namespace': 'kube-system', 'resourceVersion': rv,
                         'creationTimestamp': '2024-05-01T09:00:00Z', 'uid': 'a1b2'},
            'spec': spec}


def test_times():
    assert k8s_times.parse_time('2024-05-01T10:00:00Z') == T0
    assert k8s_times.parse_time('2024-05-01T10:00:00.250000Z') == T0 + 0.25
    assert k8s_times.parse_time('2024-05-01T12:00:00+02:00') == T0
    assert k8s_times.parse_time(None) is None and k8s_times.parse_time('') is None
    assert k8s_times.format_time(T0 + 0.5) == '2024-05-01T10:00:00.500000Z'
    with pytest.raises(MemcgError, match='not an RFC 3339 time'):
        k8s_times.parse_time('yesterday')


@pytest.mark.parametrize('existing, now, expected', [
    (None, T0, 'create'),
    (lease('run-1'), T0 + 10, 'renew'),
    (lease('run-1'), T0 + 10000, 'renew'),  # ours, even when expired
    (lease('run-0'), T0 + 599, 'held_by_other'),
    (lease('run-0'), T0 + 601, 'take_over_expired'),
    (lease(None), T0 + 1, 'take_over_expired'),  # released
    (lease(''), T0 + 1, 'take_over_expired'),
    # never renewed: acquireTime (09:00) + 600 s counts
    (lease('run-0', renew=None), T0 - 3300, 'held_by_other'),
    (lease('run-0', renew=None), T0 - 2900, 'take_over_expired'),
])
def test_lease_decision(existing, now, expected):
    assert k8s_lease.lease_decision(existing, 'run-1', now, 3600) == expected


def test_lease_without_times_counts_as_expired():
    stale = lease('run-0', renew=None)
    del stale['spec']['acquireTime']
    assert k8s_lease.lease_decision(stale, 'run-1', T0, 3600) == 'take_over_expired'


def test_lease_state():
    state = k8s_lease.lease_state(lease('run-0'), T0 + 100)
    assert state == {'holder': 'run-0', 'acquire_time': '2024-05-01T09:00:00.000000Z',
                     'renew_time': '2024-05-01T10:00:00.000000Z', 'ttl': 600,
                     'expires_at': '2024-05-01T10:10:00.000000Z', 'expired': False, 'seconds_left': 500,
                     'transitions': 2, 'resource_version': '812'}
    assert k8s_lease.lease_state(None, T0) is None


def test_lease_object_create_renew_take_over():
    created = k8s_lease.lease_object('lock', 'kube-system', 'run-1', 3600, T0)
    assert created['spec'] == {'holderIdentity': 'run-1', 'leaseDurationSeconds': 3600,
                               'acquireTime': '2024-05-01T10:00:00.000000Z',
                               'renewTime': '2024-05-01T10:00:00.000000Z', 'leaseTransitions': 0}
    assert 'resourceVersion' not in created['metadata']
    renewed = k8s_lease.lease_object('lock', 'kube-system', 'run-1', 1800, T0 + 60, previous=lease('run-1'))
    assert renewed['metadata']['resourceVersion'] == '812'
    assert renewed['spec']['acquireTime'] == '2024-05-01T09:00:00.000000Z'
    assert renewed['spec']['renewTime'] == '2024-05-01T10:01:00.000000Z'
    assert renewed['spec']['leaseTransitions'] == 2 and renewed['spec']['leaseDurationSeconds'] == 1800
    taken = k8s_lease.lease_object('lock', 'kube-system', 'run-1', 3600, T0 + 900, previous=lease('run-0'))
    assert taken['metadata']['resourceVersion'] == '812'
    assert taken['spec']['acquireTime'] == '2024-05-01T10:15:00.000000Z'
    assert taken['spec']['leaseTransitions'] == 3


def test_released_lease_keeps_the_precondition_and_history():
    released = k8s_lease.released_lease(lease('run-1'))
    assert 'holderIdentity' not in released['spec']
    assert released['metadata']['resourceVersion'] == '812'
    assert released['spec']['leaseTransitions'] == 2
    assert k8s_lease.lease_decision(released, 'run-2', T0, 60) == 'take_over_expired'


# ---------------------------------------------------------------- module wiring helpers


class FakeModule(object):
    def __init__(self, params, found='/usr/bin/kubectl'):
        self.params = params
        self.found = found
        self.commands = []

    def get_bin_path(self, name):
        return self.found

    def run_command(self, argv, **kwargs):
        self.commands.append((argv, kwargs))
        return 0, '{}', ''


def test_kubectl_for_runs_argument_lists_with_lang_c():
    module = FakeModule({'kubectl': 'kubectl', 'kubeconfig': '/k', 'context': None, 'request_timeout': 5})
    kc = k8s_client.kubectl_for(module)
    kc.create({'kind': 'Lease', 'metadata': {'name': 'x'}})
    argv, kwargs = module.commands[0]
    assert argv[:5] == ['/usr/bin/kubectl', '--kubeconfig', '/k', '--request-timeout', '5s']
    assert kwargs['environ_update']['LANG'] == 'C' and kwargs['check_rc'] is False
    assert json.loads(kwargs['data']) == {'kind': 'Lease', 'metadata': {'name': 'x'}}


def test_kubectl_for_missing_binary():
    with pytest.raises(MemcgError, match="the kubectl binary 'kubectl' was not found in PATH"):
        k8s_client.kubectl_for(FakeModule({'kubectl': 'kubectl'}, found=None))
    with pytest.raises(MemcgError, match='does not exist or is not executable'):
        k8s_client.kubectl_for(FakeModule({'kubectl': '/nonexistent/kubectl'}))


# ---------------------------------------------------------------- transient errors, capped request timeouts


@pytest.mark.parametrize('stderr, transient', [
    ('Error from server (ServiceUnavailable): the server is currently unable to handle the request', True),
    ('Error from server (TooManyRequests): the server has received too many requests', True),
    ('Error from server (InternalError): an error on the server ("etcdserver: leader changed")', True),
    ('Unable to connect to the server: EOF', True),
    ('Get "https://10.0.0.1:6443/api/v1/nodes": read tcp 10.0.0.2:5->10.0.0.1:6443: read: connection reset by peer', True),
    ('The connection to the server 10.0.0.1:6443 was refused - did you specify the right host or port?', True),
    ('Error from server (Forbidden): nodes is forbidden', False),
    ('Error from server (NotFound): nodes "n9" not found', False),
    ('error: context "prod" does not exist', False),
    ('Error from server (BadRequest): invalid field selector', False),
])
def test_is_transient(stderr, transient):
    assert k8s_client.is_transient(k8s_client.map_error(stderr, 'nodes')) is transient


def test_capped_caps_the_request_timeout_at_the_time_left_and_keeps_the_rest():
    client, runner = kube(kubeconfig='/k', context='c', request_timeout=30)
    assert client.capped(12.2).base_argv() == ['/usr/local/bin/kubectl', '--kubeconfig', '/k', '--context', 'c',
                                               '--request-timeout', '13s']
    assert client.capped(100).request_timeout == 30 and client.capped(0.01).request_timeout == 1
    assert kube(request_timeout=0)[0].capped(5).request_timeout == 5


# ---------------------------------------------------------------- quantities, requests, soak


@pytest.mark.parametrize('text, value', [
    ('100m', 0.1), ('2', 2.0), ('1.5', 1.5), ('1Gi', 2 ** 30), ('512Mi', 2 ** 29), ('1G', 1e9), ('1e3', 1000.0),
    ('1E', 1e18), ('250k', 250000.0), ('.5', 0.5), ('', None), (None, None), (3, 3.0),
])
def test_parse_quantity(text, value):
    assert k8s_nodes.parse_quantity(text) == value


@pytest.mark.parametrize('text', ['1.2.3', 'Gi', '5 Gi', '1Xi', 'lots'])
def test_parse_quantity_names_a_bad_value(text):
    with pytest.raises(MemcgError, match='not a Kubernetes quantity: %r' % text):
        k8s_nodes.parse_quantity(text)


def test_pod_requests_follow_the_scheduler_rule():
    pod = {'spec': {
        'containers': [{'resources': {'requests': {'cpu': '250m', 'memory': '256Mi'}}},
                       {'resources': {'limits': {'cpu': '4'}}}],
        'initContainers': [{'resources': {'requests': {'cpu': '2', 'memory': '64Mi'}}},
                           {'restartPolicy': 'Always', 'resources': {'requests': {'cpu': '100m', 'memory': '32Mi'}}}],
        'overhead': {'cpu': '10m', 'memory': '1Mi'}}}
    # cpu: max(250 + 100, 2000 + 100) + 10; memory: max(256 + 32, 64 + 32) + 1 MiB
    assert k8s_nodes.pod_requests(pod) == {'cpu_millis': 2110, 'memory_bytes': 289 * 2 ** 20}
    assert k8s_nodes.pod_requests({}) == {'cpu_millis': 0, 'memory_bytes': 0}


def test_soak_breaks_keeps_the_first_break_of_each_node():
    nodes = {'worker-1': node('worker-1'), 'worker-2': node('worker-2', ready='False')}
    broken = k8s_nodes.soak_breaks(['worker-1', 'worker-2', 'worker-3'], nodes, 4.2, 30)
    assert broken == {'worker-2': 'its Ready condition was False 4s into the 30s soak',
                      'worker-3': 'it was gone from the API 4s into the 30s soak'}
    nodes['worker-2'] = node('worker-2')
    nodes['worker-1'] = node('worker-1', ready='Unknown')
    later = k8s_nodes.soak_breaks(['worker-1', 'worker-2', 'worker-3'], nodes, 9, 30, broken)
    assert later['worker-2'] == broken['worker-2']
    assert later['worker-1'] == 'its Ready condition was Unknown 9s into the 30s soak'
