#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: k8s_node_info
short_description: Read Kubernetes nodes (and their pods) through kubectl, optionally waiting for a condition
version_added: 1.0.0
description:
  - Read-only view of Kubernetes nodes for the rolling kernel upgrade, through the user's C(kubectl)
    and kubeconfig, run as argument lists.
  - Returns, per node, readiness, the cordon (C(spec.unschedulable)), whether it is a control plane
    node, the running kernel (C(status.nodeInfo.kernelVersion)) and the C(nodeops.memcg/*)
    annotations; optionally the pods on each node with their controller kind and readiness.
  - With O(wait_for) it polls until every named node meets the condition, or fails after
    O(timeout) seconds with a message naming the node, the condition and the timeout. Transient
    API errors (the server unreachable, a 5xx or 429 answer, a dropped connection) are retried until
    then (C(api_errors) in RV(wait) counts them); each kubectl request's timeout is capped at the time left.
  - Runs on the host that holds the kubeconfig (usually C(delegate_to) the controller). The
    kubeconfig is passed to kubectl with C(--kubeconfig); the module never reads it.
author:
  - nodeops.memcg contributors (@nodeops)
extends_documentation_fragment:
  - nodeops.memcg.kubectl
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode does the same reads (and waits) as a real run.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  platform:
    support: full
    platforms: posix
    description: Runs kubectl on the host the task runs on.
options:
  names:
    description:
      - The nodes to report. Empty means all nodes.
      - Each name must be a DNS-1123 subdomain; an empty string or any other value is refused
        before kubectl runs (it never means "all nodes").
      - Names that do not exist are returned in RV(missing); that is not an error unless
        O(wait_for) waits for them.
    type: list
    elements: str
    default: []
  include_pods:
    description:
      - Also list the pods on each reported node (RV(nodes[].pods)), with their controller kind and
        readiness. One API list per node.
    type: bool
    default: false
  wait_for:
    description:
      - Wait until every reported node meets this condition, polling every few seconds.
      - V(ready) waits for the node's Ready condition to be True.
      - V(not_ready) waits for it to be False or Unknown (the node went down, for example after a
        reboot was triggered).
      - V(daemonsets_ready) waits for the node to be Ready and for every DaemonSet pod on it to be
        Running and Ready (the health gate before uncordoning).
      - V(none) does not wait.
      - A missing node never meets a condition.
    type: str
    default: none
    choices: [none, ready, not_ready, daemonsets_ready]
  timeout:
    description:
      - Seconds to wait for O(wait_for) before failing. Must be positive.
    type: int
    default: 300
notes:
  - RBAC the kubeconfig user needs - C(nodes) get and list; with O(include_pods) or
    O(wait_for=daemonsets_ready), C(pods) list. See C(docs/kubernetes.md).
seealso:
  - module: nodeops.memcg.k8s_node
  - module: nodeops.memcg.k8s_cluster_lock
  - name: Kubernetes access of nodeops.memcg
    description: Annotations, the lock, what each module sends to the API and the RBAC it needs.
    link: https://github.com/nodeops/memcg/blob/main/docs/kubernetes.md
'''

EXAMPLES = r'''
- name: Read all nodes
  nodeops.memcg.k8s_node_info:
    kubeconfig: /etc/nodeops/kubeconfig
  delegate_to: localhost
  register: cluster

- name: Show nodes already cordoned by an admin
  ansible.builtin.debug:
    msg: "{{ cluster.unschedulable }}"

- name: Wait (up to 10 minutes) until the rebooted node and its DaemonSet pods are Ready
  nodeops.memcg.k8s_node_info:
    names: ["{{ inventory_hostname }}"]
    wait_for: daemonsets_ready
    timeout: 600
  delegate_to: localhost

- name: List the pods on two nodes
  nodeops.memcg.k8s_node_info:
    names: [worker-1, worker-2]
    include_pods: true
    context: prod-admin
  delegate_to: localhost
  register: pods_on_nodes
'''

RETURN = r'''
nodes:
  description: One entry per reported node, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Node name.
      type: str
      returned: always
      sample: worker-1
    ready:
      description: True when the node's Ready condition is True.
      type: bool
      returned: always
      sample: true
    ready_status:
      description: The Ready condition's status, V(True), V(False) or V(Unknown).
      type: str
      returned: always
      sample: 'True'
    unschedulable:
      description: C(spec.unschedulable), that is, cordoned.
      type: bool
      returned: always
      sample: false
    control_plane:
      description: True when the node carries the C(node-role.kubernetes.io/control-plane) or C(node-role.kubernetes.io/master) label.
      type: bool
      returned: always
      sample: false
    kernel_version:
      description: C(status.nodeInfo.kernelVersion) as the kubelet reports it.
      type: str
      returned: always
      sample: 4.19.0-26-amd64
    kubelet_version:
      description: C(status.nodeInfo.kubeletVersion).
      type: str
      returned: always
      sample: v1.29.4
    os_image:
      description: C(status.nodeInfo.osImage).
      type: str
      returned: always
      sample: Debian GNU/Linux 10 (buster)
    cordoned_by:
      description: The run id in the C(nodeops.memcg/cordoned-by) annotation, or null.
      type: str
      returned: always
      sample: upgrade-20240501T1000
    failure:
      description: The reason in the C(nodeops.memcg/failure) annotation, or null.
      type: str
      returned: always
      sample: node not Ready 600s after reboot
    step:
      description:
        - The last step of the kernel upgrade the node finished (C(nodeops.memcg/step)), or null.
        - V(cordoned), V(drained), V(booted), V(healthy) or V(committed); the uncordon removes it.
      type: str
      returned: always
      sample: booted
    target:
      description: The kernel release the upgrade boots on the node (C(nodeops.memcg/target)), or null.
      type: str
      returned: always
      sample: 5.4.225-1.el7.elrepo.x86_64
    annotations:
      description: All C(nodeops.memcg/*) annotations of the node.
      type: dict
      returned: always
      sample: {nodeops.memcg/cordoned-by: upgrade-20240501T1000}
    pods:
      description: The pods on the node (with O(include_pods=true)), sorted by namespace and name.
      type: list
      elements: dict
      returned: when include_pods is true
      contains:
        namespace:
          description: Namespace.
          type: str
          returned: always
          sample: shop
        name:
          description: Pod name.
          type: str
          returned: always
          sample: web-5d8f7
        owner_kind:
          description: Kind of the pod's controller (C(ReplicaSet), C(DaemonSet), ...), null for a bare pod.
          type: str
          returned: always
          sample: ReplicaSet
        owner_name:
          description: Name of the pod's controller, null for a bare pod.
          type: str
          returned: always
          sample: web-5d8f7c9b
        phase:
          description: C(status.phase).
          type: str
          returned: always
          sample: Running
        ready:
          description: True when the pod's Ready condition is True.
          type: bool
          returned: always
          sample: true
        mirror:
          description: True for a static (mirror) pod.
          type: bool
          returned: always
          sample: false
missing:
  description: Names from O(names) that no node has.
  returned: always
  type: list
  elements: str
  sample: [worker-9]
not_ready:
  description: Reported nodes whose Ready condition is not True.
  returned: always
  type: list
  elements: str
  sample: [worker-3]
unschedulable:
  description: Reported nodes that are cordoned.
  returned: always
  type: list
  elements: str
  sample: [worker-2]
control_plane:
  description: Reported nodes that are control plane nodes.
  returned: always
  type: list
  elements: str
  sample: [cp-1]
wait:
  description: What was waited for, for how long, and whether it was met (null with O(wait_for=none)).
  returned: always
  type: dict
  sample: {condition: daemonsets_ready, timeout: 600, seconds: 42.1, met: true, polls: 15, api_errors: 2}
'''

import time
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import nodes as k8s_nodes
from ansible_collections.nodeops.memcg.plugins.module_utils import names as naming
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

#: seconds between polls while waiting
POLL_SECONDS = 3


def read(kube, names, with_pods):
    """(summaries by name, raw nodes by name, pods by node name) for the wanted nodes."""
    nodes = dict((n['metadata']['name'], n) for n in kube.get_items('nodes'))
    wanted = sorted(set(names)) if names else sorted(nodes)
    pods = {}
    if with_pods:
        for name in wanted:
            if name in nodes:
                pods[name] = kube.get_items('pods', all_namespaces=True, field_selector='spec.nodeName=%s' % name)
    return wanted, nodes, pods


def report(wanted, nodes, pods, with_pods):
    summaries = []
    for name in wanted:
        if name not in nodes:
            continue
        summary = k8s_nodes.node_summary(nodes[name])
        if with_pods:
            summary['pods'] = sorted((k8s_nodes.pod_summary(p) for p in pods.get(name, [])),
                                     key=lambda p: (p['namespace'], p['name']))
        summaries.append(summary)
    return {
        'nodes': summaries,
        'missing': [n for n in wanted if n not in nodes],
        'not_ready': [s['name'] for s in summaries if not s['ready']],
        'unschedulable': [s['name'] for s in summaries if s['unschedulable']],
        'control_plane': [s['name'] for s in summaries if s['control_plane']],
    }


def wait(kube, names, condition, timeout, include_pods, clock=None, sleep=None):
    """Poll until every wanted node meets condition; return (wanted, nodes, pods, wait result).

    Transient API errors (unreachable, 5xx, 429, dropped connections) are retried until the deadline;
    each kubectl request's timeout is capped at the time left, so no call outlasts the wait.
    """
    clock = clock or time.time
    sleep = sleep or time.sleep
    start = clock()
    deadline = start + timeout
    polls = 0
    api_errors = 0
    while True:
        polls += 1
        try:
            wanted, nodes, pods = read(kube.capped(deadline - clock()), names,
                                       include_pods or condition == 'daemonsets_ready')
        except k8s_client.KubectlError as exc:
            if not k8s_client.is_transient(exc):
                raise
            api_errors += 1
            pending = [('-', 'the API did not answer (%d transient errors, the last: %s)' % (api_errors, exc))]
        else:
            pending = []
            for name in wanted:
                met, why = k8s_nodes.wait_condition_met(condition, nodes.get(name), pods.get(name))
                if not met:
                    pending.append((name, why))
        now = clock()
        if not pending:
            return wanted, nodes, pods, {'condition': condition, 'timeout': timeout, 'met': True, 'polls': polls,
                                         'seconds': round(now - start, 1), 'api_errors': api_errors}
        if now >= deadline:
            details = '; '.join('node %s: %s' % (name, why) for name, why in pending)
            raise k8s_client.WaitTimeoutError('timed out after %ds waiting for %s on %d node(s): %s'
                                              % (timeout, condition, len(pending), details))
        sleep(max(0.1, min(POLL_SECONDS, deadline - now)))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            k8s_client.KUBECTL_OPTIONS,
            names=dict(type='list', elements='str', default=[]),
            include_pods=dict(type='bool', default=False),
            wait_for=dict(type='str', default='none', choices=['none', 'ready', 'not_ready', 'daemonsets_ready']),
            timeout=dict(type='int', default=300),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        if params['timeout'] < 1:
            raise MemcgError('timeout must be a positive number of seconds, got %d' % params['timeout'])
        k8s_client.check_kubectl_options(params)
        wanted_names = [naming.dns_subdomain('names[%d]' % index, name)
                        for index, name in enumerate(params['names'])]
        kube = k8s_client.kubectl_for(module)
        if params['wait_for'] == 'none':
            wanted, nodes, pods = read(kube, wanted_names, params['include_pods'])
            waited = None
        else:
            wanted, nodes, pods, waited = wait(kube, wanted_names, params['wait_for'], params['timeout'],
                                               params['include_pods'])
        result = report(wanted, nodes, pods, params['include_pods'])
    except MemcgError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())
    else:
        module.exit_json(changed=False, wait=waited, **result)


if __name__ == '__main__':
    main()
