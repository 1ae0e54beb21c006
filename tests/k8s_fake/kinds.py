# -*- coding: utf-8 -*-
"""The resource types the fake serves, discovery documents (legacy and aggregated), Status errors, Tables."""

from __future__ import annotations

import datetime
import hashlib


class Resource:
    """One resource type as discovery advertises it."""

    def __init__(self, name, group, version, kind, namespaced, singular, short_names=(), categories=(),
                 subresources=(), fields=(), status=True):
        self.name = name
        self.group = group
        self.version = version
        self.kind = kind
        self.namespaced = namespaced
        self.singular = singular
        self.short_names = list(short_names)
        self.categories = list(categories)
        # (name, group, version, kind, verbs)
        self.subresources = list(subresources)
        if status:
            self.subresources.append(('status', group, version, kind, ['get', 'patch', 'update']))
        self.fields = {'metadata.name', 'metadata.namespace'} | set(fields)
        self.verbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']
        if name == 'namespaces':
            self.verbs.remove('deletecollection')

    @property
    def api_version(self):
        return '%s/%s' % (self.group, self.version) if self.group else self.version

    @property
    def qualified(self):
        """The name errors use: 'nodes', 'leases.coordination.k8s.io'."""
        return '%s.%s' % (self.name, self.group) if self.group else self.name


RESOURCES = [
    Resource('namespaces', '', 'v1', 'Namespace', False, 'namespace', ['ns'], fields=['status.phase']),
    Resource('nodes', '', 'v1', 'Node', False, 'node', ['no'], fields=['spec.unschedulable']),
    Resource('pods', '', 'v1', 'Pod', True, 'pod', ['po'], ['all'],
             subresources=[('eviction', 'policy', 'v1', 'Eviction', ['create'])],
             fields=['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName',
                     'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName']),
    Resource('daemonsets', 'apps', 'v1', 'DaemonSet', True, 'daemonset', ['ds'], ['all']),
    Resource('replicasets', 'apps', 'v1', 'ReplicaSet', True, 'replicaset', ['rs'], ['all'],
             fields=['status.replicas']),
    Resource('poddisruptionbudgets', 'policy', 'v1', 'PodDisruptionBudget', True, 'poddisruptionbudget', ['pdb']),
    Resource('leases', 'coordination.k8s.io', 'v1', 'Lease', True, 'lease', status=False),
    Resource('events', '', 'v1', 'Event', True, 'event', ['ev'], status=False,
             fields=['involvedObject.kind', 'involvedObject.name', 'involvedObject.namespace', 'involvedObject.uid',
                     'reason', 'type', 'reportingComponent']),
]
BY_NAME = {r.name: r for r in RESOURCES}


def find(group, version, name):
    resource = BY_NAME.get(name)
    if resource is None or resource.group != group or resource.version != version:
        return None
    return resource


def group_versions():
    """[(group, version)] in a stable order, core ('') first."""
    seen = []
    for resource in RESOURCES:
        if (resource.group, resource.version) not in seen:
            seen.append((resource.group, resource.version))
    return seen


def _hash(text):
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ---------------------------------------------------------------- legacy discovery

def api_versions(host):
    return {'kind': 'APIVersions', 'versions': ['v1'],
            'serverAddressByClientCIDRs': [{'clientCIDR': '0.0.0.0/0', 'serverAddress': host}]}


def _group_entry(group):
    versions = [{'groupVersion': '%s/%s' % (g, v), 'version': v} for g, v in group_versions() if g == group]
    return {'name': group, 'versions': versions, 'preferredVersion': versions[0]}


def api_group_list():
    groups = []
    for group, _version in group_versions():
        if group and group not in [g['name'] for g in groups]:
            groups.append(_group_entry(group))
    return {'kind': 'APIGroupList', 'apiVersion': 'v1', 'groups': groups}


def api_group(group):
    if not any(g == group for g, _v in group_versions()):
        return None
    entry = _group_entry(group)
    entry.update({'kind': 'APIGroup', 'apiVersion': 'v1'})
    return entry


def api_resource_list(group, version):
    items = []
    for resource in RESOURCES:
        if (resource.group, resource.version) != (group, version):
            continue
        item = {'name': resource.name, 'singularName': resource.singular, 'namespaced': resource.namespaced,
                'kind': resource.kind, 'verbs': resource.verbs,
                'storageVersionHash': _hash(resource.api_version + resource.kind)}
        if resource.short_names:
            item['shortNames'] = resource.short_names
        if resource.categories:
            item['categories'] = resource.categories
        items.append(item)
        for sub, sub_group, sub_version, sub_kind, verbs in resource.subresources:
            entry = {'name': '%s/%s' % (resource.name, sub), 'singularName': '', 'namespaced': resource.namespaced,
                     'kind': sub_kind, 'verbs': verbs}
            if (sub_group, sub_version) != (group, version):
                # pods/eviction: kubectl drain only uses the eviction API when group and version are set
                entry.update({'group': sub_group, 'version': sub_version})
            items.append(entry)
    if not items:
        return None
    return {'kind': 'APIResourceList', 'apiVersion': 'v1',
            'groupVersion': '%s/%s' % (group, version) if group else version, 'resources': items}


# ---------------------------------------------------------------- aggregated discovery

AGGREGATED_VERSIONS = ('v2', 'v2beta1')


def aggregated(core, version):
    """APIGroupDiscoveryList for /api (core=True) or /apis, apidiscovery.k8s.io/<version>."""
    items = []
    for group, gv_version in group_versions():
        if (group == '') != core:
            continue
        resources = []
        for resource in RESOURCES:
            if (resource.group, resource.version) != (group, gv_version):
                continue
            entry = {'resource': resource.name,
                     'responseKind': {'group': group, 'version': gv_version, 'kind': resource.kind},
                     'scope': 'Namespaced' if resource.namespaced else 'Cluster',
                     'singularResource': resource.singular, 'verbs': resource.verbs}
            if resource.short_names:
                entry['shortNames'] = resource.short_names
            if resource.categories:
                entry['categories'] = resource.categories
            subs = [{'subresource': sub, 'responseKind': {'group': sg, 'version': sv, 'kind': sk}, 'verbs': verbs}
                    for sub, sg, sv, sk, verbs in resource.subresources]
            if subs:
                entry['subresources'] = subs
            resources.append(entry)
        version_entry = {'version': gv_version, 'resources': resources, 'freshness': 'Current'}
        existing = next((i for i in items if i['metadata'].get('name', '') == group), None)
        if existing:
            existing['versions'].append(version_entry)
            continue
        metadata = {'creationTimestamp': None}
        if group:
            metadata['name'] = group
        items.append({'metadata': metadata, 'versions': [version_entry]})
    return {'kind': 'APIGroupDiscoveryList', 'apiVersion': 'apidiscovery.k8s.io/%s' % version,
            'metadata': {}, 'items': items}


# ---------------------------------------------------------------- OpenAPI v3 (just enough for kubectl)

def _gv_path(group, version):
    return 'apis/%s/%s' % (group, version) if group else 'api/%s' % version


def openapi_root():
    """/openapi/v3: one document per group version."""
    paths = {}
    for group, version in group_versions():
        path = _gv_path(group, version)
        paths[path] = {'serverRelativeURL': '/openapi/v3/%s?hash=%s' % (path, _hash(path).upper())}
    return {'paths': paths}


def openapi_group_version(path):
    """/openapi/v3/<api/v1|apis/g/v>: PATCH operations with their GVK and the fieldValidation parameter.

    kubectl create/replace/apply ask this before they send: when the PATCH operation of the kind lists
    fieldValidation, kubectl leaves validation to the server (?fieldValidation=Strict) instead of
    downloading full schemas. The fake has no schemas: it accepts unknown fields.
    """
    for group, version in group_versions():
        if _gv_path(group, version) != path:
            continue
        paths = {}
        for resource in RESOURCES:
            if (resource.group, resource.version) != (group, version):
                continue
            prefix = '/' + path + ('/namespaces/{namespace}' if resource.namespaced else '')
            gvk = {'group': group, 'version': version, 'kind': resource.kind}
            params = [{'name': name, 'in': 'query', 'schema': {'type': 'string', 'uniqueItems': True}}
                      for name in ('dryRun', 'fieldManager', 'fieldValidation', 'force')]
            paths['%s/%s/{name}' % (prefix, resource.name)] = {'patch': {
                'tags': [path.replace('/', '_')], 'operationId': 'patch' + resource.kind,
                'x-kubernetes-group-version-kind': gvk, 'x-kubernetes-action': 'patch', 'parameters': params,
                'responses': {'200': {'description': 'OK'}}}}
        return {'openapi': '3.0.0', 'info': {'title': 'Kubernetes (k8s-fake)', 'version': 'v1'}, 'paths': paths,
                'components': {'schemas': {}}}
    return None


# ---------------------------------------------------------------- strict field validation

OBJECT_META_FIELDS = {'name', 'generateName', 'namespace', 'selfLink', 'uid', 'resourceVersion', 'generation',
                      'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels', 'annotations',
                      'ownerReferences', 'finalizers', 'managedFields'}
SPEC_FIELDS = {'leases': {'holderIdentity', 'leaseDurationSeconds', 'acquireTime', 'renewTime', 'leaseTransitions',
                          'strategy', 'preferredHolder'}}


# core/v1 Event keeps its fields at the top level, beside metadata
TOP_FIELDS = {'events': {'involvedObject', 'reason', 'message', 'source', 'firstTimestamp', 'lastTimestamp', 'count',
                         'type', 'eventTime', 'series', 'action', 'related', 'reportingComponent',
                         'reportingInstance'}}


def unknown_fields(resource, body):
    """The fields ?fieldValidation=Strict refuses: unknown top-level and metadata keys, and unknown lease spec keys."""
    if not isinstance(body, dict):
        return []
    known = {'apiVersion', 'kind', 'metadata', 'spec', 'status'} | TOP_FIELDS.get(resource.name, set())
    unknown = ['%s' % k for k in body if k not in known]
    if isinstance(body.get('metadata'), dict):
        unknown += ['metadata.%s' % k for k in body['metadata'] if k not in OBJECT_META_FIELDS]
    if resource.name in SPEC_FIELDS and isinstance(body.get('spec'), dict):
        unknown += ['spec.%s' % k for k in body['spec'] if k not in SPEC_FIELDS[resource.name]]
    return unknown


def strict_decoding_error(resource, unknown):
    return ApiError(400, 'BadRequest', '%s in version "%s" cannot be handled as a %s: strict decoding error: %s'
                    % (resource.kind, resource.version, resource.kind,
                       ', '.join('unknown field "%s"' % field for field in unknown)))


# ---------------------------------------------------------------- Status errors

class ApiError(Exception):
    """An error the API answers with a metav1.Status body."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self):
        body = {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure',
                'message': self.message, 'reason': self.reason, 'code': self.code}
        if self.details is not None:
            body['details'] = self.details
        return body


def _details(resource, name):
    details = {'name': name, 'kind': resource.name}
    if resource.group:
        details['group'] = resource.group
    return details


def not_found(resource, name):
    return ApiError(404, 'NotFound', '%s "%s" not found' % (resource.qualified, name), _details(resource, name))


def already_exists(resource, name):
    return ApiError(409, 'AlreadyExists', '%s "%s" already exists' % (resource.qualified, name),
                    _details(resource, name))


MODIFIED = 'the object has been modified; please apply your changes to the latest version and try again'


def conflict(resource, name, why=MODIFIED):
    return ApiError(409, 'Conflict', 'Operation cannot be fulfilled on %s "%s": %s' % (resource.qualified, name, why),
                    _details(resource, name))


def invalid(resource, name, causes):
    """causes: [(field, message)] -> 422 Invalid, worded like the API's field errors."""
    text = ', '.join('%s: %s' % (field, message) for field, message in causes)
    details = _details(resource, name)
    details['kind'] = resource.kind
    details['causes'] = [{'reason': 'FieldValueInvalid', 'message': message, 'field': field}
                         for field, message in causes]
    return ApiError(422, 'Invalid', '%s "%s" is invalid: %s' % (resource.kind, name, text), details)


def bad_request(message):
    return ApiError(400, 'BadRequest', message)


def no_such_resource():
    return ApiError(404, 'NotFound', 'the server could not find the requested resource', {})


def method_not_allowed(verb):
    return ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource',
                    {'causes': [{'message': verb}]} if verb else {})


# ---------------------------------------------------------------- server-side Tables (kubectl get)

def _age(stamp, now):
    try:
        then = datetime.datetime.strptime(stamp, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return '<unknown>'
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (('d', 86400), ('h', 3600), ('m', 60)):
        if seconds >= size * 2 or (unit == 'm' and seconds >= 120):
            return '%d%s' % (seconds // size, unit)
    return '%ds' % seconds


def _node_cells(node):
    conditions = {c.get('type'): c.get('status') for c in node.get('status', {}).get('conditions', [])}
    state = {'True': 'Ready', 'False': 'NotReady'}.get(conditions.get('Ready'), 'Unknown')
    if node.get('spec', {}).get('unschedulable'):
        state += ',SchedulingDisabled'
    prefix = 'node-role.kubernetes.io/'
    roles = sorted(k[len(prefix):] for k in node['metadata'].get('labels', {}) if k.startswith(prefix))
    info = node.get('status', {}).get('nodeInfo', {})
    addresses = {a.get('type'): a.get('address') for a in node.get('status', {}).get('addresses', [])}
    wide = [info.get('kubeletVersion', ''), addresses.get('InternalIP', '<none>'), addresses.get('ExternalIP', '<none>'),
            info.get('osImage', ''), info.get('kernelVersion', ''), info.get('containerRuntimeVersion', '')]
    return [state, ','.join(roles) or '<none>'], wide


def _pod_cells(pod):
    statuses = pod.get('status', {}).get('containerStatuses', [])
    ready = sum(1 for s in statuses if s.get('ready'))
    phase = pod.get('status', {}).get('phase', 'Unknown')
    if pod['metadata'].get('deletionTimestamp'):
        phase = 'Terminating'
    restarts = sum(s.get('restartCount', 0) for s in statuses)
    wide = [pod.get('status', {}).get('podIP', '<none>'), pod.get('spec', {}).get('nodeName', '<none>')]
    return ['%d/%d' % (ready, len(statuses)), phase, restarts], wide


def _pdb_cells(pdb):
    spec = pdb.get('spec', {})
    return [str(spec.get('minAvailable', 'N/A')), str(spec.get('maxUnavailable', 'N/A')),
            pdb.get('status', {}).get('disruptionsAllowed', 0)], []


def _lease_cells(lease):
    return [lease.get('spec', {}).get('holderIdentity', '')], []


# resource -> (columns before Age, columns after Age (the first is shown, the rest only with -o wide), cells)
_COLUMNS = {
    'nodes': (['Status', 'Roles'], ['Version', 'Internal-IP', 'External-IP', 'OS-Image', 'Kernel-Version',
                                    'Container-Runtime'], _node_cells),
    'pods': (['Ready', 'Status', 'Restarts'], ['IP', 'Node'], _pod_cells),
    'poddisruptionbudgets': (['Min Available', 'Max Unavailable', 'Allowed Disruptions'], [], _pdb_cells),
    'leases': (['Holder'], [], _lease_cells),
}


def table(resource, objects, resource_version):
    """A meta.k8s.io/v1 Table (what `kubectl get` prints without -o); rows carry partial metadata."""
    now = datetime.datetime.now(datetime.timezone.utc)
    before, after, cells_of = _COLUMNS.get(resource.name, ([], [], lambda obj: ([], [])))
    definitions = [{'name': 'Name', 'type': 'string', 'format': 'name', 'description': 'Name', 'priority': 0}]
    definitions += [{'name': n, 'type': 'string', 'format': '', 'description': n, 'priority': 0} for n in before]
    definitions.append({'name': 'Age', 'type': 'string', 'format': '', 'description': 'Age', 'priority': 0})
    shown_after = 0 if resource.name == 'pods' else 1
    definitions += [{'name': n, 'type': 'string', 'format': '', 'description': n, 'priority': 0 if i < shown_after else 1}
                    for i, n in enumerate(after)]
    rows = []
    for obj in objects:
        middle, tail = cells_of(obj)
        cells = [obj['metadata']['name']] + middle + [_age(obj['metadata'].get('creationTimestamp'), now)] + tail
        partial = {'kind': 'PartialObjectMetadata', 'apiVersion': 'meta.k8s.io/v1', 'metadata': obj['metadata']}
        rows.append({'cells': cells, 'object': partial})
    return {'kind': 'Table', 'apiVersion': 'meta.k8s.io/v1', 'metadata': {'resourceVersion': resource_version},
            'columnDefinitions': definitions, 'rows': rows}
