# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.plugin_utils.rollout import (
    NODE_STEPS, batch_size, capacity_check, lock_ttl_check, node_rollout_state, plan_batches, room_check,
    unavailable_budget)


@pytest.mark.parametrize('batch, count, size', [
    (2, 5, 2), ('2', 5, 2), ('20%', 10, 2), ('25%', 10, 2), ('5%', 10, 1), ('100%', 7, 7), (' 30 % ', 10, 3),
])
def test_batch_size_matches_serial(batch, count, size):
    assert batch_size(batch, count) == size


@pytest.mark.parametrize('batch', [0, '0', '-1', '0%', '101%', 'two', '', '1.5', None])
def test_bad_batch_names_the_value(batch):
    with pytest.raises(MemcgError, match=r'kernel_upgrade_batch must be .* got %s' % repr(batch).replace('.', r'\.')):
        batch_size(batch, 5)


def test_plan_batches_keeps_order():
    assert plan_batches(['n1', 'n2', 'n3', 'n4', 'n5'], 2) == [['n1', 'n2'], ['n3', 'n4'], ['n5']]
    assert plan_batches([], 2) == []


# ---------------------------------------------------------------- node_rollout_state

OLD = {'release': '3.10.0-1160.el7.x86_64', 'status': 'severe', 'upgrade_needed': True}
NEW = {'release': '5.4.225-1.el7.elrepo.x86_64', 'status': 'fixed', 'upgrade_needed': False}
ODD = {'release': '9.9.9-custom', 'status': 'unknown', 'upgrade_needed': False}


def test_an_unmarked_node_is_pending_or_already_fixed():
    assert node_rollout_state('n1', OLD)['status'] == 'pending'
    assert node_rollout_state('n1', NEW, NEW)['status'] == 'already_fixed'
    assert node_rollout_state('n1', NEW, None)['status'] == 'already_fixed'  # boot default unknown (api)
    assert node_rollout_state('n1', ODD)['status'] == 'already_fixed'


def test_a_fixed_kernel_whose_boot_default_is_not_is_resumed_from_the_health_gate():
    state = node_rollout_state('n1', NEW, OLD)
    assert (state['status'], state['resume_from'], state['target']) == ('resume', 'health', NEW['release'])
    assert 'next boot lands on 3.10.0-1160.el7.x86_64 (severe)' in state['why']


@pytest.mark.parametrize('marks', [
    {'cordoned_by': 'run-1', 'step': 'booted', 'target': NEW['release']},
    {'cordoned_by': 'run-1', 'step': 'drained'},  # killed after the reboot, before the step was written
    {'cordoned_by': 'run-1', 'failure': 'ready: timed out', 'step': 'booted'},
    {'failure': 'ready: timed out'},  # someone uncordoned it by hand, the failure stayed
    {'cordoned_by': 'run-1', 'step': 'committed', 'target': NEW['release']},
])
def test_a_node_left_on_the_fixed_kernel_is_resumed_not_already_fixed(marks):
    state = node_rollout_state('n1', NEW, NEW, marks)
    assert (state['status'], state['resume_from'], state['target']) == ('resume', 'health', NEW['release'])
    assert 'run-1' in state['why'] or 'run ?' in state['why']


@pytest.mark.parametrize('step', [None, 'cordoned', 'drained'])
def test_a_node_left_before_its_reboot_runs_the_whole_procedure_again(step):
    state = node_rollout_state('n1', OLD, OLD, {'cordoned_by': 'run-1', 'step': step, 'failure': 'drain: pdb'})
    assert (state['status'], state['resume_from'], state['target']) == ('resume', 'cordon', None)


@pytest.mark.parametrize('running', [OLD, ODD])
def test_a_booted_node_that_runs_neither_the_target_nor_a_fixed_kernel_stops_the_run(running):
    marks = {'cordoned_by': 'run-1', 'step': 'booted', 'target': NEW['release']}
    with pytest.raises(MemcgError) as error:
        node_rollout_state('n7', running, None, marks)
    text = str(error.value)
    assert text.startswith('node n7: left by run run-1 at step booted (target %s)' % NEW['release'])
    assert 'runs %s (%s), neither the target nor a fixed kernel' % (running['release'], running['status']) in text


@pytest.mark.parametrize('running', [dict(OLD, release=''), dict(OLD, release='  '), {}, None])
def test_a_missing_release_is_an_error_naming_the_node(running):
    with pytest.raises(MemcgError, match=r'^node n3: no running kernel release'):
        node_rollout_state('n3', running)


def test_an_unknown_step_is_an_error_naming_the_node():
    with pytest.raises(MemcgError, match=r"^node n2: unknown nodeops.memcg/step 'rebooting'"):
        node_rollout_state('n2', NEW, None, {'cordoned_by': 'run-1', 'step': 'rebooting'})


def test_the_steps_are_in_order():
    assert NODE_STEPS == ('cordoned', 'drained', 'booted', 'healthy', 'committed')


# ---------------------------------------------------------------- lock_ttl_check

WAITS = {'drain': 600, 'reboot': 900, 'health': 600 + 300}


def test_a_ttl_covering_the_longest_wait_and_the_slack_passes():
    assert lock_ttl_check(960, WAITS) is None
    assert lock_ttl_check(3600, WAITS) is None


def test_a_short_ttl_is_refused_with_the_numbers():
    message = lock_ttl_check(959, {'drain': 600, 'reboot': 900, 'health': 500})
    assert message == ('kernel_upgrade_lock_ttl 959s is shorter than the longest step between two lock renewals: '
                       'reboot may take 900s, plus 60s for the calls around it = 960s. Raise kernel_upgrade_lock_ttl '
                       'to at least 960 or lower that timeout')


def test_ties_name_one_step_deterministically_and_strings_count_as_numbers():
    assert 'drain may take 900s' in lock_ttl_check('100', {'reboot': '900', 'drain': 900}, slack=0)


# ---------------------------------------------------------------- capacity_check

def summary(name, ready=True, unschedulable=False, control_plane=False):
    return {'name': name, 'ready': ready, 'unschedulable': unschedulable, 'control_plane': control_plane}


CLUSTER = [summary('cp1', control_plane=True)] + [summary('w%d' % i) for i in range(1, 11)]


@pytest.mark.parametrize('value, workers, batch, budget', [
    ('', 10, 2, 2), (None, 10, 3, 3), (0, 10, 1, 0), ('3', 10, 1, 3), (' 20% ', 10, 1, 2), ('25%', 10, 1, 2),
    ('5%', 10, 1, 1), ('0%', 10, 1, 0), ('100%', 7, 1, 7),
])
def test_budget_is_a_count_a_percentage_of_the_workers_or_the_batch(value, workers, batch, budget):
    assert unavailable_budget(value, workers, batch) == budget


@pytest.mark.parametrize('value', ['-1', '101%', 'two', '1.5'])
def test_bad_budget_names_the_value(value):
    with pytest.raises(MemcgError, match=r'kernel_upgrade_max_unavailable must be .* got %r' % value):
        unavailable_budget(value, 10, 1)


def test_a_batch_fits_a_healthy_cluster_by_default():
    check = capacity_check(CLUSTER, ['w1', 'w2'], [], '')
    assert check == {'budget': 2, 'workers': 10, 'unavailable': [], 'needed': 2, 'message': None}


def test_a_node_gone_notready_elsewhere_stops_the_next_batch_naming_it():
    nodes = CLUSTER[:3] + [summary('w3', ready=False)] + CLUSTER[4:]
    check = capacity_check(nodes, ['w4'], ['w1'], 1)
    assert check['unavailable'] == ['w3'] and check['needed'] == 2
    assert check['message'] == ('the batch w4 would make 2 nodes unavailable at once, over '
                                'kernel_upgrade_max_unavailable 1 (1 of 10 workers): already NotReady or '
                                'unschedulable: w3')


def test_the_batch_and_finished_nodes_count_once_and_percentages_use_the_workers():
    # w1 finished (left cordoned by an admin), w2 in the batch and still cordoned by an earlier run,
    # w5 cordoned by an admin, the control plane NotReady
    nodes = [summary('cp1', ready=False, control_plane=True), summary('w1', unschedulable=True),
             summary('w2', unschedulable=True), summary('w3'), summary('w4'), summary('w5', unschedulable=True)]
    check = capacity_check(nodes, ['w2', 'w3'], ['w1'], '60%')
    assert (check['budget'], check['workers'], check['unavailable'], check['needed']) == (3, 5, ['cp1', 'w5'], 4)
    assert 'over kernel_upgrade_max_unavailable 60% (3 of 5 workers)' in check['message']
    assert capacity_check(nodes, ['w2', 'w3'], ['w1'], '80%')['message'] is None


# ---------------------------------------------------------------- room for the evicted pods

GI = 2 ** 30


def pod(name, cpu=0, memory=0, owner='ReplicaSet', phase='Running', mirror=False, namespace='shop'):
    return {'namespace': namespace, 'name': name, 'owner_kind': owner, 'phase': phase, 'mirror': mirror,
            'requests': {'cpu_millis': cpu, 'memory_bytes': memory}}


def worker(name, pods=(), cpu=4000, memory=16 * GI, slots=110, **kwargs):
    node = summary(name, **kwargs)
    node.update(allocatable={'cpu_millis': cpu, 'memory_bytes': memory, 'pods': slots}, pods=list(pods))
    return node


def test_room_for_the_evicted_pods_on_the_nodes_that_stay_schedulable():
    nodes = [worker('w1', [pod('web-1', 500, GI), pod('proxy', 100, GI, owner='DaemonSet'), pod('bare', 100, GI, owner=None),
                           pod('done', 4000, 8 * GI, phase='Succeeded'), pod('static', 100, GI, owner=None, mirror=True)]),
             worker('w2', [pod('db-0', 3000, 12 * GI, owner='StatefulSet')]),
             worker('w3', cpu=2000, memory=4 * GI)]
    check = room_check(nodes, ['w1'])
    assert check['fits'] is True and check['pods'] == 1 and check['targets'] == ['w2', 'w3']
    assert (check['cpu_millis'], check['memory_bytes']) == (500, GI)
    assert (check['free_cpu_millis'], check['free_memory_bytes']) == (3000, 8 * GI)
    assert check['message'] == ('room for the pods the batch w1 would evict: 1 pod(s) requesting 500m CPU and 1.0 GiB '
                                'memory fit on the 2 node(s) that stay schedulable (w2, w3; 3 CPU and 8.0 GiB memory '
                                'free in all)')


def test_a_pod_too_big_for_every_single_node_is_named_even_when_the_sum_would_fit():
    nodes = [worker('w1', [pod('cache-0', 1000, 6 * GI, owner='StatefulSet')]),
             worker('w2', [pod('a', 0, 12 * GI)]), worker('w3', [pod('b', 0, 12 * GI)])]
    check = room_check(nodes, ['w1'])
    assert check['fits'] is False and check['free_memory_bytes'] == 8 * GI
    assert check['unplaced'] == ['shop/cache-0 (cpu 1, memory 6.0 GiB)']
    assert check['message'].startswith('not enough allocatable room for the pods the batch w1 would evict: 1 of 1 fit '
                                       'on none of the 2 node(s) that stay schedulable (w2, w3;')


def test_the_pods_are_spread_and_pod_slots_count():
    nodes = [worker('w1', [pod('p%d' % i, 1000, 3 * GI) for i in range(4)]),
             worker('w2', memory=7 * GI), worker('w3', memory=7 * GI)]
    assert room_check(nodes, ['w1'])['fits'] is True  # two on each node; first-fit on one would leave one out
    nodes[1]['allocatable']['pods'] = nodes[2]['allocatable']['pods'] = 1
    check = room_check(nodes, ['w1'])
    assert check['fits'] is False and len(check['unplaced']) == 2


def test_no_room_where_every_other_node_is_unavailable_and_none_needed_where_nothing_moves():
    nodes = [worker('cp1', control_plane=True), worker('w1', [pod('web', 10, 10)]), worker('w2', ready=False),
             worker('w3', unschedulable=True), worker('w4', [pod('web-2', 10, 10)])]
    check = room_check(nodes, ['w1', 'w4'])
    assert check['fits'] is False and check['targets'] == []
    assert check['message'] == ('not enough allocatable room for the pods the batch w1, w4 would evict: no node '
                                'stays schedulable (every other node is in the batch, NotReady, cordoned or a '
                                'control-plane node) for 2 pod(s): shop/web (cpu 10m, memory 10 B); shop/web-2 '
                                '(cpu 10m, memory 10 B)')
    quiet = room_check([worker('w1', [pod('ds', owner='DaemonSet')]), worker('w2')], ['w1'])
    assert quiet['fits'] is True and quiet['message'] == 'the batch w1 evicts no pod that a controller recreates elsewhere'
