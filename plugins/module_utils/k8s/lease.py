# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster-wide lock of the rolling upgrade: a coordination.k8s.io/v1 Lease, as pure decisions.

What a Lease says (holder, expiry), what acquiring it means now, and the Lease object to create,
renew, take over or release. client.py reads and writes it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.nodeops.memcg.plugins.module_utils.k8s.times import format_time, parse_time

LEASE_KIND = 'leases.coordination.k8s.io'
DEFAULT_LOCK_NAMESPACE = 'kube-system'
DEFAULT_LOCK_NAME = 'nodeops-memcg-kernel-upgrade'


def lease_state(lease, now, ttl=None):
    """The lock facts of a Lease: holder, times, ttl, expires_at, expired, seconds_left."""
    if lease is None:
        return None
    spec = lease.get('spec') or {}
    duration = spec.get('leaseDurationSeconds')
    if duration is None:
        duration = ttl
    renew = parse_time(spec.get('renewTime')) or parse_time(spec.get('acquireTime'))
    expires = renew + duration if (renew is not None and duration is not None) else None
    return {
        'holder': spec.get('holderIdentity') or None,
        'acquire_time': spec.get('acquireTime'),
        'renew_time': spec.get('renewTime'),
        'ttl': duration,
        'expires_at': format_time(expires) if expires is not None else None,
        'expired': expires is None or expires < now,
        'seconds_left': max(0, int(expires - now)) if expires is not None else 0,
        'transitions': int(spec.get('leaseTransitions') or 0),
        'resource_version': (lease.get('metadata') or {}).get('resourceVersion'),
    }


def lease_decision(lease, holder, now, ttl):
    """What acquiring the lock for `holder` at `now` (epoch seconds) means.

    'create' (no Lease), 'renew' (it is ours), 'take_over_expired' (another holder's time ran out,
    or nobody holds it: released), 'held_by_other'.
    """
    if lease is None:
        return 'create'
    state = lease_state(lease, now, ttl)
    if state['holder'] == holder:
        return 'renew'
    if state['holder'] is None or state['expired']:
        return 'take_over_expired'
    return 'held_by_other'


def lease_object(name, namespace, holder, ttl, now, previous=None):
    """The Lease to create, renew or take over at `now` (resourceVersion of `previous` as precondition)."""
    stamp = format_time(now)
    spec = {'holderIdentity': holder, 'leaseDurationSeconds': int(ttl), 'acquireTime': stamp, 'renewTime': stamp,
            'leaseTransitions': 0}
    metadata = {'name': name, 'namespace': namespace,
                'labels': {'app.kubernetes.io/managed-by': 'nodeops.memcg'}}
    if previous is not None:
        old_meta = previous.get('metadata') or {}
        old_spec = previous.get('spec') or {}
        for key in ('labels', 'annotations'):
            if old_meta.get(key):
                metadata[key] = dict(old_meta[key])
        metadata['resourceVersion'] = old_meta.get('resourceVersion')
        transitions = int(old_spec.get('leaseTransitions') or 0)
        if old_spec.get('holderIdentity') == holder:
            spec['acquireTime'] = old_spec.get('acquireTime') or stamp
            spec['leaseTransitions'] = transitions
        else:
            spec['leaseTransitions'] = transitions + 1
    return {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease', 'metadata': metadata, 'spec': spec}


def released_lease(previous):
    """The Lease with nobody holding it (resourceVersion of `previous` as precondition)."""
    meta = dict(previous.get('metadata') or {})
    spec = dict(previous.get('spec') or {})
    spec.pop('holderIdentity', None)
    metadata = {'name': meta.get('name'), 'namespace': meta.get('namespace'),
                'resourceVersion': meta.get('resourceVersion')}
    for key in ('labels', 'annotations'):
        if meta.get(key):
            metadata[key] = dict(meta[key])
    return {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease', 'metadata': metadata, 'spec': spec}
