#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: k8s_node_condition
short_description: Set a node condition of our own and record an Event on the Node, through kubectl
version_added: 1.0.0
description:
  - Publishes a problem on a Kubernetes Node the way node-problem-detector does, so that
    C(kubectl describe node) and anything watching Node conditions and Events sees it.
  - Sets the condition O(type) with O(status), O(reason) and O(detail) (its C(message)) by a strategic-merge patch
    of the Node's C(status) subresource. Conditions merge by type, so only this type is sent;
    the types kubelet owns (V(Ready), V(MemoryPressure), V(DiskPressure), V(PIDPressure),
    V(NetworkUnavailable)) are refused.
  - C(lastTransitionTime) moves only when the status flips. A run that would change nothing but
    the heartbeat does not write (idempotent).
  - With O(event), records a core/v1 Event on the Node when a problem appears or changes
    (type C(Warning)) and when it clears (type C(Normal)); none for a first healthy report.
  - Runs on the host that holds the kubeconfig (usually C(delegate_to) the controller); the
    kubeconfig is passed to kubectl with C(--kubeconfig), never read.
author:
  - nodeops.memcg contributors (@nodeops)
extends_documentation_fragment:
  - nodeops.memcg.kubectl
attributes:
  check_mode:
    support: full
    description: Reads the Node, then sends the patch and the Event as server-side dry runs only.
  diff_mode:
    support: none
    description: The previous and the new condition are returned instead.
  platform:
    support: full
    platforms: posix
    description: Runs kubectl on the host the task runs on.
options:
  name:
    description: The Node's name in Kubernetes.
    type: str
    required: true
  type:
    description: The condition type, UpperCamelCase; not one of kubelet's.
    type: str
    default: DyingMemoryCgroups
  status:
    description: V(true) when the problem is present, V(false) to clear it.
    type: bool
    required: true
  reason:
    description: Short UpperCamelCase reason (for example V(DyingMemcgsCritical)).
    type: str
    required: true
  detail:
    description:
      - The condition's and the Event's C(message), human-readable, naming the numbers; cut at 1024 characters.
      - Not called C(message), a name Ansible keeps for itself.
    type: str
    required: true
  event:
    description: Record an Event on the Node when the problem appears, changes or clears.
    type: bool
    default: true
  event_namespace:
    description: Namespace of the Events (kubelet and node-problem-detector use V(default) for Node events).
    type: str
    default: default
  component:
    description: The Event's C(source.component) and C(reportingComponent).
    type: str
    default: nodeops-memcg
'''

EXAMPLES = r'''
- name: Publish the probe verdict on the Node
  nodeops.memcg.k8s_node_condition:
    name: "{{ inventory_hostname }}"
    type: DyingMemoryCgroups
    status: "{{ detect_result.probe.verdict != 'ok' }}"
    reason: DyingMemcgsCritical
    detail: "68692 dying memory cgroups exceed critical_dying (20000)"
  delegate_to: localhost
'''

RETURN = r'''
condition:
  description: The condition the Node carries after the run (in check mode, the one it would carry).
  returned: always
  type: dict
  sample: {type: DyingMemoryCgroups, status: "True", reason: DyingMemcgsCritical, message: "...",
           lastHeartbeatTime: "2026-01-01T00:00:00Z", lastTransitionTime: "2026-01-01T00:00:00Z"}
previous:
  description: The condition of that type before the run; null when the Node had none.
  returned: always
  type: dict
transition:
  description: Whether the status flips (or the condition is new).
  returned: always
  type: bool
event:
  description: The Event recorded (in check mode, the one that would be); null when none.
  returned: always
  type: dict
'''

import datetime
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.nodeops.memcg.plugins.module_utils import node_condition
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError


def utc_now():
    return datetime.datetime.utcnow().replace(microsecond=0).isoformat() + 'Z'


def main():
    module = AnsibleModule(
        argument_spec=dict(
            k8s_client.KUBECTL_OPTIONS,
            name=dict(type='str', required=True),
            type=dict(type='str', default='DyingMemoryCgroups'),
            status=dict(type='bool', required=True),
            reason=dict(type='str', required=True),
            detail=dict(type='str', required=True),
            event=dict(type='bool', default=True),
            event_namespace=dict(type='str', default='default'),
            component=dict(type='str', default='nodeops-memcg'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        node_condition.validate(params['type'], params['reason'])
        kube = k8s_client.kubectl_for(module)
        node = kube.get_json('node', params['name'])
        now = utc_now()
        planned = node_condition.plan(node, params['type'], params['status'], params['reason'], params['detail'], now)
        if planned['changed']:
            kube.patch('node', params['name'], planned['patch'], patch_type='strategic',
                       dry_run=module.check_mode, subresource='status')
        recorded = None
        if params['event'] and node_condition.wants_event(planned):
            recorded = node_condition.event(node, planned, params['component'], params['event_namespace'], now)
            kube.create(recorded, dry_run=module.check_mode)
    except MemcgError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())
    else:
        module.exit_json(changed=planned['changed'], condition=planned['condition'], previous=planned['previous'],
                         transition=planned['transition'], event=recorded)


if __name__ == '__main__':
    main()
