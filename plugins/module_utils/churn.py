# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What creates memory cgroups on a node, from the Kubernetes API, and kubelet's pprof CPU profile.

Pure functions on decoded JSON (pods, events) and on the bytes of a pprof profile. Every pod and
every container start (a restart included) makes a memory cgroup; those that touched files or
slab stay as dying memcgs after removal. So the sources are ranked by container starts.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import gzip
import io
import re

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s.nodes import pod_owner
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s.times import parse_time

# A Job created by a CronJob is named <cronjob>-<scheduled time in minutes since the epoch>.
CRONJOB_JOB = re.compile(r'^(.+)-\d{8,}$')
# A ReplicaSet of a Deployment is named <deployment>-<pod-template-hash>.
DEPLOYMENT_RS = re.compile(r'^(.+)-[a-z0-9]{6,10}$')
# A pod made by a controller is named <owner>-<5 random characters>.
POD_SUFFIX = re.compile(r'^(.+)-[a-z0-9]{5}$')
ADVICE = {
    'CronJob': 'every run makes new pod and container memcgs: run it less often, or do more per run',
    'Job': 'every pod of a Job makes new memcgs: fewer, longer-lived pods make fewer',
    'restarts': 'containers restart: every restart makes a new memcg; fix the crash loop',
    'recent': 'pods are short-lived: every new pod makes new memcgs',
}


def owner_of(namespace, kind, name):
    """(kind, name) of the workload a pod's controller belongs to: a Job of a CronJob counts as the CronJob."""
    if kind == 'Job' and CRONJOB_JOB.match(name or ''):
        return 'CronJob', CRONJOB_JOB.match(name).group(1)
    if kind == 'ReplicaSet' and DEPLOYMENT_RS.match(name or ''):
        return 'Deployment', DEPLOYMENT_RS.match(name).group(1)
    return kind, name


def _owner_from_pod_name(name):
    """For a pod that is gone (seen only in events): its owner, guessed from the name."""
    match = POD_SUFFIX.match(name or '')
    if not match:
        return 'Pod', name
    base = match.group(1)
    if CRONJOB_JOB.match(base):
        return 'CronJob', CRONJOB_JOB.match(base).group(1)
    if DEPLOYMENT_RS.match(base):
        return 'Deployment', DEPLOYMENT_RS.match(base).group(1)
    return 'Job or other', base


def _restarts(pod):
    status = pod.get('status') or {}
    return sum(int(item.get('restartCount') or 0)
               for key in ('containerStatuses', 'initContainerStatuses') for item in status.get(key) or [])


def _event_node(event):
    return (event.get('source') or {}).get('host') or event.get('reportingInstance') or ''


def _event_count(event):
    return int((event.get('series') or {}).get('count') or event.get('count') or 1)


def rank_sources(pods, events, node, now, recent_s=3600, top=10):
    """Rank the memory cgroup makers on node; pure.

    pods: pod objects (those on other nodes are ignored); events: Event objects (only container
    Started events of pods on this node count); now: epoch seconds. Returns {'sources': [...],
    'namespaces': [...], 'look_first': [sentences]}; a source is {'namespace', 'owner_kind',
    'owner_name', 'pods', 'job_pods', 'restarts', 'recent_pods', 'started_events', 'score'}, where
    score estimates container starts: the Started events, or pods created recently plus restarts
    when that is higher (events expire after an hour by default).
    """
    groups = {}
    by_pod = {}

    def group(namespace, kind, name):
        key = (namespace, kind, name)
        if key not in groups:
            groups[key] = {'namespace': namespace, 'owner_kind': kind, 'owner_name': name, 'pods': 0,
                           'job_pods': 0, 'restarts': 0, 'recent_pods': 0, 'started_events': 0}
        return groups[key]

    for pod in pods:
        meta = pod.get('metadata') or {}
        if (pod.get('spec') or {}).get('nodeName') != node:
            continue
        kind, name = pod_owner(pod)
        namespace = meta.get('namespace')
        entry = group(namespace, *(owner_of(namespace, kind, name) if kind else ('Pod', meta.get('name'))))
        by_pod[(namespace, meta.get('name'))] = entry
        entry['pods'] += 1
        entry['job_pods'] += 1 if kind == 'Job' else 0
        entry['restarts'] += _restarts(pod)
        created = parse_time(meta.get('creationTimestamp'))
        if created is not None and now - created <= recent_s:
            entry['recent_pods'] += 1
    for event in events:
        involved = event.get('involvedObject') or {}
        if involved.get('kind') != 'Pod' or event.get('reason') != 'Started' or _event_node(event) != node:
            continue
        namespace, name = involved.get('namespace'), involved.get('name')
        entry = by_pod.get((namespace, name)) or group(namespace, *_owner_from_pod_name(name))
        entry['started_events'] += _event_count(event)
    sources = []
    for entry in groups.values():
        entry['score'] = max(entry['started_events'], entry['recent_pods'] + entry['restarts'])
        sources.append(entry)
    sources.sort(key=lambda s: (-s['score'], s['namespace'] or '', s['owner_kind'] or '', s['owner_name'] or ''))
    namespaces = {}
    for entry in sources:
        namespaces[entry['namespace']] = namespaces.get(entry['namespace'], 0) + entry['score']
    ranked_ns = [{'namespace': ns, 'score': score} for ns, score in
                 sorted(namespaces.items(), key=lambda item: (-item[1], item[0] or ''))]
    return {'sources': sources[:top], 'namespaces': ranked_ns[:top],
            'look_first': [_advice(entry) for entry in sources[:3] if entry['score'] > 0]}


def _advice(entry):
    facts = []
    if entry['started_events']:
        facts.append('%d container starts in recent events' % entry['started_events'])
    if entry['recent_pods']:
        facts.append('%d pods created recently' % entry['recent_pods'])
    if entry['restarts']:
        facts.append('%d container restarts' % entry['restarts'])
    if entry['owner_kind'] in ('CronJob', 'Job'):
        why = ADVICE[entry['owner_kind']]
    elif entry['restarts'] and entry['restarts'] >= entry['recent_pods']:
        why = ADVICE['restarts']
    else:
        why = ADVICE['recent']
    return '%s %s/%s: %s; %s.' % (entry['namespace'], entry['owner_kind'], entry['owner_name'], ', '.join(facts), why)


# ---------------------------------------------------------------- pprof (profile.proto), stdlib only

# Go functions under which cAdvisor (in kubelet) reads memory.stat.
CADVISOR_MEMORY_FUNCTIONS = ('(*MemoryGroup).GetStats', 'fs.getMemoryData', 'fs2.statMemory', 'setMemoryStats')


def _varint(data, pos):
    result = shift = 0
    while True:
        if pos >= len(data):
            raise MemcgError('pprof profile is truncated')
        byte = data[pos] if isinstance(data[pos], int) else ord(data[pos])
        pos += 1
        result |= (byte & 0x7f) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data):
    """(field number, value) of a protobuf message: ints for varints, bytes for length-delimited."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise MemcgError('pprof profile has an unknown protobuf wire type %d' % wire)
        if pos > len(data):
            raise MemcgError('pprof profile is truncated')
        yield number, value


def _ints(value):
    """A repeated integer field: one varint, or a packed run of them."""
    if not isinstance(value, bytes):
        return [value]
    values, pos = [], 0
    while pos < len(value):
        item, pos = _varint(value, pos)
        values.append(item)
    return values


def parse_pprof(blob, top=10):
    """Top functions of a (gzipped) pprof profile: {'samples', 'top': [{'function', 'flat', 'cum'}],
    'memory_stat_share_percent'}. flat and cum are percent of the last sample value (CPU time)."""
    try:
        if blob[:2] == b'\x1f\x8b':
            blob = gzip.GzipFile(fileobj=io.BytesIO(blob)).read()
    except (IOError, OSError, EOFError) as exc:
        raise MemcgError('pprof profile is not valid gzip: %s' % exc)
    strings, functions, locations, samples = [], {}, {}, []
    for number, value in _fields(blob):
        if number == 6:
            strings.append(value.decode('utf-8', 'replace'))
        elif number == 5:
            fields = dict(_fields(value))
            functions[fields.get(1, 0)] = fields.get(2, 0)
        elif number == 4:
            location_id, lines = 0, []
            for field, item in _fields(value):
                if field == 1:
                    location_id = item
                elif field == 4:
                    lines.append(dict(_fields(item)).get(1, 0))
            locations[location_id] = lines
        elif number == 2:
            ids, values = [], []
            for field, item in _fields(value):
                if field == 1:
                    ids.extend(_ints(item))
                elif field == 2:
                    values.extend(_ints(item))
            samples.append((ids, values[-1] if values else 0))

    def names(location_id):
        return [strings[functions.get(fid, 0)] if functions.get(fid, 0) < len(strings) else '?'
                for fid in locations.get(location_id, [])]

    total = sum(value for _ids, value in samples)
    flat, cum, memory = {}, {}, 0
    for ids, value in samples:
        stack = [name for location_id in ids for name in names(location_id)]
        if stack:
            flat[stack[0]] = flat.get(stack[0], 0) + value
        for name in set(stack):
            cum[name] = cum.get(name, 0) + value
        if any(marker in name for name in stack for marker in CADVISOR_MEMORY_FUNCTIONS):
            memory += value

    def percent(value):
        return round(100.0 * value / total, 1) if total else 0.0
    ranked = sorted(flat.items(), key=lambda item: (-item[1], item[0]))[:top]
    return {'samples': len(samples),
            'top': [{'function': name, 'flat': percent(value), 'cum': percent(cum[name])} for name, value in ranked],
            'memory_stat_share_percent': percent(memory)}
