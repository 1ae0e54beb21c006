# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node condition of our own and the Event that goes with it, as node-problem-detector does.

Pure logic for the k8s_node_condition module: which condition a Node should carry, the
strategic-merge patch of its status subresource (conditions merge by type, so kubelet's own are
never sent), and the core/v1 Event recorded when the condition changes. Timestamps are passed in.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

# Condition types kubelet (and the node lifecycle controller) own: never written here.
KUBELET_CONDITIONS = ('Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure', 'NetworkUnavailable')
_CAMEL = re.compile(r'^[A-Z][A-Za-z0-9]{0,127}$')
MESSAGE_LIMIT = 1024  # Event messages are cut by the API server beyond this; keep conditions alike


def validate(condition_type, reason):
    """MemcgError naming the bad value; kubelet's condition types are refused."""
    if condition_type in KUBELET_CONDITIONS:
        raise MemcgError('condition type %r is owned by kubelet; use a type of your own (for example '
                         'DyingMemoryCgroups)' % condition_type)
    for name, value in (('type', condition_type), ('reason', reason)):
        if not _CAMEL.match(value or ''):
            raise MemcgError('%s must be UpperCamelCase letters and digits (as kubelet and node-problem-detector '
                             'write them), got %r' % (name, value))


def current_condition(node, condition_type):
    for condition in ((node or {}).get('status') or {}).get('conditions') or []:
        if condition.get('type') == condition_type:
            return condition
    return None


def plan(node, condition_type, status, reason, message, now):
    """What to write: a dict with changed, transition, condition (the new one), previous, patch.

    lastTransitionTime moves only when the status flips; a run that would change nothing but the
    heartbeat changes nothing (changed False, patch None).
    """
    message = message[:MESSAGE_LIMIT]
    previous = current_condition(node, condition_type)
    wanted = 'True' if status else 'False'
    transition = previous is None or previous.get('status') != wanted
    changed = transition or previous.get('reason') != reason or previous.get('message') != message
    condition = {
        'type': condition_type, 'status': wanted, 'reason': reason, 'message': message,
        'lastHeartbeatTime': now,
        'lastTransitionTime': now if transition else previous.get('lastTransitionTime', now),
    }
    if not changed:
        condition = dict(previous)
    return {'changed': changed, 'transition': transition, 'condition': condition, 'previous': previous,
            'patch': {'status': {'conditions': [condition]}} if changed else None}


def wants_event(planned):
    """An Event when a problem appears or changes, and when it clears; none for a first healthy report."""
    if not planned['changed']:
        return False
    previous = planned['previous']
    if planned['condition']['status'] == 'True':
        return True
    return previous is not None and previous.get('status') == 'True'


def event(node, planned, component, namespace, now):
    """The core/v1 Event on the Node (involvedObject as kubelet and node-problem-detector set it)."""
    name = node['metadata']['name']
    condition = planned['condition']
    return {
        'apiVersion': 'v1',
        'kind': 'Event',
        'metadata': {'generateName': '%s.' % name, 'namespace': namespace},
        'involvedObject': {'apiVersion': 'v1', 'kind': 'Node', 'name': name,
                           'uid': node['metadata'].get('uid', name)},
        'reason': condition['reason'],
        'message': condition['message'],
        'type': 'Warning' if condition['status'] == 'True' else 'Normal',
        'source': {'component': component, 'host': name},
        'reportingComponent': component,
        'reportingInstance': name,
        'firstTimestamp': now,
        'lastTimestamp': now,
        'count': 1,
    }
