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
      - Also list the pods on each reported node (RV(nodes[].pods)), with their controller kind,
        readiness and resource requests. For one node, one API list of its pods; for more, one list of
        every pod in the cluster.
    type: bool
    default: false
  pod_selector:
    description:
      - List only the pods matching this label selector (implies O(include_pods)), for example
        C(app=backup) or C(nodeops.example/blocks-reboot in (true,yes)); passed to the API, one list.
      - Checked against the label selector grammar before kubectl runs.
    type: str
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
  soak:
    description:
      - After O(wait_for) (if any), keep reading the nodes every few seconds for this many seconds; each
        must be Ready at every reading. A node that is not is reported in RV(soak.broken) with why,
        even if it comes back; the module does not fail for it (the caller decides).
      - Transient API errors are ridden out; when the last reading gets no answer (retried up to
        30 seconds past the end), the soak cannot say the nodes held, and they are reported broken.
      - V(0) does not soak.
    type: int
    default: 0
notes:
  - RBAC the kubeconfig user needs - C(nodes) get and list; with O(include_pods), O(pod_selector) or
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

- name: Watch the upgraded nodes for 5 minutes; each must stay Ready
  nodeops.memcg.k8s_node_info:
    names: [worker-1, worker-2]
    soak: 300
  delegate_to: localhost
  register: soaked

- name: Find the nodes running a pod that must not be disrupted
  nodeops.memcg.k8s_node_info:
    pod_selector: nodeops.example/no-reboot=true
  delegate_to: localhost
  register: blocking

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
    allocatable:
      description: C(status.allocatable) - CPU in millicores, memory in bytes and the pod count.
      type: dict
      returned: always
      sample: {cpu_millis: 3800, memory_bytes: 15623913472, pods: 110}
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
        requests:
          description:
            - What the scheduler reserves for the pod - CPU in millicores, memory in bytes - from its
              containers' requests, its init containers and its overhead.
          type: dict
          returned: always
          sample: {cpu_millis: 250, memory_bytes: 268435456}
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
soak:
  description: The soak; null with O(soak=0).
  returned: always
  type: dict
  contains:
    seconds:
      description: The soak asked for.
      type: int
      returned: always
      sample: 300
    elapsed:
      description: Seconds it took (longer when the last reading waited for the API).
      type: float
      returned: always
      sample: 300.4
    polls:
      description: Readings made.
      type: int
      returned: always
      sample: 101
    api_errors:
      description: Transient API errors ridden out.
      type: int
      returned: always
      sample: 0
    broken:
      description: Each node that was not Ready at some reading (or gone), to why; the first break is kept.
      type: dict
      returned: always
      sample: {worker-2: its Ready condition was False 42s into the 300s soak}
    held:
      description: The nodes that were Ready at every reading.
      type: list
      elements: str
      returned: always
      sample: [worker-1]
'''

import time
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeops.memcg.plugins.module_utils import brakes
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import nodes as k8s_nodes
from ansible_collections.nodeops.memcg.plugins.module_utils import names as naming
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

#: seconds between polls while waiting
POLL_SECONDS = 3


def read(kube, names, with_pods, pod_selector=None):
    """(summaries by name, raw nodes by name, pods by node name) for the wanted nodes.

    The pods of one node come from one list of that node's pods; of more nodes, from one list of
    every pod in the cluster (one API call, whatever the number of nodes). A pod selector is passed
    to the API as a label selector.
    """
    nodes = dict((n['metadata']['name'], n) for n in kube.get_items('nodes'))
    wanted = sorted(set(names)) if names else sorted(nodes)
    present = [name for name in wanted if name in nodes]
    pods = {}
    if with_pods and len(present) == 1:
        pods[present[0]] = kube.get_items('pods', all_namespaces=True, label_selector=pod_selector,
                                          field_selector='spec.nodeName=%s' % present[0])
    elif with_pods and present:
        keep = set(present)
        for pod in kube.get_items('pods', all_namespaces=True, label_selector=pod_selector):
            node = (pod.get('spec') or {}).get('nodeName')
            if node in keep:
                pods.setdefault(node, []).append(pod)
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


def wait(kube, names, condition, timeout, include_pods, pod_selector=None, clock=None, sleep=None):
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
                                       include_pods or condition == 'daemonsets_ready', pod_selector)
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


def soak(kube, names, seconds, clock=None, sleep=None):
    """Read the nodes every POLL_SECONDS for `seconds`: each must stay Ready at every reading.

    Returns the soak result (RV(soak)); a node that is not Ready at some reading is in `broken`
    with why, even when it is Ready again later. Transient API errors are ridden out; a soak whose
    last reading does not get an answer (retried for up to a grace period after the end) cannot
    say the nodes held, so the nodes not broken yet break for that.
    """
    clock = clock or time.time
    sleep = sleep or time.sleep
    start = clock()
    deadline = start + seconds
    grace = min(30, max(POLL_SECONDS, seconds))
    polls = api_errors = 0
    broken = {}
    last_error = None
    wanted = sorted(set(names))
    while True:
        polls += 1
        try:
            wanted, nodes, _pods = read(kube.capped(max(1, deadline + grace - clock())), names, False)
        except k8s_client.KubectlError as exc:
            if not k8s_client.is_transient(exc):
                raise
            api_errors += 1
            last_error = str(exc)
        else:
            last_error = None
            broken = k8s_nodes.soak_breaks(wanted, nodes, clock() - start, seconds, broken)
        now = clock()
        if len(broken) == len(wanted) or (now >= deadline and (last_error is None or now >= deadline + grace)):
            break
        sleep(max(0.1, min(POLL_SECONDS, (deadline if now < deadline else deadline + grace) - now)))
    if last_error is not None:
        for name in wanted:
            broken.setdefault(name, 'the API did not answer at the end of the %ds soak (%d transient errors, the '
                                    'last: %s)' % (seconds, api_errors, last_error))
    return {'seconds': seconds, 'elapsed': round(clock() - start, 1), 'polls': polls, 'api_errors': api_errors,
            'broken': broken, 'held': [name for name in wanted if name not in broken]}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            k8s_client.KUBECTL_OPTIONS,
            names=dict(type='list', elements='str', default=[]),
            include_pods=dict(type='bool', default=False),
            pod_selector=dict(type='str'),
            wait_for=dict(type='str', default='none', choices=['none', 'ready', 'not_ready', 'daemonsets_ready']),
            timeout=dict(type='int', default=300),
            soak=dict(type='int', default=0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        if params['timeout'] < 1:
            raise MemcgError('timeout must be a positive number of seconds, got %d' % params['timeout'])
        naming.int_range('soak', params['soak'], 0, naming.INT32_MAX)
        k8s_client.check_kubectl_options(params)
        wanted_names = [naming.dns_subdomain('names[%d]' % index, name)
                        for index, name in enumerate(params['names'])]
        selector = params['pod_selector']
        if selector is not None:
            selector = brakes.label_selector(selector, option='pod_selector')
        with_pods = params['include_pods'] or selector is not None
        kube = k8s_client.kubectl_for(module)
        if params['wait_for'] == 'none':
            wanted, nodes, pods = read(kube, wanted_names, with_pods, selector)
            waited = None
        else:
            wanted, nodes, pods, waited = wait(kube, wanted_names, params['wait_for'], params['timeout'],
                                               with_pods, selector)
        soaked = soak(kube, wanted_names or wanted, params['soak']) if params['soak'] else None
        result = report(wanted, nodes, pods, with_pods)
    except MemcgError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())
    else:
        module.exit_json(changed=False, wait=waited, soak=soaked, **result)


if __name__ == '__main__':
    main()
