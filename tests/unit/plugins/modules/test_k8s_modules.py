# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""k8s_node, k8s_node_info and k8s_cluster_lock with a fake kubectl: argv in, canned API answers out."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import json
from unittest import mock

import pytest
import yaml

from ansible.module_utils import basic

from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import nodes as k8s_nodes
from ansible_collections.nodeops.memcg.plugins.modules import k8s_cluster_lock, k8s_node, k8s_node_info
from ansible_collections.nodeops.memcg.tests.unit.utils.module_harness import run_module

KUBECTL = '/usr/local/bin/kubectl'
# kubectl flags the wrappers pass with a separate value
VALUED = ('--namespace', '--field-selector', '--selector', '--output', '--type', '--patch', '--timeout',
          '--grace-period', '--for', '--filename')
MUTATING = ('patch', 'create', 'replace', 'delete', 'drain', 'cordon', 'uncordon', 'annotate', 'apply')
T0 = 1714557600.0  # 2024-05-01T10:00:00Z

API_V1 = {'kind': 'APIResourceList', 'groupVersion': 'v1', 'resources': [
    {'name': 'nodes', 'namespaced': False, 'kind': 'Node', 'verbs': ['get', 'list', 'patch']},
    {'name': 'pods', 'namespaced': True, 'kind': 'Pod', 'verbs': ['create', 'delete', 'get', 'list']},
    {'name': 'pods/eviction', 'namespaced': True, 'group': 'policy', 'version': 'v1', 'kind': 'Eviction',
     'verbs': ['create']}]}

PLURAL = {'node': 'nodes', 'nodes': 'nodes', 'pod': 'pods', 'pods': 'pods',
          'poddisruptionbudgets': 'poddisruptionbudgets', 'pdb': 'poddisruptionbudgets',
          'leases.coordination.k8s.io': 'leases', 'lease': 'leases'}
SINGULAR = {'nodes': 'nodes', 'pods': 'pods', 'poddisruptionbudgets': 'poddisruptionbudgets.policy',
            'leases': 'leases.coordination.k8s.io'}


def make_node(name, ready=True, unschedulable=False, annotations=None, labels=None, kernel='3.10.0-1160.el7.x86_64'):
    obj = {'apiVersion': 'v1', 'kind': 'Node',
           'metadata': {'name': name, 'resourceVersion': '100', 'annotations': dict(annotations or {}),
                        'labels': dict({'kubernetes.io/hostname': name}, **(labels or {}))},
           'spec': {'podCIDR': '10.244.1.0/24'},
           'status': {'conditions': [{'type': 'Ready', 'status': 'True' if ready else 'False',
                                      'reason': 'KubeletReady' if ready else 'KubeletNotReady'}],
                      'nodeInfo': {'kernelVersion': kernel, 'kubeletVersion': 'v1.27.13',
                                   'osImage': 'CentOS Linux 7 (Core)'}}}
    if unschedulable:
        obj['spec']['unschedulable'] = True
    return obj


def make_pod(namespace, name, node_name, labels=None, owner=None, ready=True):
    meta = {'namespace': namespace, 'name': name, 'labels': labels or {}, 'resourceVersion': '50'}
    if owner:
        meta['ownerReferences'] = [{'apiVersion': 'apps/v1', 'kind': owner[0], 'name': owner[1], 'controller': True}]
    return {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': meta, 'spec': {'nodeName': node_name},
            'status': {'phase': 'Running', 'conditions': [{'type': 'Ready', 'status': 'True' if ready else 'False'}]}}


def make_pdb(namespace, name, match_labels, allowed):
    return {'apiVersion': 'policy/v1', 'kind': 'PodDisruptionBudget',
            'metadata': {'namespace': namespace, 'name': name, 'resourceVersion': '60'},
            'spec': {'minAvailable': 1, 'selector': {'matchLabels': match_labels}},
            'status': {'disruptionsAllowed': allowed, 'currentHealthy': 1, 'desiredHealthy': 1, 'expectedPods': 1}}


def make_lease(holder, renew, duration=600, rv='812', namespace='kube-system', name='nodeops-memcg-kernel-upgrade'):
    spec = {'acquireTime': renew, 'renewTime': renew, 'leaseDurationSeconds': duration, 'leaseTransitions': 1}
    if holder:
        spec['holderIdentity'] = holder
    return {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
            'metadata': {'name': name, 'namespace': namespace, 'resourceVersion': rv}, 'spec': spec}


def merge(target, patch):
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def server_error(reason, text):
    return 1, '', 'Error from server (%s): %s\n' % (reason, text)


class FakeKubectl(object):
    """Answers kubectl argv from an in-memory cluster, the way kubectl prints the API's answers."""

    def __init__(self, nodes=(), pods=(), pdbs=(), leases=(), eviction=True):
        self.store = {}
        for obj in list(nodes) + list(pods) + list(pdbs) + list(leases):
            self.put(copy.deepcopy(obj))
        self.eviction = eviction
        self.calls = []  # argv as kubectl reads it: the names after '--' back in their place
        self.raw_calls = []  # argv as given
        self.drain_answer = None
        self.before_write = None  # called with (verb, argv) before a write is applied: simulate races
        self.rv = 1000

    @staticmethod
    def key(obj):
        plural = {'Node': 'nodes', 'Pod': 'pods', 'PodDisruptionBudget': 'poddisruptionbudgets',
                  'Lease': 'leases'}[obj['kind']]
        return plural, obj['metadata'].get('namespace'), obj['metadata']['name']

    def put(self, obj):
        self.store[self.key(obj)] = obj

    def bump(self, obj):
        self.rv += 1
        obj['metadata']['resourceVersion'] = str(self.rv)
        return obj

    def mutating(self):
        return [argv for argv, _data in self.calls if argv[0] in MUTATING and '--dry-run=server' not in argv]

    def verbs(self):
        return [argv[0] for argv, _data in self.calls]

    def __call__(self, argv, data=None):
        assert isinstance(argv, list) and argv[0] == KUBECTL, argv
        args = list(argv[1:])
        for flag in ('--kubeconfig', '--context', '--request-timeout'):
            if flag in args:
                index = args.index(flag)
                del args[index:index + 2]
        self.raw_calls.append(list(args))
        args = self.positional_first(args)
        self.calls.append((args, data))
        verb = args[0]
        if self.before_write and verb in MUTATING:
            self.before_write(verb, args)
        return getattr(self, 'do_' + verb)(args, data)

    @staticmethod
    def positional_first(args):
        """Move what follows '--' (the names) to where the answers look for it; every name must be there."""
        verb = args[0]
        if verb in ('create', 'replace') or (verb == 'get' and args[1] == '--raw'):
            return args  # no name: the object comes on stdin, the path is ours
        named = 2 if verb in ('get', 'patch', 'delete') else 1
        if '--' not in args:
            assert verb == 'get', 'a name must follow --: %r' % args  # get lists without a name
            return args
        dash = args.index('--')
        assert not [arg for arg in args[named:dash] if not arg.startswith('-') and
                    args[args.index(arg) - 1] not in VALUED], 'a positional argument before --: %r' % args
        return args[:named] + args[dash + 1:] + args[named:dash]

    @staticmethod
    def option(args, flag):
        return args[args.index(flag) + 1] if flag in args else None

    def do_get(self, args, data):
        if args[1] == '--raw':
            assert args[2] == '/api/v1'
            api = copy.deepcopy(API_V1)
            if not self.eviction:
                api['resources'].pop()
            return 0, json.dumps(api), ''
        plural = PLURAL[args[1]]
        name = args[2] if not args[2].startswith('-') else None
        namespace = self.option(args, '--namespace')
        if name is not None:
            obj = self.store.get((plural, namespace, name))
            if obj is None:
                return server_error('NotFound', '%s "%s" not found' % (SINGULAR[plural], name))
            return 0, json.dumps(obj), ''
        selector = self.option(args, '--field-selector')
        items = []
        for (kind, ns, _name), obj in sorted(self.store.items(), key=lambda kv: tuple(str(p) for p in kv[0])):
            if kind != plural or ('--all-namespaces' not in args and ns != namespace):
                continue
            if selector:
                field, value = selector.split('=', 1)
                assert field == 'spec.nodeName'
                if obj['spec'].get('nodeName') != value:
                    continue
            labels = self.option(args, '--selector')
            if labels:  # key=value only
                key, value = labels.split('=', 1)
                if (obj['metadata'].get('labels') or {}).get(key) != value:
                    continue
            items.append(obj)
        return 0, json.dumps({'apiVersion': 'v1', 'kind': 'List', 'metadata': {'resourceVersion': ''},
                              'items': items}), ''

    def do_patch(self, args, data):
        plural, name = PLURAL[args[1]], args[2]
        assert self.option(args, '--type') == 'merge'
        patch = json.loads(self.option(args, '--patch'))
        obj = self.store.get((plural, None, name))
        if obj is None:
            return server_error('NotFound', '%s "%s" not found' % (plural, name))
        wanted_rv = (patch.get('metadata') or {}).get('resourceVersion')
        if wanted_rv and wanted_rv != obj['metadata']['resourceVersion']:
            return server_error('Conflict', 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                                'please apply your changes to the latest version and try again' % (plural, name))
        new = self.bump(merge(obj, patch))
        self.put(new)
        return 0, json.dumps(new), ''

    def do_create(self, args, data):
        obj = json.loads(data)
        key = self.key(obj)
        if key in self.store:
            return server_error('AlreadyExists', 'error when creating "STDIN": %s "%s" already exists'
                                % (SINGULAR[key[0]], key[2]))
        self.put(self.bump(obj))
        return 0, json.dumps(obj), ''

    def do_replace(self, args, data):
        obj = json.loads(data)
        key = self.key(obj)
        current = self.store.get(key)
        if current is None:
            return server_error('NotFound', '%s "%s" not found' % (SINGULAR[key[0]], key[2]))
        if obj['metadata'].get('resourceVersion') != current['metadata']['resourceVersion']:
            return server_error('Conflict', 'Operation cannot be fulfilled on %s "%s": the object has been '
                                'modified; please apply your changes to the latest version and try again'
                                % (SINGULAR[key[0]], key[2]))
        self.put(self.bump(obj))
        return 0, json.dumps(obj), ''

    def do_drain(self, args, data):
        if self.drain_answer is not None:
            return self.drain_answer
        name = args[1]
        suffix = ' (server dry run)' if '--dry-run=server' in args else ''
        out = ['node/%s cordoned%s' % (name, suffix)]
        for (kind, ns, pod_name), obj in sorted(self.store.items(), key=lambda kv: tuple(str(p) for p in kv[0])):
            if kind == 'pods' and obj['spec'].get('nodeName') == name:
                out.append('evicting pod %s/%s%s' % (ns, pod_name, suffix))
        out.append('node/%s drained%s' % (name, suffix))
        return 0, '\n'.join(out) + '\n', ''


@pytest.fixture
def cluster():
    """Patch AnsibleModule so that run_command goes to a FakeKubectl; yields a factory."""
    holder = {}

    def factory(**kwargs):
        holder['fake'] = FakeKubectl(**kwargs)
        return holder['fake']

    def run_command(self, args, **kwargs):
        assert kwargs.get('environ_update', {}).get('LANG') == 'C'
        return holder['fake'](args, data=kwargs.get('data'))

    with mock.patch.object(basic.AnsibleModule, 'run_command', run_command), \
            mock.patch.object(basic.AnsibleModule, 'get_bin_path', lambda self, name, *a, **k: KUBECTL):
        yield factory


def run(main, args, check_mode=False, diff=False):
    args = dict(args)
    if diff:
        args['_ansible_diff'] = True
    return run_module(main, args, check_mode=check_mode)


def node_args(**kwargs):
    args = {'name': 'worker-1', 'kubeconfig': '/etc/nodeops/kubeconfig'}
    args.update(kwargs)
    return args


def documented(module):
    return set(yaml.safe_load(module.RETURN))


# ================================================================ k8s_node


def test_cordon_annotates_and_cordons_once(cluster):
    fake = cluster(nodes=[make_node('worker-1')])
    result, failed = run(k8s_node.main, node_args(state='cordoned', run_id='run-1'))
    assert not failed, result['msg']
    assert result['changed'] is True and result['unschedulable'] is True and result['cordoned_by'] == 'run-1'
    assert result['admin_cordoned'] is False and result['cordon_owner'] is None
    assert result['before'] == {'unschedulable': False, 'annotations': {}}
    assert result['after'] == {'unschedulable': True, 'annotations': {k8s_nodes.CORDONED_BY: 'run-1'}}
    patch_argv = fake.mutating()
    assert len(patch_argv) == 1
    assert patch_argv[0][:6] == ['patch', 'node', 'worker-1', '--type', 'merge', '--patch']
    assert json.loads(patch_argv[0][6]) == {'metadata': {'annotations': {k8s_nodes.CORDONED_BY: 'run-1'},
                                                         'resourceVersion': '100'},
                                            'spec': {'unschedulable': True}}
    assert set(result) <= documented(k8s_node)
    # re-run: already cordoned by this run, nothing to do
    result, failed = run(k8s_node.main, node_args(state='cordoned', run_id='run-1'))
    assert not failed and result['changed'] is False and result['cordon_owner'] == 'this_run'
    assert len(fake.mutating()) == 1


def test_cordon_check_mode_changes_nothing(cluster):
    fake = cluster(nodes=[make_node('worker-1')])
    result, failed = run(k8s_node.main, node_args(state='cordoned', run_id='run-1'), check_mode=True, diff=True)
    assert not failed
    assert result['changed'] is True and result['unschedulable'] is True
    assert result['diff'] == {'before': {'unschedulable': False, 'annotations': {}},
                              'after': {'unschedulable': True, 'annotations': {k8s_nodes.CORDONED_BY: 'run-1'}}}
    assert fake.mutating() == [] and set(fake.verbs()) == {'get'}
    assert 'unschedulable' not in fake.store[('nodes', None, 'worker-1')]['spec']


def test_admin_cordoned_node_is_left_alone(cluster):
    fake = cluster(nodes=[make_node('worker-1', unschedulable=True)])
    for state in ('cordoned', 'uncordoned'):
        result, failed = run(k8s_node.main, node_args(state=state, run_id='run-1'))
        assert not failed
        assert result['changed'] is False and result['admin_cordoned'] is True and result['cordon_owner'] == 'admin'
        assert result['unschedulable'] is True and result['cordoned_by'] is None
    assert result['left_cordoned'] is True
    assert result['left_cordoned_reason'] == 'cordoned by an admin (no nodeops.memcg/cordoned-by annotation); left cordoned'
    assert fake.mutating() == []
    assert fake.store[('nodes', None, 'worker-1')]['metadata']['annotations'] == {}


def test_uncordon_only_our_own_cordon(cluster):
    fake = cluster(nodes=[make_node('worker-1', unschedulable=True, annotations={k8s_nodes.CORDONED_BY: 'run-1'})])
    result, failed = run(k8s_node.main, node_args(state='uncordoned', run_id='run-2'))
    assert not failed and result['changed'] is False
    assert result['left_cordoned'] is True and result['cordon_owner'] == 'other_run'
    assert result['left_cordoned_reason'] == 'cordoned by run run-1, not by this run (run-2); left cordoned'
    assert fake.mutating() == []

    result, failed = run(k8s_node.main, node_args(state='uncordoned', run_id='run-1'), check_mode=True)
    assert not failed and result['changed'] is True and result['unschedulable'] is False
    assert fake.mutating() == []

    result, failed = run(k8s_node.main, node_args(state='uncordoned', run_id='run-1'))
    assert not failed and result['changed'] is True and result['left_cordoned'] is False
    assert result['unschedulable'] is False and result['cordoned_by'] is None
    assert json.loads(fake.mutating()[0][6]) == {
        'metadata': {'annotations': {k8s_nodes.CORDONED_BY: None}, 'resourceVersion': '100'},
        'spec': {'unschedulable': None}}
    stored = fake.store[('nodes', None, 'worker-1')]
    assert 'unschedulable' not in stored['spec'] and stored['metadata']['annotations'] == {}

    result, failed = run(k8s_node.main, node_args(state='uncordoned', run_id='run-1'))
    assert not failed and result['changed'] is False and len(fake.mutating()) == 1


def test_adopt_takes_over_an_earlier_runs_cordon_and_failure_then_uncordons(cluster):
    fake = cluster(nodes=[make_node('worker-1', unschedulable=True, annotations={
        k8s_nodes.CORDONED_BY: 'run-1', k8s_nodes.FAILURE: 'drain blocked', k8s_nodes.FAILURE_RUN: 'run-1'})])
    result, failed = run(k8s_node.main, node_args(state='cordoned', run_id='run-2'))
    assert not failed and result['changed'] is False and result['cordon_owner'] == 'other_run'
    assert fake.mutating() == []  # without adopt another run's cordon is left as it is

    result, failed = run(k8s_node.main, node_args(state='cordoned', run_id='run-2', adopt=True))
    assert not failed and result['changed'] is True and result['cordoned_by'] == 'run-2'
    assert fake.store[('nodes', None, 'worker-1')]['metadata']['annotations'] == {
        k8s_nodes.CORDONED_BY: 'run-2', k8s_nodes.FAILURE: 'drain blocked', k8s_nodes.FAILURE_RUN: 'run-2'}

    result, failed = run(k8s_node.main, node_args(state='uncordoned', run_id='run-2'))
    assert not failed and result['changed'] is True and result['unschedulable'] is False
    assert fake.store[('nodes', None, 'worker-1')]['metadata']['annotations'] == {}


def test_adopt_never_takes_an_admin_cordon(cluster):
    fake = cluster(nodes=[make_node('worker-1', unschedulable=True)])
    result, failed = run(k8s_node.main, node_args(state='cordoned', run_id='run-2', adopt=True))
    assert not failed and result['changed'] is False and result['admin_cordoned'] is True
    assert fake.mutating() == []


def test_uncordon_removes_this_runs_stale_failure(cluster):
    fake = cluster(nodes=[make_node('worker-1', unschedulable=True, annotations={
        k8s_nodes.CORDONED_BY: 'run-1', k8s_nodes.FAILURE: 'not Ready after reboot', k8s_nodes.FAILURE_RUN: 'run-1'})])
    result, failed = run(k8s_node.main, node_args(state='uncordoned', run_id='run-1'))
    assert not failed and result['changed'] is True
    assert fake.store[('nodes', None, 'worker-1')]['metadata']['annotations'] == {}


def test_failed_annotates_and_keeps_the_cordon(cluster):
    fake = cluster(nodes=[make_node('worker-1', unschedulable=True, annotations={k8s_nodes.CORDONED_BY: 'run-1'})])
    args = node_args(state='failed', run_id='run-1', reason='node not Ready 600 s after reboot')
    result, failed = run(k8s_node.main, args, check_mode=True)
    assert not failed and result['changed'] is True and fake.mutating() == []
    result, failed = run(k8s_node.main, args)
    assert not failed and result['changed'] is True and result['unschedulable'] is True
    assert fake.store[('nodes', None, 'worker-1')]['metadata']['annotations'] == {
        k8s_nodes.CORDONED_BY: 'run-1', k8s_nodes.FAILURE: 'node not Ready 600 s after reboot', k8s_nodes.FAILURE_RUN: 'run-1'}
    result, failed = run(k8s_node.main, args)
    assert not failed and result['changed'] is False and len(fake.mutating()) == 1


def test_progress_is_recorded_only_on_our_cordon_and_removed_by_the_uncordon(cluster):
    fake = cluster(nodes=[make_node('worker-1', unschedulable=True, annotations={k8s_nodes.CORDONED_BY: 'run-1'}),
                          make_node('worker-2', unschedulable=True)])
    args = node_args(state='progress', run_id='run-1', step='booted', target='5.4.225-1.el7.elrepo.x86_64')
    result, failed = run(k8s_node.main, args, check_mode=True)
    assert not failed and result['changed'] is True and fake.mutating() == []
    result, failed = run(k8s_node.main, args)
    assert not failed and result['changed'] is True
    assert fake.store[('nodes', None, 'worker-1')]['metadata']['annotations'] == {
        k8s_nodes.CORDONED_BY: 'run-1', k8s_nodes.STEP: 'booted', k8s_nodes.TARGET: '5.4.225-1.el7.elrepo.x86_64'}
    result, failed = run(k8s_node.main, args)
    assert not failed and result['changed'] is False and len(fake.mutating()) == 1
    # an admin's cordon (or another run's) is not this run's to annotate
    result, failed = run(k8s_node.main, dict(args, name='worker-2'))
    assert not failed and result['changed'] is False and len(fake.mutating()) == 1
    result, failed = run(k8s_node.main, node_args(state='uncordoned', run_id='run-1'))
    assert not failed and fake.store[('nodes', None, 'worker-1')]['metadata']['annotations'] == {}


@pytest.mark.parametrize('args, message', [
    ({'state': 'progress', 'run_id': 'r'}, 'state is progress but all of the following are missing: step'),
    ({'state': 'progress', 'run_id': 'r', 'step': 'rebooted'}, 'value of step must be one of'),
    ({'state': 'cordoned'}, 'state is cordoned but all of the following are missing: run_id'),
    ({'state': 'drained'}, 'state is drained but all of the following are missing: run_id'),
    ({'state': 'uncordoned'}, 'state is uncordoned but all of the following are missing: run_id'),
    ({'state': 'failed'}, 'state is failed but all of the following are missing: reason'),
    ({"state": "cordoned", "run_id": "  "}, "run_id must be letters, digits and"),
    ({'state': 'drained', 'run_id': 'r', 'timeout': 0}, 'timeout must be a positive number of seconds, got 0'),
    ({'state': 'evicted', 'run_id': 'r'}, 'value of state must be one of'),
])
def test_bad_input(cluster, args, message):
    fake = cluster(nodes=[make_node('worker-1')])
    result, failed = run(k8s_node.main, node_args(**args))
    assert failed and message in result['msg']
    assert fake.calls == []


def test_missing_node_fails_naming_it(cluster):
    cluster(nodes=[])
    result, failed = run(k8s_node.main, node_args(name='worker-9', state='cordoned', run_id='run-1'))
    assert failed
    assert result['msg'].startswith('node worker-9 not found: Error from server (NotFound)')


def test_conflict_rereads_and_respects_an_admin_cordon_made_meanwhile(cluster):
    fake = cluster(nodes=[make_node('worker-1')])

    def admin_cordons_first(verb, args):
        node = fake.store[('nodes', None, 'worker-1')]
        if 'unschedulable' not in node['spec']:
            fake.put(fake.bump(merge(node, {'spec': {'unschedulable': True}})))
    fake.before_write = admin_cordons_first
    result, failed = run(k8s_node.main, node_args(state='cordoned', run_id='run-1'))
    assert not failed
    assert result['admin_cordoned'] is True and result['changed'] is False
    assert fake.store[('nodes', None, 'worker-1')]['metadata']['annotations'] == {}
    assert fake.verbs() == ['get', 'patch', 'get']


POD_WEB = make_pod('shop', 'web-5d8f7', 'worker-1', {'app': 'web'}, ('ReplicaSet', 'web-5d8f7c9b'))
POD_API = make_pod('shop', 'api-7c9b4', 'worker-1', {'app': 'api'}, ('ReplicaSet', 'api-7c9b'))
POD_PROXY = make_pod('kube-system', 'kube-proxy-x7k2p', 'worker-1', {'k8s-app': 'kube-proxy'},
                     ('DaemonSet', 'kube-proxy'))
PDB_WEB = make_pdb('shop', 'web-pdb', {'app': 'web'}, 0)


def test_drain_cordons_as_ours_then_drains(cluster):
    fake = cluster(nodes=[make_node('worker-1')], pods=[POD_WEB, POD_API])
    result, failed = run(k8s_node.main, node_args(state='drained', run_id='run-1', timeout=120))
    assert not failed, result['msg']
    assert result['changed'] is True and result['cordoned_by'] == 'run-1' and result['dry_run'] is False
    assert result['evicted'] == ['shop/api-7c9b4', 'shop/web-5d8f7'] and result['blocking'] == []
    assert fake.verbs() == ['get', 'patch', 'get', 'drain']
    assert fake.calls[2][0] == ['get', '--raw', '/api/v1']
    assert fake.calls[3][0] == ['drain', 'worker-1', '--timeout', '120s', '--grace-period', '-1',
                                '--ignore-daemonsets', '--delete-emptydir-data']
    assert set(result) <= documented(k8s_node)


def test_drain_check_mode_is_a_server_side_dry_run(cluster):
    fake = cluster(nodes=[make_node('worker-1')], pods=[POD_WEB])
    result, failed = run(k8s_node.main, node_args(state='drained', run_id='run-1'), check_mode=True)
    assert not failed
    assert result['changed'] is True and result['dry_run'] is True and result['evicted'] == ['shop/web-5d8f7']
    assert fake.mutating() == []
    assert fake.calls[-1][0][-1] == '--dry-run=server'
    assert 'unschedulable' not in fake.store[('nodes', None, 'worker-1')]['spec']


def test_drain_of_a_drained_node_changes_nothing(cluster):
    fake = cluster(nodes=[make_node('worker-1', unschedulable=True, annotations={k8s_nodes.CORDONED_BY: 'run-1'})])
    fake.drain_answer = (0, 'node/worker-1 already cordoned\nnode/worker-1 drained\n', '')
    result, failed = run(k8s_node.main, node_args(state='drained', run_id='run-1'))
    assert not failed and result['changed'] is False and result['evicted'] == []


def test_drain_refused_by_a_pdb_names_the_pod_and_the_budget(cluster):
    fake = cluster(nodes=[make_node('worker-1')], pods=[POD_WEB, POD_API, POD_PROXY],
                   pdbs=[PDB_WEB, make_pdb('shop', 'api-pdb', {'app': 'api'}, 1)])
    fake.drain_answer = (1, 'node/worker-1 cordoned\nevicting pod shop/web-5d8f7\nevicting pod shop/api-7c9b4\n'
                            'pod/api-7c9b4 evicted\nevicting pod shop/web-5d8f7\n',
                         'Warning: ignoring DaemonSet-managed Pods: kube-system/kube-proxy-x7k2p\n'
                         'error when evicting pods/"web-5d8f7" -n "shop" (will retry after 5s): Cannot evict pod as '
                         'it would violate the pod\'s disruption budget.\n'
                         'There are pending pods in node "worker-1" when an error occurred: error when evicting '
                         'pods/"web-5d8f7" -n "shop": global timeout reached: 12s\npod/web-5d8f7\n'
                         'error: unable to drain node "worker-1" due to error: error when evicting pods/"web-5d8f7" '
                         '-n "shop": global timeout reached: 12s, continuing command...\n'
                         'There are pending nodes to be drained:\n worker-1\n'
                         'error when evicting pods/"web-5d8f7" -n "shop": global timeout reached: 12s\n')
    result, failed = run(k8s_node.main, node_args(state='drained', run_id='run-1', timeout=12))
    assert failed
    assert result['msg'] == ('drain of node worker-1 failed (drain timeout 12s): shop/web-5d8f7: blocked by '
                             'PodDisruptionBudget web-pdb. The node stays cordoned (nodeops.memcg/cordoned-by=run-1).')
    assert result['blocking'] == [{'namespace': 'shop', 'pod': 'web-5d8f7', 'reason': 'pdb', 'pdbs': ['web-pdb'],
                                   'message': "Cannot evict pod as it would violate the pod's disruption budget."}]
    assert result['evicted'] == ['shop/api-7c9b4']
    assert result['ignored_daemonset_pods'] == ['kube-system/kube-proxy-x7k2p']
    assert result['changed'] is True  # cordoned, and one pod went
    assert ['get', 'poddisruptionbudgets', '--namespace', 'shop', '--output', 'json'] in [c[0] for c in fake.calls]
    stored = fake.store[('nodes', None, 'worker-1')]
    assert stored['spec']['unschedulable'] is True and stored['metadata']['annotations'] == {k8s_nodes.CORDONED_BY: 'run-1'}


def test_drain_refused_without_rbac_for_budgets_still_names_the_pod(cluster):
    fake = cluster(nodes=[make_node('worker-1')], pods=[POD_WEB], pdbs=[PDB_WEB])
    fake.drain_answer = (1, '', 'error when evicting pods/"web-5d8f7" -n "shop" (will retry after 5s): Cannot evict '
                                'pod as it would violate the pod\'s disruption budget.\n')
    plain_get = fake.do_get

    def forbidden_pdbs(args, data):
        if args[1] == 'poddisruptionbudgets':
            return server_error('Forbidden', 'poddisruptionbudgets.policy is forbidden: User "ops" cannot list '
                                'resource "poddisruptionbudgets" in API group "policy" in the namespace "shop"')
        return plain_get(args, data)
    fake.do_get = forbidden_pdbs
    result, failed = run(k8s_node.main, node_args(state='drained', run_id='run-1', timeout=12))
    assert failed and 'shop/web-5d8f7: refused by a PodDisruptionBudget' in result['msg']
    assert result['blocking'][0]['pdbs'] == []
    assert 'could not list the PodDisruptionBudgets: not allowed to access poddisruptionbudgets in namespace shop' in \
        result['blocking'][0]['message']


def test_drain_refused_bare_pod_needs_no_pdb_lookup(cluster):
    fake = cluster(nodes=[make_node('worker-1', unschedulable=True)])
    fake.drain_answer = (1, '', 'error: unable to drain node "worker-1" due to error: cannot delete cannot delete Pods '
                                'that declare no controller (use --force to override): default/bare, continuing '
                                'command...\nThere are pending nodes to be drained:\n worker-1\n')
    result, failed = run(k8s_node.main, node_args(state='drained', run_id='run-1'), check_mode=True)
    assert failed
    assert result['msg'] == ('drain of node worker-1 would fail (server-side dry run): default/bare: a bare pod '
                             'without controller, force=true would delete it. Check mode: nothing was changed.')
    assert result['blocking'][0]['reason'] == 'no_controller' and result['admin_cordoned'] is True
    assert 'poddisruptionbudgets' not in [c[0][1] for c in fake.calls]
    assert fake.mutating() == []


def test_drain_without_eviction_api_refuses_to_delete(cluster):
    fake = cluster(nodes=[make_node('worker-1')], eviction=False)
    result, failed = run(k8s_node.main, node_args(state='drained', run_id='run-1'))
    assert failed
    assert 'does not advertise the pods/eviction subresource' in result['msg']
    assert 'drain' not in fake.verbs()


def test_drain_disable_eviction_and_force_are_passed_through(cluster):
    fake = cluster(nodes=[make_node('worker-1')])
    result, failed = run(k8s_node.main, node_args(state='drained', run_id='run-1', disable_eviction=True, force=True,
                                                  grace_period=30, delete_emptydir_data=False,
                                                  ignore_daemonsets=False))
    assert not failed
    assert fake.calls[-1][0] == ['drain', 'worker-1', '--timeout', '600s', '--grace-period', '30', '--force',
                                 '--disable-eviction']
    assert ['get', '--raw', '/api/v1'] not in [c[0] for c in fake.calls]


def test_connection_refused(cluster):
    fake = cluster(nodes=[])
    fake.do_get = lambda args, data: (1, '', 'The connection to the server 127.0.0.1:6443 was refused - did you '
                                             'specify the right host or port?\n')
    result, failed = run(k8s_node.main, node_args(state='cordoned', run_id='run-1'))
    assert failed and result['msg'].startswith('cannot reach the Kubernetes API server while accessing node worker-1')


# ================================================================ k8s_node_info


def info_cluster(cluster):
    return cluster(nodes=[make_node('cp-1', labels={'node-role.kubernetes.io/control-plane': ''}),
                          make_node('worker-1', kernel='5.4.0-150-generic'),
                          make_node('worker-2', ready=False, unschedulable=True,
                                    annotations={k8s_nodes.CORDONED_BY: 'run-1'})],
                   pods=[POD_WEB, POD_PROXY])


def test_node_info_all_nodes(cluster):
    fake = info_cluster(cluster)
    result, failed = run(k8s_node_info.main, {}, check_mode=True)
    assert not failed
    assert [n['name'] for n in result['nodes']] == ['cp-1', 'worker-1', 'worker-2']
    assert result['control_plane'] == ['cp-1'] and result['not_ready'] == ['worker-2']
    assert result['unschedulable'] == ['worker-2'] and result['missing'] == [] and result['wait'] is None
    assert result['nodes'][1]['kernel_version'] == '5.4.0-150-generic'
    assert result['nodes'][2]['cordoned_by'] == 'run-1'
    assert result['changed'] is False and fake.mutating() == []
    assert fake.calls == [(['get', 'nodes', '--output', 'json'], None)]
    assert set(result) - {'changed'} <= documented(k8s_node_info)


def test_node_info_named_with_pods(cluster):
    fake = info_cluster(cluster)
    result, failed = run(k8s_node_info.main, {'names': ['worker-1', 'worker-9'], 'include_pods': True})
    assert not failed
    assert [n['name'] for n in result['nodes']] == ['worker-1'] and result['missing'] == ['worker-9']
    assert result['nodes'][0]['pods'] == [
        {'namespace': 'kube-system', 'name': 'kube-proxy-x7k2p', 'owner_kind': 'DaemonSet',
         'owner_name': 'kube-proxy', 'phase': 'Running', 'ready': True, 'mirror': False,
         'requests': {'cpu_millis': 0, 'memory_bytes': 0}},
        {'namespace': 'shop', 'name': 'web-5d8f7', 'owner_kind': 'ReplicaSet', 'owner_name': 'web-5d8f7c9b',
         'phase': 'Running', 'ready': True, 'mirror': False, 'requests': {'cpu_millis': 0, 'memory_bytes': 0}}]
    assert fake.calls[1][0] == ['get', 'pods', '--all-namespaces', '--field-selector', 'spec.nodeName=worker-1',
                                '--output', 'json']


def test_node_info_pod_selector_lists_the_matching_pods_of_the_cluster_once(cluster):
    backup = make_pod('db', 'backup-1', 'worker-2', labels={'app': 'backup'}, owner=('Job', 'backup'))
    fake = cluster(nodes=[make_node('worker-1'), make_node('worker-2'), make_node('worker-3')],
                   pods=[POD_WEB, POD_PROXY, backup])
    result, failed = run(k8s_node_info.main, {'names': ['worker-1', 'worker-2'], 'pod_selector': 'app=backup'})
    assert not failed, result['msg']
    assert [[p['name'] for p in n['pods']] for n in result['nodes']] == [[], ['backup-1']]
    assert fake.calls[1][0] == ['get', 'pods', '--all-namespaces', '--selector', 'app=backup', '--output', 'json']
    assert len(fake.calls) == 2  # nodes, then one list of pods for both nodes


def test_node_info_pods_of_many_nodes_come_from_one_list_with_their_requests(cluster):
    web = make_pod('shop', 'web-big', 'worker-1', owner=('ReplicaSet', 'web'))
    web['spec']['containers'] = [{'name': 'a', 'resources': {'requests': {'cpu': '250m', 'memory': '1Gi'}}},
                                 {'name': 'b', 'resources': {'requests': {'cpu': '0.5', 'memory': '512Mi'}}}]
    fake = cluster(nodes=[make_node('worker-1'), make_node('worker-2')], pods=[web, POD_PROXY])
    result, failed = run(k8s_node_info.main, {'include_pods': True})
    assert not failed, result['msg']
    assert fake.calls[1][0] == ['get', 'pods', '--all-namespaces', '--output', 'json'] and len(fake.calls) == 2
    pods = dict((p['name'], p) for node in result['nodes'] for p in node['pods'])
    assert pods['web-big']['requests'] == {'cpu_millis': 750, 'memory_bytes': 1536 * 2 ** 20}


def test_node_info_bad_pod_selector_is_refused_before_kubectl_runs(cluster):
    fake = cluster(nodes=[])
    result, failed = run(k8s_node_info.main, {'pod_selector': 'app=backup,,--server=evil'})
    assert failed and result['msg'].startswith("pod_selector is not a label selector: 'app=backup,,--server=evil' does not parse")
    assert fake.calls == []


class Clock(object):
    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_node_info_waits_until_ready(cluster):
    fake = info_cluster(cluster)
    clock = Clock()

    def sleep(seconds):
        clock.sleep(seconds)
        if len(clock.slept) == 2:  # the kubelet comes back
            node = fake.store[('nodes', None, 'worker-2')]
            node['status']['conditions'][0]['status'] = 'True'
    with mock.patch.object(k8s_node_info.time, 'time', clock.time), \
            mock.patch.object(k8s_node_info.time, 'sleep', sleep):
        result, failed = run(k8s_node_info.main, {'names': ['worker-2'], 'wait_for': 'ready', 'timeout': 60})
    assert not failed, result['msg']
    assert result['wait'] == {'condition': 'ready', 'timeout': 60, 'met': True, 'polls': 3, 'seconds': 6.0,
                              'api_errors': 0}
    assert result['not_ready'] == []


def test_node_info_wait_times_out_naming_node_condition_and_timeout(cluster):
    fake = info_cluster(cluster)
    fake.store[('pods', 'kube-system', 'kube-proxy-x7k2p')]['status']['conditions'][0]['status'] = 'False'
    clock = Clock()
    with mock.patch.object(k8s_node_info.time, 'time', clock.time), \
            mock.patch.object(k8s_node_info.time, 'sleep', clock.sleep):
        result, failed = run(k8s_node_info.main, {'names': ['worker-1', 'worker-2'], 'wait_for': 'daemonsets_ready',
                                                  'timeout': 10})
    assert failed
    assert result['msg'] == ('timed out after 10s waiting for daemonsets_ready on 2 node(s): node worker-1: '
                             'DaemonSet pods not Ready: kube-system/kube-proxy-x7k2p; node worker-2: its Ready '
                             'condition is False')
    assert sum(clock.slept) == 10


BLIPS = [
    server_error('ServiceUnavailable', 'the server is currently unable to handle the request'),
    server_error('TooManyRequests', 'the server has received too many requests and has asked us to try again later'),
    server_error('InternalError', 'an error on the server ("etcdserver: leader changed") has prevented the request'),
    (1, '', 'Unable to connect to the server: EOF\n'),
    (1, '', 'The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?\n'),
]


def test_node_info_wait_rides_out_api_blips_with_request_timeouts_capped_at_the_time_left(cluster):
    fake = info_cluster(cluster)
    clock = Clock()
    answers = list(BLIPS)
    argvs = []

    def blipping(argv, data=None):
        argvs.append(argv)
        return answers.pop(0) if answers else fake(argv, data)
    with mock.patch.object(k8s_node_info.time, 'time', clock.time), \
            mock.patch.object(k8s_node_info.time, 'sleep', clock.sleep), \
            mock.patch.object(basic.AnsibleModule, 'run_command', lambda self, argv, **kw: blipping(argv, kw.get('data'))):
        result, failed = run(k8s_node_info.main, {'names': ['worker-1'], 'wait_for': 'ready', 'timeout': 20,
                                                  'request_timeout': 30})
    assert not failed, result['msg']
    assert result['wait']['met'] is True and result['wait']['api_errors'] == 5 and result['wait']['polls'] == 6
    timeouts = [int(argv[argv.index('--request-timeout') + 1][:-1]) for argv in argvs]
    assert timeouts == [20, 17, 14, 11, 8, 5]  # the time left (3 s per poll), never the configured 30


def test_node_info_wait_fails_at_once_on_an_error_that_is_not_transient(cluster):
    info_cluster(cluster)
    clock = Clock()
    forbidden = server_error('Forbidden', 'nodes is forbidden: User "ci" cannot list resource "nodes"')
    with mock.patch.object(k8s_node_info.time, 'time', clock.time), \
            mock.patch.object(k8s_node_info.time, 'sleep', clock.sleep), \
            mock.patch.object(basic.AnsibleModule, 'run_command', lambda self, argv, **kw: forbidden):
        result, failed = run(k8s_node_info.main, {'names': ['worker-1'], 'wait_for': 'ready', 'timeout': 20})
    assert failed and result['msg'].startswith('not allowed to access nodes')
    assert clock.slept == []


def test_node_info_wait_that_never_reaches_the_api_names_the_last_error(cluster):
    info_cluster(cluster)
    clock = Clock()
    with mock.patch.object(k8s_node_info.time, 'time', clock.time), \
            mock.patch.object(k8s_node_info.time, 'sleep', clock.sleep), \
            mock.patch.object(basic.AnsibleModule, 'run_command', lambda self, argv, **kw: BLIPS[0]):
        result, failed = run(k8s_node_info.main, {'names': ['worker-1'], 'wait_for': 'ready', 'timeout': 10})
    assert failed
    assert result['msg'].startswith('timed out after 10s waiting for ready on 1 node(s): node -: the API did not '
                                    'answer (5 transient errors, the last: the API server refused the request on nodes '
                                    '(ServiceUnavailable)')


def test_node_info_soak_names_a_node_that_goes_notready_and_keeps_it_broken(cluster):
    fake = cluster(nodes=[make_node('worker-1'), make_node('worker-2')])
    clock = Clock()

    def sleep(seconds):
        clock.sleep(seconds)
        node = fake.store[('nodes', None, 'worker-2')]
        # NotReady at the second reading only: a flap still breaks the soak
        node['status']['conditions'][0]['status'] = 'False' if len(clock.slept) == 1 else 'True'
    with mock.patch.object(k8s_node_info.time, 'time', clock.time), \
            mock.patch.object(k8s_node_info.time, 'sleep', sleep):
        result, failed = run(k8s_node_info.main, {'names': ['worker-1', 'worker-2'], 'soak': 9})
    assert not failed, result['msg']
    assert result['soak'] == {'seconds': 9, 'elapsed': 9.0, 'polls': 4, 'api_errors': 0, 'held': ['worker-1'],
                              'broken': {'worker-2': 'its Ready condition was False 3s into the 9s soak'}}
    assert fake.mutating() == []


def test_node_info_soak_rides_out_blips_but_not_a_silent_end(cluster):
    fake = cluster(nodes=[make_node('worker-1')])
    clock = Clock()
    answers = [None, BLIPS[0], None, BLIPS[1]]  # the report's read; in the soak a blip, a reading, then silence

    def flaky(argv, data=None):
        answer = answers.pop(0) if answers else BLIPS[1]
        return answer if answer is not None else fake(argv, data)
    with mock.patch.object(k8s_node_info.time, 'time', clock.time), \
            mock.patch.object(k8s_node_info.time, 'sleep', clock.sleep), \
            mock.patch.object(basic.AnsibleModule, 'run_command', lambda self, argv, **kw: flaky(argv, kw.get('data'))):
        result, failed = run(k8s_node_info.main, {'names': ['worker-1'], 'soak': 6})
    assert not failed, result['msg']
    assert result['soak']['held'] == [] and result['soak']['elapsed'] == 12.0  # 6 s, then 6 s of grace
    assert result['soak']['broken']['worker-1'].startswith('the API did not answer at the end of the 6s soak')


def test_node_info_bad_timeout(cluster):
    cluster(nodes=[])
    result, failed = run(k8s_node_info.main, {'wait_for': 'ready', 'timeout': 0})
    assert failed and result['msg'] == 'timeout must be a positive number of seconds, got 0'


# ================================================================ k8s_cluster_lock

LOCK = ('leases', 'kube-system', 'nodeops-memcg-kernel-upgrade')


def lock(args=None, check_mode=False, now=T0):
    params = {'holder': 'run-1'}
    params.update(args or {})
    with mock.patch.object(k8s_cluster_lock.time, 'time', lambda: now):
        return run(k8s_cluster_lock.main, params, check_mode=check_mode)


def test_lock_acquire_creates_then_renews(cluster):
    fake = cluster()
    result, failed = lock({'ttl': 600}, check_mode=True)
    assert not failed and result['changed'] is True and result['would_acquire'] is True
    assert result['acquired'] is False and result['decision'] == 'create' and fake.mutating() == []
    assert result['lease']['holder'] == 'run-1'

    result, failed = lock({'ttl': 600})
    assert not failed, result['msg']
    assert result['acquired'] is True and result['changed'] is True and result['decision'] == 'create'
    assert result['lease'] == {'holder': 'run-1', 'acquire_time': '2024-05-01T10:00:00.000000Z',
                               'renew_time': '2024-05-01T10:00:00.000000Z', 'ttl': 600,
                               'expires_at': '2024-05-01T10:10:00.000000Z', 'expired': False, 'seconds_left': 600,
                               'transitions': 0, 'resource_version': '1001'}
    assert fake.calls[-1][0] == ['create', '--filename', '-', '--output', 'json']
    assert json.loads(fake.calls[-1][1])['spec']['holderIdentity'] == 'run-1'
    assert set(result) <= documented(k8s_cluster_lock)

    result, failed = lock({'ttl': 600}, now=T0 + 300)
    assert not failed and result['decision'] == 'renew' and result['acquired'] is True
    assert result['lease']['renew_time'] == '2024-05-01T10:05:00.000000Z'
    assert result['lease']['acquire_time'] == '2024-05-01T10:00:00.000000Z'
    sent = json.loads(fake.calls[-1][1])
    assert fake.calls[-1][0][0] == 'replace' and sent['metadata']['resourceVersion'] == '1001'


def test_lock_held_by_another_run_fails_also_in_check_mode(cluster):
    fake = cluster(leases=[make_lease('run-0', '2024-05-01T09:55:00.000000Z')])
    for check_mode in (True, False):
        result, failed = lock(check_mode=check_mode)
        assert failed
        assert result['msg'] == ('lock kube-system/nodeops-memcg-kernel-upgrade is held by run-0 (renewed '
                                 '2024-05-01T09:55:00.000000Z, expires 2024-05-01T10:05:00.000000Z, in 300s); wait '
                                 'for that run to finish or release it, or let the lock expire')
        assert result['held_by'] == 'run-0' and result['decision'] == 'held_by_other'
        assert result['changed'] is False and result['would_acquire'] is False
    assert fake.mutating() == []


def test_lock_expired_is_taken_over_with_a_precondition(cluster):
    fake = cluster(leases=[make_lease('run-0', '2024-05-01T08:00:00.000000Z')])
    result, failed = lock()
    assert not failed
    assert result['decision'] == 'take_over_expired' and result['held_by'] == 'run-0' and result['acquired'] is True
    sent = json.loads(fake.calls[-1][1])
    assert fake.calls[-1][0][0] == 'replace'
    assert sent['metadata']['resourceVersion'] == '812'
    assert sent['spec']['holderIdentity'] == 'run-1' and sent['spec']['leaseTransitions'] == 2
    assert fake.store[LOCK]['spec']['holderIdentity'] == 'run-1'


def test_lock_race_on_create_names_the_winner(cluster):
    fake = cluster()

    def other_run_creates(verb, args):
        fake.put(make_lease('run-0', '2024-05-01T10:00:00.000000Z'))
    fake.before_write = other_run_creates
    with mock.patch.object(k8s_cluster_lock.time, 'time', lambda: T0):
        result, failed = run(k8s_cluster_lock.main, {'holder': 'run-1'})
    assert failed
    assert result['msg'].startswith('lost the race for lock kube-system/nodeops-memcg-kernel-upgrade (AlreadyExists): '
                                    'lock kube-system/nodeops-memcg-kernel-upgrade is held by run-0')
    assert result['acquired'] is False and result['changed'] is False


def test_lock_race_on_take_over_conflicts(cluster):
    fake = cluster(leases=[make_lease('run-0', '2024-05-01T08:00:00.000000Z')])

    def other_run_takes_over(verb, args):
        fake.put(make_lease('run-2', '2024-05-01T10:00:00.000000Z', rv='813'))
    fake.before_write = other_run_takes_over
    result, failed = lock()
    assert failed and '(Conflict): lock kube-system/nodeops-memcg-kernel-upgrade is held by run-2' in result['msg']


def test_lock_release_only_ours(cluster):
    fake = cluster(leases=[make_lease('run-1', '2024-05-01T09:55:00.000000Z')])
    result, failed = lock({'holder': 'run-2', 'state': 'released'})
    assert not failed and result['changed'] is False and result['released'] is False
    assert result['decision'] == 'held_by_other' and result['held_by'] == 'run-1'
    assert result['warnings'] == ['lock kube-system/nodeops-memcg-kernel-upgrade is held by run-1, not by run-2: left alone']
    assert fake.mutating() == []

    result, failed = lock({'state': 'released'}, check_mode=True)
    assert not failed and result['changed'] is True and result['released'] is False and fake.mutating() == []

    result, failed = lock({'state': 'released'})
    assert not failed and result['changed'] is True and result['released'] is True
    assert result['lease']['holder'] is None
    sent = json.loads(fake.calls[-1][1])
    assert fake.calls[-1][0][0] == 'replace' and sent['metadata']['resourceVersion'] == '812'
    assert 'holderIdentity' not in sent['spec']

    result, failed = lock({'state': 'released'})
    assert not failed and result['changed'] is False and result['decision'] == 'not_held'
    # a released lock is free for the next run
    result, failed = lock({'holder': 'run-3'})
    assert not failed and result['decision'] == 'take_over_expired' and result['acquired'] is True


def test_lock_release_without_lease(cluster):
    cluster()
    result, failed = lock({'state': 'released'})
    assert not failed and result['changed'] is False and result['decision'] == 'not_held' and result['lease'] is None


@pytest.mark.parametrize('args, message', [
    ({'ttl': 0}, 'ttl must be between 1 and 2147483647 seconds, got 0'),
    ({'holder': ''}, 'holder must not be empty'),
    ({'state': 'locked'}, 'value of state must be one of'),
])
def test_lock_bad_input(cluster, args, message):
    fake = cluster()
    result, failed = lock(args)
    assert failed and message in result['msg'] and fake.calls == []


def test_lock_missing_holder(cluster):
    cluster()
    result, failed = run(k8s_cluster_lock.main, {})
    assert failed and result['msg'] == 'missing required arguments: holder'


# ================================================================ hostile names: refused before kubectl starts

INJECTIONS = ['--server=http://127.0.0.1:9', '--as=system:admin', '-v=9', 'Worker-1', 'worker_1', 'worker 1',
              'worker-1;reboot', '', '.', 'a' * 254, 'worker-1\n--as=x']


@pytest.mark.parametrize('bad', INJECTIONS)
def test_k8s_node_refuses_a_name_that_is_no_node_name(cluster, bad):
    fake = cluster(nodes=[make_node('worker-1')])
    result, failed = run(k8s_node.main, node_args(name=bad, state='cordoned', run_id='run-1'))
    assert failed and result['msg'].startswith('name must ')
    assert repr(bad)[:40] in result['msg'] or bad == ''
    assert fake.calls == []


@pytest.mark.parametrize('bad', INJECTIONS)
def test_k8s_node_info_refuses_a_name_that_is_no_node_name(cluster, bad):
    fake = cluster(nodes=[make_node('worker-1')])
    result, failed = run(k8s_node_info.main, {'names': ['worker-1', bad]})
    assert failed and result['msg'].startswith('names[1] must ')
    assert fake.calls == []


@pytest.mark.parametrize('args, message', [
    ({'name': '--server=http://127.0.0.1:9'}, "name must be a DNS-1123 subdomain"),
    ({'name': '--as=system:admin'}, "got '--as=system:admin'"),
    ({'name': ''}, "name must not be empty; got ''"),
    ({'namespace': '--all-namespaces'}, "namespace must be a DNS-1123 label"),
    ({'namespace': 'kube.system'}, "got 'kube.system'"),
    ({'namespace': 'a' * 64}, 'at most 63 characters'),
    ({'namespace': ''}, "namespace must not be empty"),
    ({'holder': '--as=system:admin'}, "holder must be letters, digits and"),
    ({'holder': 'run 1'}, "got 'run 1'"),
    ({'holder': 'a' * 129}, 'at most 128 characters'),
    ({'ttl': 2147483648}, 'ttl must be between 1 and 2147483647 seconds, got 2147483648'),
    ({'ttl': -5}, 'ttl must be between 1 and 2147483647 seconds, got -5'),
    ({'request_timeout': -1}, 'request_timeout must not be negative, got -1'),
    ({'context': ''}, 'context must not be empty; leave it out for the default'),
])
def test_k8s_cluster_lock_refuses_hostile_input_before_kubectl(cluster, args, message):
    fake = cluster()
    result, failed = lock(dict({'holder': 'run-1'}, **args))
    assert failed and message in result['msg'], result['msg']
    assert fake.calls == []


@pytest.mark.parametrize('args, message', [
    ({'state': 'cordoned', 'run_id': '--as=system:admin'}, "run_id must be letters, digits and"),
    ({'state': 'cordoned', 'run_id': ''}, "run_id must not be empty"),
    ({'state': 'drained', 'run_id': 'r', 'grace_period': -2}, 'grace_period must be between -1 and 2147483647'),
    ({'state': 'cordoned', 'run_id': 'r', 'kubeconfig': ''}, 'kubeconfig must not be empty'),
])
def test_k8s_node_refuses_hostile_options_before_kubectl(cluster, args, message):
    fake = cluster(nodes=[make_node('worker-1')])
    result, failed = run(k8s_node.main, node_args(**args))
    assert failed and message in result['msg'], result['msg']
    assert fake.calls == []


def test_every_name_reaches_kubectl_after_a_double_dash(cluster):
    fake = cluster(nodes=[make_node('worker-1')])
    result, failed = run(k8s_node.main, node_args(state='drained', run_id='run-1'))
    assert not failed, result
    named = [argv for argv in fake.raw_calls if 'worker-1' in argv]
    assert named and all(argv[argv.index('worker-1') - 1] == '--' for argv in named), named
