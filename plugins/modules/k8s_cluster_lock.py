#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: k8s_cluster_lock
short_description: A cluster-wide lock for rolling node operations, as a Kubernetes Lease
version_added: 1.0.0
description:
  - Takes or releases a lock held in a C(coordination.k8s.io/v1) Lease, so that two rolling kernel
    upgrades never run on the same cluster at once. The Lease's C(holderIdentity) is the holder (the
    run id); C(renewTime) plus C(leaseDurationSeconds) is when the lock expires if its holder
    disappears.
  - V(acquired) - when the Lease does not exist it is created; a concurrent create by another run
    (HTTP 409 AlreadyExists) fails naming that holder. When it is held by O(holder), it is renewed
    (C(renewTime) set to now, O(ttl) applied). When nobody holds it (released) or its holder's time
    ran out, it is taken over. Otherwise the module fails naming the holder and when the lock
    expires.
  - V(released) - when O(holder) holds the lock, C(holderIdentity) is removed (the Lease object
    stays, keeping C(leaseTransitions) as history). When someone else holds it, nothing changes and
    the module warns.
  - Every renew, take-over and release is a replace carrying the C(resourceVersion) that was read,
    so of two racing runs exactly one wins; the loser (HTTP 409 Conflict) fails naming the winner.
  - Times are taken from the clock of the host the module runs on; keep it in sync (NTP).
author:
  - nodeops.memcg contributors (@nodeops)
extends_documentation_fragment:
  - nodeops.memcg.kubectl
attributes:
  check_mode:
    support: full
    description:
      - Reads the Lease and reports what a real run would do (RV(would_acquire), RV(held_by),
        RV(decision), RV(changed)); changes nothing. It still fails when another run holds the lock,
        so a plan never promises a rollout that cannot start.
  diff_mode:
    support: none
    description: RV(lease) shows the lock after the task (predicted in check mode).
  platform:
    support: full
    platforms: posix
    description: Runs kubectl on the host the task runs on.
options:
  namespace:
    description:
      - Namespace of the Lease, a DNS-1123 label.
    type: str
    default: kube-system
  name:
    description:
      - Name of the Lease, a DNS-1123 subdomain.
    type: str
    default: nodeops-memcg-kernel-upgrade
  holder:
    description:
      - Who takes or releases the lock - the run id of the upgrade (the same value as the
        O(nodeops.memcg.k8s_node#module:run_id) of M(nodeops.memcg.k8s_node)).
      - Letters, digits and the characters C(._:@+-), starting with a letter or digit, at most 128 characters.
    type: str
    required: true
  ttl:
    description:
      - Seconds the lock stays valid after it was taken or last renewed (C(leaseDurationSeconds)).
        Acquire again (renew) before it runs out when one batch can take longer.
      - From V(1) to V(2147483647) (the Lease field is a 32-bit integer).
    type: int
    default: 3600
  state:
    description:
      - V(acquired) takes or renews the lock, V(released) gives it back.
    type: str
    default: acquired
    choices: [acquired, released]
notes:
  - RBAC the kubeconfig user needs - C(leases) get, create and update in O(namespace). See C(docs/kubernetes.md).
seealso:
  - module: nodeops.memcg.k8s_node
  - name: Kubernetes access of nodeops.memcg
    description: Annotations, the lock, what each module sends to the API and the RBAC it needs.
    link: https://github.com/nodeops/memcg/blob/main/docs/kubernetes.md
'''

EXAMPLES = r'''
- name: Take the upgrade lock for two hours
  nodeops.memcg.k8s_cluster_lock:
    holder: "{{ kernel_upgrade_run_id }}"
    ttl: 7200
  delegate_to: localhost
  run_once: true

- name: Give it back
  nodeops.memcg.k8s_cluster_lock:
    holder: "{{ kernel_upgrade_run_id }}"
    state: released
  delegate_to: localhost
  run_once: true

- name: Would the rollout be allowed to start? (fails when another run holds the lock)
  nodeops.memcg.k8s_cluster_lock:
    holder: "{{ kernel_upgrade_run_id }}"
    kubeconfig: /etc/nodeops/kubeconfig
    namespace: nodeops
  check_mode: true
  delegate_to: localhost
  register: lock_plan
'''

RETURN = r'''
changed:
  description: True when the Lease was created, renewed, taken over or released (in check mode, would be).
  returned: always
  type: bool
  sample: true
decision:
  description:
    - What the lock state called for. With O(state=acquired) - V(create), V(renew),
      V(take_over_expired) (also when nobody holds it), V(held_by_other). With O(state=released) -
      V(release), V(not_held) (no Lease or nobody holds it), V(held_by_other).
  returned: always
  type: str
  sample: create
acquired:
  description: True when this task took or renewed the lock (always false in check mode).
  returned: always
  type: bool
  sample: true
would_acquire:
  description: With O(state=acquired), true when the lock is free, expired or ours (a real run takes it).
  returned: always
  type: bool
  sample: true
released:
  description: True when this task released the lock (always false in check mode).
  returned: always
  type: bool
  sample: false
held_by:
  description: The holder found before the task (null when there was no Lease or nobody held it).
  returned: always
  type: str
  sample: upgrade-20240501
namespace:
  description: Namespace of the Lease.
  returned: always
  type: str
  sample: kube-system
name:
  description: Name of the Lease.
  returned: always
  type: str
  sample: nodeops-memcg-kernel-upgrade
lease:
  description: The lock after the task (predicted in check mode); null when no Lease exists.
  returned: always
  type: dict
  contains:
    holder:
      description: C(holderIdentity), null when released.
      type: str
      returned: always
      sample: upgrade-20240501
    acquire_time:
      description: C(acquireTime), when the current holder took the lock.
      type: str
      returned: always
      sample: '2024-05-01T10:00:00.000000Z'
    renew_time:
      description: C(renewTime), when the lock was last taken or renewed.
      type: str
      returned: always
      sample: '2024-05-01T11:30:00.000000Z'
    ttl:
      description: C(leaseDurationSeconds).
      type: int
      returned: always
      sample: 3600
    expires_at:
      description: C(renewTime) plus C(leaseDurationSeconds), UTC.
      type: str
      returned: always
      sample: '2024-05-01T12:30:00.000000Z'
    expired:
      description: True when RV(lease.expires_at) is in the past.
      type: bool
      returned: always
      sample: false
    seconds_left:
      description: Seconds until RV(lease.expires_at) (0 when expired).
      type: int
      returned: always
      sample: 3599
    transitions:
      description: C(leaseTransitions), how many times the lock changed hands.
      type: int
      returned: always
      sample: 3
    resource_version:
      description: C(metadata.resourceVersion) of the Lease.
      type: str
      returned: always
      sample: '48213'
'''

import time
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import lease as k8s_lease
from ansible_collections.nodeops.memcg.plugins.module_utils import names as naming
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError


def held_message(where, state):
    return ('lock %s is held by %s (renewed %s, expires %s, in %ds); wait for that run to finish or release it, '
            'or let the lock expire' % (where, state['holder'], state['renew_time'], state['expires_at'],
                                        state['seconds_left']))


def read_lock(module, kube, result, now):
    """The Lease as it is: (where, the object or None, its state); held_by and lease go in result."""
    params = module.params
    where = '%s/%s' % (params['namespace'], params['name'])
    lease = kube.get_optional(k8s_lease.LEASE_KIND, params['name'], namespace=params['namespace'])
    before = k8s_lease.lease_state(lease, now, params['ttl'])
    result['held_by'] = before['holder'] if before else None
    result['lease'] = before
    return where, lease, before


def acquire(module, kube, result, now):
    params = module.params
    namespace, name, holder, ttl = params['namespace'], params['name'], params['holder'], params['ttl']
    where, lease, before = read_lock(module, kube, result, now)
    decision = k8s_lease.lease_decision(lease, holder, now, ttl)
    result['decision'] = decision
    if decision == 'held_by_other':
        raise MemcgError(held_message(where, before))
    result['would_acquire'] = True
    wanted = k8s_lease.lease_object(name, namespace, holder, ttl, now, previous=lease)
    if module.check_mode:
        result['changed'] = True
        result['lease'] = k8s_lease.lease_state(wanted, now, ttl)
        return
    try:
        done = kube.create(wanted) if decision == 'create' else kube.replace(wanted)
    except (k8s_client.AlreadyExistsError, k8s_client.ConflictError) as exc:
        now_state = k8s_lease.lease_state(kube.get_optional(k8s_lease.LEASE_KIND, name, namespace=namespace), time.time(), ttl)
        winner = now_state['holder'] if now_state else None
        raise MemcgError('lost the race for lock %s (%s): %s' % (
            where, exc.code, held_message(where, now_state) if winner and winner != holder else
            'another run changed it meanwhile; try again'))
    result['acquired'] = result['changed'] = True
    result['lease'] = k8s_lease.lease_state(done, now, ttl)


def release(module, kube, result, now):
    holder, ttl = module.params['holder'], module.params['ttl']
    where, lease, before = read_lock(module, kube, result, now)
    if before is None or before['holder'] is None:
        result['decision'] = 'not_held'
        return
    if before['holder'] != holder:
        result['decision'] = 'held_by_other'
        module.warn('lock %s is held by %s, not by %s: left alone' % (where, before['holder'], holder))
        return
    result['decision'] = 'release'
    wanted = k8s_lease.released_lease(lease)
    if module.check_mode:
        result['changed'] = True
        result['lease'] = k8s_lease.lease_state(wanted, now, ttl)
        return
    try:
        done = kube.replace(wanted)
    except k8s_client.ConflictError:
        raise MemcgError('lock %s changed while it was being released (409 Conflict); read it again and retry' % where)
    result['released'] = result['changed'] = True
    result['lease'] = k8s_lease.lease_state(done, now, ttl)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            k8s_client.KUBECTL_OPTIONS,
            namespace=dict(type='str', default=k8s_lease.DEFAULT_LOCK_NAMESPACE),
            name=dict(type='str', default=k8s_lease.DEFAULT_LOCK_NAME),
            holder=dict(type='str', required=True),
            ttl=dict(type='int', default=3600),
            state=dict(type='str', default='acquired', choices=['acquired', 'released']),
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = {'changed': False, 'acquired': False, 'would_acquire': False, 'released': False, 'held_by': None,
              'decision': None, 'lease': None, 'namespace': params['namespace'], 'name': params['name']}
    try:
        naming.dns_label('namespace', params['namespace'])
        naming.dns_subdomain('name', params['name'])
        naming.safe_token('holder', params['holder'])
        naming.int_range('ttl', params['ttl'], 1, naming.INT32_MAX)
        k8s_client.check_kubectl_options(params)
        kube = k8s_client.kubectl_for(module)
        now = time.time()
        if params['state'] == 'acquired':
            acquire(module, kube, result, now)
        else:
            release(module, kube, result, now)
    except MemcgError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc(), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
