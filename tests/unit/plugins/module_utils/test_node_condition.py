# -*- coding: utf-8 -*-
"""module_utils/node_condition.py with plain Node objects."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils import node_condition as nc
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

T0, T1 = '2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z'
READY = {'type': 'Ready', 'status': 'True', 'reason': 'KubeletReady', 'message': 'kubelet is posting ready status',
         'lastHeartbeatTime': T0, 'lastTransitionTime': T0}


def node(*conditions):
    return {'metadata': {'name': 'n1', 'uid': 'uid-n1'}, 'status': {'conditions': [READY] + list(conditions)}}


@pytest.mark.parametrize('kind', nc.KUBELET_CONDITIONS)
def test_kubelet_condition_types_are_refused(kind):
    with pytest.raises(MemcgError, match="condition type '%s' is owned by kubelet" % kind):
        nc.validate(kind, 'Whatever')


@pytest.mark.parametrize('kind, reason, bad', [('dying-memcgs', 'Ok', 'type'), ('DyingMemoryCgroups', 'too many', 'reason'),
                                               ('DyingMemoryCgroups', '', 'reason')])
def test_type_and_reason_must_be_camel_case(kind, reason, bad):
    with pytest.raises(MemcgError, match='^%s must be UpperCamelCase' % bad):
        nc.validate(kind, reason)


def test_a_new_problem_is_a_transition_patching_only_our_type():
    planned = nc.plan(node(), 'DyingMemoryCgroups', True, 'DyingMemoryCgroupsCritical', '68692 dying', T1)
    assert planned['changed'] and planned['transition'] and planned['previous'] is None
    assert planned['patch'] == {'status': {'conditions': [{
        'type': 'DyingMemoryCgroups', 'status': 'True', 'reason': 'DyingMemoryCgroupsCritical', 'message': '68692 dying',
        'lastHeartbeatTime': T1, 'lastTransitionTime': T1}]}}
    assert nc.wants_event(planned)


def test_the_same_state_again_changes_nothing():
    ours = {'type': 'DyingMemoryCgroups', 'status': 'True', 'reason': 'R', 'message': 'm',
            'lastHeartbeatTime': T0, 'lastTransitionTime': T0}
    planned = nc.plan(node(ours), 'DyingMemoryCgroups', True, 'R', 'm', T1)
    assert (planned['changed'], planned['patch'], planned['condition']) == (False, None, ours)
    assert not nc.wants_event(planned)


def test_a_new_message_keeps_the_transition_time():
    ours = {'type': 'DyingMemoryCgroups', 'status': 'True', 'reason': 'R', 'message': 'm',
            'lastHeartbeatTime': T0, 'lastTransitionTime': T0}
    planned = nc.plan(node(ours), 'DyingMemoryCgroups', True, 'R', 'worse', T1)
    assert planned['changed'] and not planned['transition']
    assert planned['condition']['lastTransitionTime'] == T0 and planned['condition']['lastHeartbeatTime'] == T1
    assert nc.wants_event(planned)


def test_clearing_is_a_transition_with_a_normal_event_a_first_ok_has_none():
    ours = {'type': 'DyingMemoryCgroups', 'status': 'True', 'reason': 'R', 'message': 'm',
            'lastHeartbeatTime': T0, 'lastTransitionTime': T0}
    cleared = nc.plan(node(ours), 'DyingMemoryCgroups', False, 'MemoryCgroupsOk', 'ok', T1)
    assert cleared['transition'] and cleared['condition']['status'] == 'False'
    assert nc.wants_event(cleared)
    event = nc.event(node(ours), cleared, 'nodeops-memcg', 'default', T1)
    assert (event['type'], event['reason'], event['involvedObject']) == (
        'Normal', 'MemoryCgroupsOk', {'apiVersion': 'v1', 'kind': 'Node', 'name': 'n1', 'uid': 'uid-n1'})
    first_ok = nc.plan(node(), 'DyingMemoryCgroups', False, 'MemoryCgroupsOk', 'ok', T1)
    assert first_ok['changed'] and not nc.wants_event(first_ok)


def test_the_event_names_the_node_and_the_message_is_cut():
    planned = nc.plan(node(), 'DyingMemoryCgroups', True, 'DyingMemoryCgroupsWarn', 'x' * 5000, T1)
    assert len(planned['condition']['message']) == nc.MESSAGE_LIMIT
    event = nc.event(node(), planned, 'nodeops-memcg', 'default', T1)
    assert event['metadata'] == {'generateName': 'n1.', 'namespace': 'default'}
    assert (event['type'], event['source'], event['count']) == ('Warning', {'component': 'nodeops-memcg', 'host': 'n1'}, 1)
