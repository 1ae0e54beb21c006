# -*- coding: utf-8 -*-
"""The fake API's object store: resourceVersions, watch events, and the few controllers a test cluster needs.

Stored objects are never changed in place: every write builds a new dict, so watch events can
hold references. Readers get deep copies. One lock guards everything; `changed` wakes watchers.
"""

from __future__ import annotations

import copy
import datetime
import random
import threading
import time
import uuid

from . import kinds
from .kinds import ApiError
from .matching import PatchError, json_patch, merge_patch, selector_matches, strategic_merge_patch

REPLACES_ANNOTATION = 'fake.nodeops.io/replaces'
DEFAULT_KERNEL = '3.10.0-1160.el7.x86_64'
CONTROL_PLANE_LABEL = 'node-role.kubernetes.io/control-plane'
UNSCHEDULABLE_TAINT = 'node.kubernetes.io/unschedulable'
NOT_READY_TAINT = 'node.kubernetes.io/not-ready'


def now_iso(offset=0.0):
    stamp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return stamp.strftime('%Y-%m-%dT%H:%M:%SZ')


def parse_iso(stamp):
    return datetime.datetime.strptime(stamp, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc).timestamp()


def random_suffix(length=5):
    return ''.join(random.choice('bcdfghjklmnpqrstvwxz2456789') for _i in range(length))


def is_ready(obj):
    """The Ready condition of a node or pod is True."""
    return any(c.get('type') == 'Ready' and c.get('status') == 'True'
               for c in (obj.get('status') or {}).get('conditions') or [])


def controller_of(pod):
    return next((ref for ref in pod['metadata'].get('ownerReferences') or [] if ref.get('controller')), None)


def _resolve(value, total):
    """An IntOrString of a PDB (2 or '50%') -> a count, percentages rounded up."""
    if isinstance(value, str) and value.endswith('%'):
        return -(-int(value[:-1]) * total // 100)
    return int(value)


def _ready_conditions(ready, previous=None):
    stamp = now_iso()
    old = {c['type']: c for c in previous or []}
    conditions = []
    for kind, status in (('MemoryPressure', 'False'), ('DiskPressure', 'False'), ('PIDPressure', 'False'),
                         ('Ready', 'True' if ready else 'False')):
        before = old.get(kind, {})
        if kind == 'Ready':
            reason, message = (('KubeletReady', 'kubelet is posting ready status') if ready else
                               ('KubeletNotReady', 'container runtime network not ready: NetworkReady=false'))
        else:
            reason, message = 'KubeletHas' + ('No' if kind != 'PIDPressure' else 'Sufficient') + kind.replace(
                'Pressure', ''), 'kubelet has no ' + kind
        transition = before.get('lastTransitionTime') if before.get('status') == status else stamp
        conditions.append({'type': kind, 'status': status, 'lastHeartbeatTime': stamp,
                           'lastTransitionTime': transition or stamp, 'reason': reason, 'message': message})
    return conditions


class Store:
    """Every object of the fake cluster, and the event history watches replay."""

    def __init__(self, replacement_delay=0.5):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.resource_version = 1000
        self.objects = {name: {} for name in kinds.BY_NAME}
        self.events = []  # (rv, resource name, type, old object or None, new object)
        self.max_unschedulable_seen = 0
        self.never_ready = set()
        self.replacement_delay = replacement_delay
        self.recreate_pods = True
        self.manual_pdbs = {}  # (namespace, name) -> {'allowed': int, 'owed': set of evicted pod uids}
        self.pending = {}  # (namespace, pod name) -> (not before, node name or None)
        self.node_count = 0
        for namespace in ('default', 'kube-system', 'kube-public', 'kube-node-lease'):
            self.ensure_namespace(namespace)

    # ------------------------------------------------------------ low level

    def _commit(self, resource, obj, old, event_type):
        self.resource_version += 1
        obj['metadata']['resourceVersion'] = str(self.resource_version)
        key = (obj['metadata'].get('namespace', ''), obj['metadata']['name'])
        if event_type == 'DELETED':
            self.objects[resource].pop(key, None)
        else:
            self.objects[resource][key] = obj
        self.events.append((self.resource_version, resource, event_type, old, obj))
        self.changed.notify_all()
        if resource == 'nodes':
            cordoned = sum(1 for node in self.objects['nodes'].values() if node.get('spec', {}).get('unschedulable'))
            self.max_unschedulable_seen = max(self.max_unschedulable_seen, cordoned)
        elif resource == 'pods':
            self._refresh_pdbs()
        return obj

    def _current(self, resource, namespace, name):
        rtype = kinds.BY_NAME[resource]
        obj = self.objects[resource].get((namespace if rtype.namespaced else '', name))
        if obj is None:
            raise kinds.not_found(rtype, name)
        return obj

    def get(self, resource, namespace, name):
        with self.lock:
            return copy.deepcopy(self._current(resource, namespace, name))

    def find(self, resource, name, namespace=None):
        """The object or None (no error): for tests."""
        with self.lock:
            obj = self.objects[resource].get((namespace or '', name))
            return copy.deepcopy(obj) if obj else None

    def list(self, resource, namespace=None, match=None):
        """(items, resourceVersion): objects of the namespace (all when None) passing match(obj)."""
        with self.lock:
            items = [copy.deepcopy(obj) for (ns, _name), obj in sorted(self.objects[resource].items())
                     if (namespace is None or ns == namespace) and (match is None or match(obj))]
            return items, str(self.resource_version)

    def _new_metadata(self, rtype, namespace, metadata):
        metadata = dict(metadata or {})
        metadata.update({'uid': str(uuid.uuid4()), 'creationTimestamp': now_iso()})
        if rtype.namespaced:
            metadata['namespace'] = namespace
        else:
            metadata.pop('namespace', None)
        for key in ('resourceVersion', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink'):
            metadata.pop(key, None)
        return metadata

    def ensure_namespace(self, name):
        with self.lock:
            if ('', name) not in self.objects['namespaces']:
                self.insert('namespaces', None, {'metadata': {'name': name,
                                                              'labels': {'kubernetes.io/metadata.name': name}},
                                                 'spec': {'finalizers': ['kubernetes']}, 'status': {'phase': 'Active'}})

    def insert(self, resource, namespace, obj):
        """Seed an object as a test would (no validation beyond names); returns a copy."""
        rtype = kinds.BY_NAME[resource]
        with self.lock:
            if rtype.namespaced:
                self.ensure_namespace(namespace)
            obj = copy.deepcopy(obj)
            obj['kind'], obj['apiVersion'] = rtype.kind, rtype.api_version
            obj['metadata'] = self._new_metadata(rtype, namespace, obj.get('metadata'))
            if rtype.name == 'nodes':
                self._sync_node_taints(obj)
            if 'spec' in obj:
                obj['metadata'].setdefault('generation', 1)
            return copy.deepcopy(self._commit(resource, obj, None, 'ADDED'))

    # ------------------------------------------------------------ validation and shared write rules

    @staticmethod
    def _validate(rtype, obj):
        causes = []
        name = obj['metadata'].get('name', '')
        for field in ('labels', 'annotations'):
            values = obj['metadata'].get(field)
            if values is None:
                continue
            if not isinstance(values, dict):
                causes.append(('metadata.' + field, 'Invalid value: must be a map of strings'))
                continue
            for key, value in values.items():
                if not isinstance(value, str):
                    causes.append(('metadata.%s[%s]' % (field, key), 'Invalid value: must be a string'))
        spec = obj.get('spec') or {}
        if rtype.name == 'nodes' and 'unschedulable' in spec and not isinstance(spec['unschedulable'], bool):
            causes.append(('spec.unschedulable', 'Invalid value: must be a boolean'))
        if rtype.name == 'leases':
            for field, kind in (('holderIdentity', str), ('leaseDurationSeconds', int), ('leaseTransitions', int),
                                ('acquireTime', str), ('renewTime', str)):
                if spec.get(field) is not None and not isinstance(spec[field], kind):
                    causes.append(('spec.' + field, 'Invalid value: must be of type %s' % kind.__name__))
        if rtype.name == 'events':
            causes += Store._event_causes(obj)
        if causes:
            raise kinds.invalid(rtype, name, causes)

    @staticmethod
    def _event_causes(event):
        """core/v1 Event validation (legacy events): an involved object, and the namespace rule."""
        involved = event.get('involvedObject') or {}
        namespace = event['metadata'].get('namespace', '')
        causes = []
        if not involved.get('kind') or not involved.get('name'):
            causes.append(('involvedObject', 'Required value: kind and name'))
        # a cluster-scoped object (a Node) has its events in "default"; a namespaced one in its own namespace
        wanted = involved.get('namespace') or 'default'
        if namespace != wanted:
            causes.append(('involvedObject.namespace', 'Invalid value: "%s": does not match event.namespace'
                           % involved.get('namespace', '')))
        if event.get('type') not in (None, 'Normal', 'Warning'):
            causes.append(('type', 'Unsupported value: "%s": supported values: "Normal", "Warning"' % event['type']))
        return causes

    @staticmethod
    def _sync_node_taints(node):
        """What the node lifecycle controller does: taints that mirror spec.unschedulable and NotReady."""
        spec = node.setdefault('spec', {})
        wanted = {}
        if spec.get('unschedulable'):
            wanted[UNSCHEDULABLE_TAINT] = 'NoSchedule'
        if node.get('status', {}).get('conditions') and not is_ready(node):
            wanted[NOT_READY_TAINT] = 'NoSchedule'
        taints = [t for t in spec.get('taints') or []
                  if t.get('key') not in (UNSCHEDULABLE_TAINT, NOT_READY_TAINT) or t.get('key') in wanted]
        have = {t.get('key') for t in taints}
        for key, effect in wanted.items():
            if key not in have:
                taints.append({'key': key, 'effect': effect, 'timeAdded': now_iso()})
        if taints:
            spec['taints'] = taints
        else:
            spec.pop('taints', None)

    def _finish_update(self, rtype, current, new, subresource, dry_run):
        """Shared tail of PUT and PATCH: keep server-owned fields, validate, skip no-ops, commit."""
        meta = new.setdefault('metadata', {})
        if not isinstance(meta, dict):
            raise kinds.invalid(rtype, current['metadata']['name'], [('metadata', 'Invalid value: must be an object')])
        for key in ('name', 'namespace', 'uid', 'creationTimestamp', 'deletionTimestamp',
                    'deletionGracePeriodSeconds', 'generation'):
            if key in current['metadata']:
                meta[key] = current['metadata'][key]
            else:
                meta.pop(key, None)
        new['kind'], new['apiVersion'] = rtype.kind, rtype.api_version
        has_status = any(sub[0] == 'status' for sub in rtype.subresources)
        if subresource == 'status':
            status = new.get('status')
            new = copy.deepcopy(current)
            new['status'] = status
            new['metadata']['resourceVersion'] = meta.get('resourceVersion')
        elif has_status:
            if 'status' in current:
                new['status'] = copy.deepcopy(current['status'])
            else:
                new.pop('status', None)
        if rtype.name == 'nodes':
            self._sync_node_taints(new)
        self._validate(rtype, new)
        if new.get('spec') != current.get('spec') and 'generation' in current['metadata']:
            new['metadata']['generation'] = current['metadata']['generation'] + 1
        comparable = dict(new, metadata=dict(new['metadata'], resourceVersion=current['metadata']['resourceVersion']))
        if comparable == current or dry_run:
            # a no-op write changes nothing, not even the resourceVersion; a dry run stores nothing
            return copy.deepcopy(comparable)
        return copy.deepcopy(self._commit(rtype.name, new, current, 'MODIFIED'))

    # ------------------------------------------------------------ verbs

    def create(self, resource, namespace, body, dry_run=False):
        rtype = kinds.BY_NAME[resource]
        if not isinstance(body, dict):
            raise kinds.bad_request('the body of the request was not a JSON object')
        if body.get('kind') not in (None, rtype.kind):
            raise kinds.bad_request('the API version in the data (%s) does not match the expected API version (%s)'
                                    % (body.get('apiVersion'), rtype.api_version)
                                    if body.get('apiVersion') != rtype.api_version else
                                    'kind %s does not match %s' % (body.get('kind'), rtype.kind))
        meta = body.get('metadata') or {}
        name = meta.get('name') or (meta.get('generateName') + random_suffix() if meta.get('generateName') else '')
        if not name:
            raise kinds.invalid(rtype, '', [('metadata.name', 'Required value: name or generateName is required')])
        if rtype.namespaced and meta.get('namespace') not in (None, '', namespace):
            raise kinds.bad_request('the namespace of the provided object does not match the namespace sent on '
                                    'the request')
        with self.lock:
            if rtype.namespaced and ('', namespace) not in self.objects['namespaces']:
                raise kinds.not_found(kinds.BY_NAME['namespaces'], namespace)
            if (namespace if rtype.namespaced else '', name) in self.objects[resource]:
                raise kinds.already_exists(rtype, name)
            obj = copy.deepcopy(body)
            obj['kind'], obj['apiVersion'] = rtype.kind, rtype.api_version
            obj['metadata'] = self._new_metadata(rtype, namespace, dict(meta, name=name))
            if 'spec' in obj:
                obj['metadata']['generation'] = 1
            if rtype.name == 'nodes':
                self._sync_node_taints(obj)
            self._validate(rtype, obj)
            if dry_run:
                return obj
            return copy.deepcopy(self._commit(resource, obj, None, 'ADDED'))

    def replace(self, resource, namespace, name, body, subresource=None, dry_run=False):
        rtype = kinds.BY_NAME[resource]
        if not isinstance(body, dict):
            raise kinds.bad_request('the body of the request was not a JSON object')
        meta = body.get('metadata') or {}
        if meta.get('name') != name:
            raise kinds.bad_request('the name of the object (%s) does not match the name on the URL (%s)'
                                    % (meta.get('name'), name))
        with self.lock:
            current = self._current(resource, namespace, name)  # none of these types allows create-on-update
            given = meta.get('resourceVersion')
            if not given:
                if resource == 'leases':
                    raise kinds.invalid(rtype, name, [('metadata.resourceVersion',
                                                       'Invalid value: 0x0: must be specified for an update')])
            elif given != current['metadata']['resourceVersion']:
                raise kinds.conflict(rtype, name)
            return self._finish_update(rtype, current, copy.deepcopy(body), subresource, dry_run)

    def patch(self, resource, namespace, name, patch_type, patch, subresource=None, dry_run=False):
        rtype = kinds.BY_NAME[resource]
        with self.lock:
            current = self._current(resource, namespace, name)
            try:
                if patch_type == 'json':
                    new = json_patch(current, patch)
                elif not isinstance(patch, dict):
                    raise PatchError('the patch is not a JSON object')
                elif patch_type == 'merge':
                    new = merge_patch(current, patch)
                else:
                    new = strategic_merge_patch(current, patch)
            except PatchError as exc:
                raise ApiError(422, 'Invalid', str(exc)) from exc
            if not isinstance(new, dict):
                raise ApiError(422, 'Invalid', 'the patch produced no object')
            given = (new.get('metadata') or {}).get('resourceVersion')
            if given and given != current['metadata']['resourceVersion']:
                raise kinds.conflict(rtype, name)
            return self._finish_update(rtype, current, new, subresource, dry_run)

    def delete(self, resource, namespace, name, options=None, dry_run=False):
        rtype = kinds.BY_NAME[resource]
        options = options or {}
        with self.lock:
            current = self._current(resource, namespace, name)
            pre = options.get('preconditions') or {}
            if pre.get('uid') and pre['uid'] != current['metadata']['uid']:
                raise kinds.conflict(rtype, name, 'Precondition failed: UID in precondition: %s, UID in object meta: %s'
                                     % (pre['uid'], current['metadata']['uid']))
            if pre.get('resourceVersion') and pre['resourceVersion'] != current['metadata']['resourceVersion']:
                raise kinds.conflict(rtype, name, 'Precondition failed: ResourceVersion in precondition: %s, '
                                     'ResourceVersion in object meta: %s'
                                     % (pre['resourceVersion'], current['metadata']['resourceVersion']))
            if dry_run:
                return copy.deepcopy(current)
            if resource != 'pods':
                return copy.deepcopy(self._remove(resource, current))
            # a fake pod takes its own terminationGracePeriodSeconds (add_pod's grace_seconds) to stop after
            # SIGTERM; a shorter grace period in the DeleteOptions cuts that short, a longer one does not wait
            grace = current.get('spec', {}).get('terminationGracePeriodSeconds') or 0
            if options.get('gracePeriodSeconds') is not None:
                grace = min(grace, options['gracePeriodSeconds'])
            if grace <= 0 or not current.get('spec', {}).get('nodeName'):
                # an unscheduled pod has no kubelet to wait for: it goes at once
                return copy.deepcopy(self._remove(resource, current))
            if current['metadata'].get('deletionTimestamp'):
                return copy.deepcopy(current)
            pod = copy.deepcopy(current)
            pod['metadata']['deletionTimestamp'] = now_iso(grace)
            pod['metadata']['deletionGracePeriodSeconds'] = grace
            return copy.deepcopy(self._commit('pods', pod, current, 'MODIFIED'))

    def _remove(self, resource, current):
        gone = copy.deepcopy(current)
        self._commit(resource, gone, current, 'DELETED')
        self.pending.pop((gone['metadata'].get('namespace', ''), gone['metadata']['name']), None)
        if resource == 'pods':
            self._replace_pod(gone)
        return gone

    # ------------------------------------------------------------ eviction and PodDisruptionBudgets

    def _pdbs_for(self, pod):
        namespace = pod['metadata'].get('namespace')
        return [pdb for (ns, _name), pdb in sorted(self.objects['poddisruptionbudgets'].items())
                if ns == namespace and selector_matches(pdb.get('spec', {}).get('selector'),
                                                        pod['metadata'].get('labels'))]

    def evict(self, namespace, name, dry_run=False, options=None):
        """policy/v1 Eviction, as the API server's eviction REST handler decides it."""
        with self.lock:
            pod = self._current('pods', namespace, name)
            phase = pod.get('status', {}).get('phase')
            pdbs = self._pdbs_for(pod)
            ignore_pdb = phase in ('Succeeded', 'Failed', 'Pending') or pod['metadata'].get('deletionTimestamp')
            if pdbs and not ignore_pdb:
                if len(pdbs) > 1:
                    raise ApiError(500, 'InternalError', 'This pod has more than one PodDisruptionBudget, which the '
                                   'eviction subresource does not support.')
                pdb = pdbs[0]
                status = pdb.get('status', {})
                policy = pdb.get('spec', {}).get('unhealthyPodEvictionPolicy', 'IfHealthyBudget')
                unhealthy_ok = not is_ready(pod) and (
                    policy == 'AlwaysAllow' or status.get('currentHealthy', 0) >= status.get('desiredHealthy', 0))
                if not unhealthy_ok:
                    if status.get('disruptionsAllowed', 0) <= 0:
                        error = ApiError(429, 'TooManyRequests',
                                         "Cannot evict pod as it would violate the pod's disruption budget.")
                        error.details = {'causes': [{
                            'reason': 'DisruptionBudget',
                            'message': 'The disruption budget %s needs %d healthy pods and has %d currently'
                                       % (pdb['metadata']['name'], status.get('desiredHealthy', 0),
                                          status.get('currentHealthy', 0))}]}
                        raise error
                    key = (pdb['metadata']['namespace'], pdb['metadata']['name'])
                    if not dry_run and key in self.manual_pdbs:
                        self.manual_pdbs[key]['allowed'] -= 1
                        if controller_of(pod):
                            self.manual_pdbs[key]['owed'].add(pod['metadata']['uid'])
            self.delete('pods', namespace, name, options, dry_run)
            return {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Success', 'code': 201}

    def _refresh_pdbs(self):
        for key, pdb in list(self.objects['poddisruptionbudgets'].items()):
            spec = pdb.get('spec', {})
            pods = [p for (ns, _n), p in self.objects['pods'].items() if ns == key[0]
                    and selector_matches(spec.get('selector'), p['metadata'].get('labels'))
                    and p.get('status', {}).get('phase') not in ('Succeeded', 'Failed')]
            expected = len(pods)
            healthy = sum(1 for p in pods if is_ready(p) and not p['metadata'].get('deletionTimestamp'))
            if key in self.manual_pdbs:
                allowed = max(0, self.manual_pdbs[key]['allowed'])
                desired = max(0, healthy - allowed)
            else:
                if spec.get('minAvailable') is not None:
                    desired = _resolve(spec['minAvailable'], expected)
                else:
                    desired = max(0, expected - _resolve(spec.get('maxUnavailable', 0), expected))
                allowed = max(0, healthy - desired)
            status = {'observedGeneration': pdb['metadata'].get('generation', 1), 'disruptionsAllowed': allowed,
                      'currentHealthy': healthy, 'desiredHealthy': desired, 'expectedPods': expected}
            old_status = pdb.get('status', {})
            if all(old_status.get(k) == v for k, v in status.items()):
                continue
            status['conditions'] = [{
                'type': 'DisruptionAllowed', 'status': 'True' if allowed > 0 else 'False',
                'reason': 'SufficientPods' if allowed > 0 else 'InsufficientPods', 'message': '',
                'observedGeneration': status['observedGeneration'], 'lastTransitionTime': now_iso()}]
            new = copy.deepcopy(pdb)
            new['status'] = status
            self._commit('poddisruptionbudgets', new, pdb, 'MODIFIED')

    def set_pdb_allowed(self, namespace, name, allowed):
        """Pin a PDB's disruptionsAllowed (manual mode): evictions take one, a Ready replacement gives it back."""
        with self.lock:
            self._current('poddisruptionbudgets', namespace, name)
            entry = self.manual_pdbs.setdefault((namespace, name), {'allowed': 0, 'owed': set()})
            entry['allowed'] = allowed
            self._refresh_pdbs()

    # ------------------------------------------------------------ controllers: replacements, scheduler, reaper

    def _replace_pod(self, gone):
        """A controller-owned pod that went away comes back as a new Pending pod (a DaemonSet's on its node)."""
        owner = controller_of(gone)
        if not owner or not self.recreate_pods:
            return
        namespace = gone['metadata']['namespace']
        if ('', namespace) not in self.objects['namespaces']:
            return
        if owner.get('kind') == 'DaemonSet':
            node = gone.get('spec', {}).get('nodeName')
            if not node or ('', node) not in self.objects['nodes'] or \
                    (namespace, owner['name']) not in self.objects['daemonsets']:
                return
        else:
            node = None
        name = gone['metadata']['name'] if owner.get('kind') == 'StatefulSet' else '%s-%s' % (owner['name'],
                                                                                              random_suffix())
        meta = {k: copy.deepcopy(v) for k, v in gone['metadata'].items()
                if k in ('labels', 'annotations', 'ownerReferences', 'generateName')}
        meta['name'] = name
        meta.setdefault('annotations', {})[REPLACES_ANNOTATION] = gone['metadata']['uid']
        spec = copy.deepcopy(gone.get('spec', {}))
        spec.pop('nodeName', None)
        pod = {'metadata': meta, 'spec': spec, 'status': {
            'phase': 'Pending', 'conditions': [{'type': 'PodScheduled', 'status': 'False', 'reason': 'Unschedulable'}]}}
        self.insert('pods', namespace, pod)
        self.pending[(namespace, name)] = (time.monotonic() + self.replacement_delay, node)

    def _schedulable(self, pod):
        nodes = []
        tolerations = pod.get('spec', {}).get('tolerations') or []
        for (_ns, name), node in sorted(self.objects['nodes'].items()):
            if node.get('spec', {}).get('unschedulable') or not is_ready(node):
                continue
            blocking = [t for t in node.get('spec', {}).get('taints') or [] if t.get('effect') != 'PreferNoSchedule'
                        and not any(tol.get('operator') == 'Exists' and tol.get('key') in (None, '', t.get('key'))
                                    or tol.get('key') == t.get('key') for tol in tolerations)]
            if not blocking:
                load = sum(1 for p in self.objects['pods'].values() if p.get('spec', {}).get('nodeName') == name)
                nodes.append((load, name))
        return min(nodes)[1] if nodes else None

    def tick(self):
        """Run the controllers once: end pods whose grace period is over, bind and start pending replacements."""
        with self.lock:
            now = time.time()
            for pod in list(self.objects['pods'].values()):
                stamp = pod['metadata'].get('deletionTimestamp')
                if stamp and parse_iso(stamp) <= now:
                    self._remove('pods', pod)
            for (namespace, name), (not_before, node) in list(self.pending.items()):
                current = self.objects['pods'].get((namespace, name))
                if current is None:
                    self.pending.pop((namespace, name), None)
                    continue
                if time.monotonic() < not_before:
                    continue
                node = node or self._schedulable(current)
                if node is None:
                    continue
                self.pending.pop((namespace, name))
                pod = copy.deepcopy(current)
                pod['spec']['nodeName'] = node
                pod['status'] = pod_status(pod, True, 'Running')
                self._commit('pods', pod, current, 'MODIFIED')
                replaced = pod['metadata'].get('annotations', {}).get(REPLACES_ANNOTATION)
                for entry in self.manual_pdbs.values():
                    if replaced in entry['owed']:
                        entry['owed'].discard(replaced)
                        entry['allowed'] += 1
                self._refresh_pdbs()

    # ------------------------------------------------------------ node state as a kubelet reports it

    def set_node_ready(self, name, ready, kernel=None, boot_id=None):
        """Report Ready/NotReady (and a new kernel and bootID after a reboot); a never-ready node stays NotReady."""
        with self.lock:
            current = self._current('nodes', None, name)
            node = copy.deepcopy(current)
            ready = bool(ready) and name not in self.never_ready
            node['status']['conditions'] = _ready_conditions(ready, node['status'].get('conditions'))
            info = node['status'].setdefault('nodeInfo', {})
            if kernel:
                info['kernelVersion'] = kernel
            if boot_id or kernel:
                info['bootID'] = boot_id or str(uuid.uuid4())
            self._sync_node_taints(node)
            self._commit('nodes', node, current, 'MODIFIED')
            for pod in list(self.objects['pods'].values()):
                if pod.get('spec', {}).get('nodeName') == name and not pod['metadata'].get('deletionTimestamp') \
                        and pod.get('status', {}).get('phase') == 'Running' and is_ready(pod) != ready:
                    new = copy.deepcopy(pod)
                    new['status'] = pod_status(new, ready, 'Running')
                    self._commit('pods', new, pod, 'MODIFIED')
            return copy.deepcopy(self.objects['nodes'][('', name)])

    # ------------------------------------------------------------ seeding helpers

    def node_object(self, name, ready=True, kernel=DEFAULT_KERNEL, control_plane=False, unschedulable=False,
                    annotations=None, labels=None):
        self.node_count += 1
        all_labels = {'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64',
                      'beta.kubernetes.io/os': 'linux', 'beta.kubernetes.io/arch': 'amd64'}
        if control_plane:
            all_labels[CONTROL_PLANE_LABEL] = ''
        all_labels.update(labels or {})
        spec = {'podCIDR': '10.244.%d.0/24' % self.node_count, 'podCIDRs': ['10.244.%d.0/24' % self.node_count]}
        if unschedulable:
            spec['unschedulable'] = True
        if control_plane:
            spec['taints'] = [{'key': CONTROL_PLANE_LABEL, 'effect': 'NoSchedule'}]
        ready = bool(ready) and name not in self.never_ready
        resources = {'cpu': '4', 'memory': '16262400Ki', 'pods': '110', 'ephemeral-storage': '61202244Ki'}
        return {'metadata': {'name': name, 'labels': all_labels, 'annotations': dict(annotations or {})},
                'spec': spec,
                'status': {'capacity': resources, 'allocatable': dict(resources),
                           'conditions': _ready_conditions(ready),
                           'addresses': [{'type': 'InternalIP', 'address': '10.0.0.%d' % self.node_count},
                                         {'type': 'Hostname', 'address': name}],
                           'daemonEndpoints': {'kubeletEndpoint': {'Port': 10250}},
                           'nodeInfo': {'machineID': uuid.uuid4().hex, 'systemUUID': str(uuid.uuid4()),
                                        'bootID': str(uuid.uuid4()), 'kernelVersion': kernel,
                                        'osImage': 'CentOS Linux 7 (Core)', 'containerRuntimeVersion':
                                        'containerd://1.6.33', 'kubeletVersion': 'v1.28.15',
                                        'kubeProxyVersion': 'v1.28.15', 'operatingSystem': 'linux',
                                        'architecture': 'amd64'}}}


def pod_status(pod, ready, phase):
    stamp = now_iso()
    flag = 'True' if ready else 'False'
    containers = pod.get('spec', {}).get('containers') or []
    return {'phase': phase, 'hostIP': '10.0.0.1', 'podIP': '10.244.0.%d' % random.randint(2, 250),
            'startTime': stamp,
            'conditions': [{'type': kind, 'status': 'True' if kind in ('PodScheduled', 'Initialized') else flag,
                            'lastTransitionTime': stamp} for kind in ('Initialized', 'Ready', 'ContainersReady',
                                                                      'PodScheduled')],
            'containerStatuses': [{'name': c.get('name', 'app'), 'image': c.get('image', ''), 'ready': ready,
                                   'started': ready, 'restartCount': 0,
                                   'state': {'running': {'startedAt': stamp}} if ready else
                                   {'waiting': {'reason': 'ContainerCreating'}}} for c in containers]}
