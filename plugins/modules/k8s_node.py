#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: k8s_node
short_description: Cordon, drain, uncordon or mark as failed a Kubernetes node, remembering whose cordon it is
version_added: 1.0.0
description:
  - Node steps of the rolling kernel upgrade, through the user's C(kubectl) and kubeconfig, run as
    argument lists. Every cordon this module makes carries the annotation
    C(nodeops.memcg/cordoned-by=<run_id>), and only the run that cordoned a node uncordons it.
    Nodes cordoned by someone else (an admin, another run) stay cordoned.
  - V(cordoned) cordons the node and annotates it in one API request. A node that is already
    unschedulable without the annotation is admin-cordoned - it is left alone (not annotated) and
    RV(admin_cordoned) is true, so the caller keeps it cordoned at the end.
  - V(drained) cordons as above, then runs C(kubectl drain) with the drain options. Pods are
    evicted through the eviction API, which honours PodDisruptionBudgets; they are deleted without
    it only with O(disable_eviction=true). When the API server does not advertise the eviction
    API, the module fails instead of letting kubectl fall back to deleting pods. When evictions are
    refused, it fails with a message naming each blocking pod and the PodDisruptionBudgets that
    block it, and returns them in RV(blocking); the node stays cordoned.
  - V(uncordoned) uncordons the node and removes the cordoned-by annotation only when the
    annotation equals O(run_id). Otherwise the node stays as it is and RV(left_cordoned) says why.
    A C(nodeops.memcg/failure) annotation recorded by this run is removed as well.
  - V(failed) records O(reason) in the C(nodeops.memcg/failure) annotation (and O(run_id) in
    C(nodeops.memcg/failure-run)). It never uncordons.
  - V(progress) records the step of the upgrade the node finished in C(nodeops.memcg/step) (and
    O(target) in C(nodeops.memcg/target)), so that a re-run knows where to resume; only on a node this
    run cordoned (otherwise nothing changes). V(uncordoned) removes both with the cordon.
  - Each change is a merge patch carrying the node's C(resourceVersion) as a precondition, so a
    concurrent change (an admin cordoning the node meanwhile) is never overwritten; the module reads
    the node again and decides again, up to three times.
author:
  - nodeops.memcg contributors (@nodeops)
extends_documentation_fragment:
  - nodeops.memcg.kubectl
attributes:
  check_mode:
    support: full
    description:
      - Nothing is changed. The module reads the node and reports RV(changed) as what a real run would do.
      - With O(state=drained) it runs C(kubectl drain --dry-run=server) - the API server runs its real
        checks (PodDisruptionBudgets included) and persists nothing - and reports in RV(evicted) the
        pods a real run would evict. A drain that would be refused fails in check mode too.
  diff_mode:
    support: full
    description: Reports C(unschedulable) and the C(nodeops.memcg/*) annotations before and after.
  platform:
    support: full
    platforms: posix
    description: Runs kubectl on the host the task runs on.
options:
  name:
    description:
      - The node name, a DNS-1123 subdomain (as Kubernetes requires); anything else is refused
        before kubectl runs.
    type: str
    required: true
  state:
    description:
      - V(cordoned), V(drained), V(uncordoned), V(failed) or V(progress); see the description.
    type: str
    required: true
    choices: [cordoned, drained, uncordoned, failed, progress]
  step:
    description:
      - The step of the upgrade the node finished, recorded with O(state=progress) (required there).
    type: str
    choices: [cordoned, drained, booted, healthy, committed]
  target:
    description:
      - The kernel release the upgrade boots on the node, recorded with O(state=progress).
    type: str
  run_id:
    description:
      - Identifies this upgrade run; the value of the C(nodeops.memcg/cordoned-by) annotation.
      - Required with O(state=cordoned), O(state=drained), O(state=uncordoned) and O(state=progress). Use the same value
        for the lock holder (M(nodeops.memcg.k8s_cluster_lock)).
      - Letters, digits and the characters C(._:@+-), starting with a letter or digit, at most 128 characters.
    type: str
  adopt:
    description:
      - Take over a cordon left by an earlier run of this tool (a C(nodeops.memcg/cordoned-by) annotation
        with another run id), together with its failure annotations, so this run uncordons the node when
        it is done with it. Safe only while holding the cluster lock (M(nodeops.memcg.k8s_cluster_lock)),
        which guarantees that run is over; the C(nodeops.memcg.kernel_upgrade) role sets it so a re-run
        finishes an interrupted rollout. Nodes cordoned by an admin are never adopted.
    type: bool
    default: false
  reason:
    description:
      - Why the upgrade of this node failed, stored in the C(nodeops.memcg/failure) annotation
        (cut at 1024 characters). Required with O(state=failed).
    type: str
  timeout:
    description:
      - Seconds C(kubectl drain) may take (C(--timeout)); then it gives up and the module fails
        naming the pods still refused. Must be positive.
    type: int
    default: 600
  grace_period:
    description:
      - Seconds each pod gets to terminate (C(--grace-period)). V(-1) uses each pod's own
        C(terminationGracePeriodSeconds).
    type: int
    default: -1
  delete_emptydir_data:
    description:
      - Evict pods that use emptyDir volumes, whose data is lost (C(--delete-emptydir-data)).
    type: bool
    default: true
  ignore_daemonsets:
    description:
      - Leave DaemonSet-managed pods on the node (C(--ignore-daemonsets)); without it, kubectl drain
        refuses nodes that run DaemonSet pods.
    type: bool
    default: true
  disable_eviction:
    description:
      - Delete pods instead of evicting them (C(--disable-eviction)), bypassing
        PodDisruptionBudgets. Only for emergencies.
    type: bool
    default: false
  force:
    description:
      - Also delete pods that no controller manages (bare pods), which are then gone for good (C(--force)).
    type: bool
    default: false
notes:
  - RBAC the kubeconfig user needs - C(nodes) get and patch; for O(state=drained) also C(pods) list,
    C(pods/eviction) create, C(daemonsets) get (kubectl checks each DaemonSet owner),
    C(poddisruptionbudgets) list (to name the blocking budgets), and C(pods) delete with
    O(disable_eviction) or O(force). See C(docs/kubernetes.md).
seealso:
  - module: nodeops.memcg.k8s_node_info
  - module: nodeops.memcg.k8s_cluster_lock
  - name: Kubernetes access of nodeops.memcg
    description: Annotations, the lock, what each module sends to the API and the RBAC it needs.
    link: https://github.com/nodeops/memcg/blob/main/docs/kubernetes.md
'''

EXAMPLES = r'''
- name: Drain the node for the kernel upgrade (cordons it as this run's first)
  nodeops.memcg.k8s_node:
    name: "{{ inventory_hostname }}"
    state: drained
    run_id: "{{ kernel_upgrade_run_id }}"
    timeout: 900
  delegate_to: localhost
  register: drained

- name: Preview the drain (server-side dry run, nothing changes)
  nodeops.memcg.k8s_node:
    name: worker-1
    state: drained
    run_id: upgrade-20240501
  check_mode: true
  delegate_to: localhost

- name: Uncordon, only if this run cordoned the node
  nodeops.memcg.k8s_node:
    name: "{{ inventory_hostname }}"
    state: uncordoned
    run_id: "{{ kernel_upgrade_run_id }}"
  delegate_to: localhost
  register: uncordon

- name: On failure, record why on the node (it stays cordoned)
  nodeops.memcg.k8s_node:
    name: "{{ inventory_hostname }}"
    state: failed
    run_id: "{{ kernel_upgrade_run_id }}"
    reason: "node not Ready 600 s after booting 5.15.0-105"
  delegate_to: localhost
'''

RETURN = r'''
changed:
  description: True when the node was patched or pods were evicted (in check mode, would be).
  returned: always
  type: bool
  sample: true
name:
  description: The node name.
  returned: always
  type: str
  sample: worker-1
state:
  description: The O(state) applied.
  returned: always
  type: str
  sample: drained
admin_cordoned:
  description:
    - True when the node was unschedulable without a C(nodeops.memcg/cordoned-by) annotation
      before this task, so someone else cordoned it. It must stay cordoned when the upgrade ends.
  returned: always
  type: bool
  sample: false
cordon_owner:
  description:
    - Whose cordon the node carried before this task - null (schedulable), V(this_run), V(other_run)
      (annotated with another run id) or V(admin) (no annotation).
  returned: always
  type: str
  sample: this_run
cordoned_by:
  description: The C(nodeops.memcg/cordoned-by) annotation after the task (predicted in check mode), or null.
  returned: always
  type: str
  sample: upgrade-20240501
unschedulable:
  description: Whether the node is cordoned after the task (predicted in check mode).
  returned: always
  type: bool
  sample: true
left_cordoned:
  description: With O(state=uncordoned), true when the node stays cordoned because this run did not cordon it.
  returned: always
  type: bool
  sample: false
left_cordoned_reason:
  description: Why the node stays cordoned (with RV(left_cordoned)), else null.
  returned: always
  type: str
  sample: cordoned by an admin (no nodeops.memcg/cordoned-by annotation); left cordoned
evicted:
  description:
    - With O(state=drained), the pods C(kubectl drain) evicted (in check mode, would evict), as
      C(namespace/name); empty otherwise.
  returned: always
  type: list
  elements: str
  sample: [shop/web-5d8f7]
ignored_daemonset_pods:
  description: With O(state=drained), DaemonSet pods kubectl left on the node, as C(namespace/name).
  returned: always
  type: list
  elements: str
  sample: [kube-system/kube-proxy-x7k2p]
blocking:
  description:
    - The pods a refused drain could not evict (also returned when the module fails); empty otherwise.
    - RV(blocking[].reason) is one of V(pdb), V(multiple_pdbs), V(timeout), V(no_controller),
      V(local_storage), V(daemonset), V(forbidden), V(error).
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: The pod's namespace.
      type: str
      returned: always
      sample: shop
    pod:
      description: The pod's name.
      type: str
      returned: always
      sample: web-5d8f7
    reason:
      description: Why kubectl could not evict it.
      type: str
      returned: always
      sample: pdb
    pdbs:
      description: Names of the PodDisruptionBudgets in the pod's namespace that block it.
      type: list
      elements: str
      returned: always
      sample: [web-pdb]
    message:
      description: kubectl's own words.
      type: str
      returned: always
      sample: Cannot evict pod as it would violate the pod's disruption budget.
dry_run:
  description: True when C(kubectl drain) ran with C(--dry-run=server) (check mode).
  returned: always
  type: bool
  sample: false
before:
  description: C(unschedulable) and the C(nodeops.memcg/*) annotations before the task.
  returned: always
  type: dict
  sample: {unschedulable: false, annotations: {}}
after:
  description: C(unschedulable) and the C(nodeops.memcg/*) annotations after the task (predicted in check mode).
  returned: always
  type: dict
  sample: {unschedulable: true, annotations: {nodeops.memcg/cordoned-by: upgrade-20240501}}
'''

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import nodes as k8s_nodes
from ansible_collections.nodeops.memcg.plugins.module_utils import names as naming
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

ATTEMPTS = 3
#: refusals worth asking the PodDisruptionBudgets about
PDB_REASONS = ('pdb', 'multiple_pdbs', 'timeout')


def plan(state, node, run_id, reason, adopt=False, progress=(None, None)):
    """(patch or None, facts) for one state, from the node as read."""
    owner = k8s_nodes.cordon_owner(node, run_id)
    annotations = (node.get('metadata') or {}).get('annotations') or {}
    rv = (node.get('metadata') or {}).get('resourceVersion')
    facts = {'cordon_owner': owner, 'admin_cordoned': owner == 'admin',
             'left_cordoned': False, 'left_cordoned_reason': None}
    patch = None
    if state in ('cordoned', 'drained'):
        if owner is None:
            patch = k8s_nodes.cordon_patch(run_id, rv)
        elif owner == 'other_run' and adopt:
            patch = k8s_nodes.cordon_patch(run_id, rv)
            if k8s_nodes.FAILURE in annotations:
                patch['metadata']['annotations'][k8s_nodes.FAILURE_RUN] = run_id
    elif state == 'uncordoned':
        patch = k8s_nodes.uncordon_patch(node, run_id, rv)
        if owner == 'admin':
            facts['left_cordoned'] = True
            facts['left_cordoned_reason'] = ('cordoned by an admin (no %s annotation); left cordoned'
                                             % k8s_nodes.CORDONED_BY)
        elif owner == 'other_run':
            facts['left_cordoned'] = True
            facts['left_cordoned_reason'] = ('cordoned by run %s, not by this run (%s); left cordoned'
                                             % (annotations.get(k8s_nodes.CORDONED_BY), run_id))
    elif state == 'failed':
        patch = k8s_nodes.failure_patch(node, reason, run_id, rv)
    elif state == 'progress':
        patch = k8s_nodes.progress_patch(node, run_id, progress[0], progress[1], rv)
    return patch, facts


def converge(module, kube, name, state):
    """Read, decide, patch (retrying on conflict); return (node before, node after, facts, changed)."""
    params = module.params
    for attempt in range(ATTEMPTS):
        node = kube.get_json('node', name)
        patch, facts = plan(state, node, params['run_id'], params['reason'], params['adopt'],
                            (params['step'], params['target']))
        if patch is None:
            return node, node, facts, False
        if module.check_mode:
            return node, k8s_nodes.apply_merge_patch(node, patch), facts, True
        try:
            return node, kube.patch('node', name, patch), facts, True
        except k8s_client.ConflictError:
            if attempt == ATTEMPTS - 1:
                raise
    raise MemcgError('unreachable')  # pragma: no cover


def explain_refusals(kube, name, refusals):
    """Refusals with the PodDisruptionBudgets that block each pod (pdbs, possibly empty)."""
    blocking = [dict(r, pdbs=[]) for r in refusals]
    if not any(r['reason'] in PDB_REASONS for r in refusals):
        return blocking
    try:
        pods = kube.get_items('pods', all_namespaces=True, field_selector='spec.nodeName=%s' % name)
        namespaces = set(r['namespace'] for r in refusals if r['namespace'])
        if any(r['namespace'] is None for r in refusals):
            names = set(r['pod'] for r in refusals)
            namespaces.update((p.get('metadata') or {}).get('namespace') for p in pods
                              if (p.get('metadata') or {}).get('name') in names)
        pdbs = []
        for namespace in sorted(n for n in namespaces if n):
            pdbs.extend(kube.get_items('poddisruptionbudgets', namespace=namespace))
    except k8s_client.KubectlError as exc:
        for item in blocking:
            item['message'] = '%s (could not list the PodDisruptionBudgets: %s)' % (item['message'], exc)
        return blocking
    blocked = k8s_nodes.pods_blocking(pods, pdbs, node=name)
    for item in blocking:
        for entry in blocked:
            if entry['pod'] == item['pod'] and item['namespace'] in (None, entry['namespace']):
                item['namespace'] = entry['namespace']
                item['pdbs'] = entry['pdbs']
                if item['reason'] == 'timeout':
                    item['reason'] = 'pdb'
    return blocking


def drain(module, kube, name, result):
    params = module.params
    if not params['disable_eviction']:
        if not k8s_nodes.eviction_supported(kube.get_raw('/api/v1')):
            raise MemcgError('the API server does not advertise the pods/eviction subresource, so kubectl drain would '
                             'delete the pods of node %s without honouring PodDisruptionBudgets; refusing. Set '
                             'disable_eviction=true to delete them deliberately' % name)
    try:
        out = kube.drain(name, timeout=params['timeout'], grace_period=params['grace_period'],
                         delete_emptydir_data=params['delete_emptydir_data'],
                         ignore_daemonsets=params['ignore_daemonsets'],
                         disable_eviction=params['disable_eviction'], force=params['force'],
                         dry_run=module.check_mode)
    except k8s_client.DrainError as exc:
        partial = k8s_nodes.parse_drain_output(exc.stdout, exc.stderr)
        result.update(partial)
        result['blocking'] = explain_refusals(kube, name, exc.refusals)
        if result['blocking']:
            pods = k8s_nodes.summarize_refusals(result['blocking'])
        else:
            pods = exc.stderr or str(exc)
        if module.check_mode:
            keep = 'Check mode: nothing was changed.'
        elif result['admin_cordoned']:
            keep = 'The node stays cordoned (cordoned by an admin).'
        elif result['cordoned_by']:
            keep = 'The node stays cordoned (%s=%s).' % (k8s_nodes.CORDONED_BY, result['cordoned_by'])
        else:
            keep = 'The node stays cordoned.'
        raise k8s_client.DrainError('drain of node %s %s: %s. %s'
                                    % (name, 'would fail (server-side dry run)' if module.check_mode else
                                       'failed (drain timeout %ds)' % params['timeout'], pods, keep),
                                    stderr=exc.stderr, refusals=exc.refusals)
    parsed = k8s_nodes.parse_drain_output(out)
    result.update(parsed)
    return bool(parsed['evicted'])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            k8s_client.KUBECTL_OPTIONS,
            name=dict(type='str', required=True),
            state=dict(type='str', required=True, choices=['cordoned', 'drained', 'uncordoned', 'failed', 'progress']),
            step=dict(type='str', choices=list(k8s_nodes.NODE_STEPS)),
            target=dict(type='str'),
            run_id=dict(type='str'),
            adopt=dict(type='bool', default=False),
            reason=dict(type='str'),
            timeout=dict(type='int', default=600),
            grace_period=dict(type='int', default=-1),
            delete_emptydir_data=dict(type='bool', default=True),
            ignore_daemonsets=dict(type='bool', default=True),
            disable_eviction=dict(type='bool', default=False),
            force=dict(type='bool', default=False),
        ),
        required_if=[
            ('state', 'cordoned', ['run_id']),
            ('state', 'drained', ['run_id']),
            ('state', 'uncordoned', ['run_id']),
            ('state', 'failed', ['reason']),
            ('state', 'progress', ['run_id', 'step']),
        ],
        supports_check_mode=True,
    )
    params = module.params
    name = params['name']
    state = params['state']
    result = {'changed': False, 'name': name, 'state': state, 'evicted': [], 'ignored_daemonset_pods': [],
              'blocking': [], 'dry_run': False}
    try:
        naming.dns_subdomain('name', name)
        if params['run_id'] is not None:
            naming.safe_token('run_id', params['run_id'])
        if params['reason'] is not None and not params['reason'].strip():
            raise MemcgError('reason must not be empty')
        if params['timeout'] < 1:
            raise MemcgError('timeout must be a positive number of seconds, got %d' % params['timeout'])
        naming.int_range('grace_period', params['grace_period'], -1, naming.INT32_MAX)
        k8s_client.check_kubectl_options(params)
        kube = k8s_client.kubectl_for(module)
        before, after, facts, changed = converge(module, kube, name, state)
        result.update(facts)
        result['before'] = k8s_nodes.node_state(before)
        result['after'] = k8s_nodes.node_state(after)
        result['unschedulable'] = result['after']['unschedulable']
        result['cordoned_by'] = result['after']['annotations'].get(k8s_nodes.CORDONED_BY)
        result['changed'] = changed
        if module._diff:
            result['diff'] = {'before': result['before'], 'after': result['after']}
        if state == 'drained':
            result['dry_run'] = module.check_mode
            if drain(module, kube, name, result):
                result['changed'] = True
    except k8s_client.DrainError as exc:
        result['changed'] = result['changed'] or bool(result.get('evicted'))
        module.fail_json(msg=str(exc), exception=traceback.format_exc(), **result)
    except MemcgError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc(), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
