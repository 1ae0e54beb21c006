# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollout planning: batches the way Ansible's serial keyword cuts them; pure."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s.nodes import NODE_STEPS

_BATCH = re.compile(r'^\s*(\d+)\s*(%?)\s*$')


def batch_size(batch, count):
    """Nodes per batch for a serial value (a count, or a percentage of count) over count nodes.

    Matches Ansible's serial: a percentage is floored, and never less than one node.
    Raises MemcgError naming the value when it is not a positive count or a percentage 1-100.
    """
    match = _BATCH.match(str(batch))
    if not match or int(match.group(1)) < 1 or (match.group(2) and int(match.group(1)) > 100):
        raise MemcgError('kernel_upgrade_batch must be a positive count or a percentage from 1%% to '
                         '100%%, got %r' % (batch,))
    value = int(match.group(1))
    if match.group(2):
        return max(1, int(value / 100.0 * count))
    return value


def plan_batches(nodes, batch):
    """The nodes cut into consecutive batches, in order."""
    nodes = list(nodes)
    size = batch_size(batch, len(nodes))
    return [nodes[start:start + size] for start in range(0, len(nodes), size)]


# ---------------------------------------------------------------- a node's state across runs

#: the steps after which the node runs (or should run) the target release
BOOTED_STEPS = ('booted', 'healthy', 'committed')


def _kernel_text(kernel):
    return '%s (%s)' % (kernel.get('release'), kernel.get('status'))


def node_rollout_state(name, running, boot_default=None, marks=None):
    """What a run does with one node, from what the node says now; pure.

    `running` is the kernel_check classification of the running release (the kubelet's or uname -r),
    `boot_default` that of the default boot entry (None when unknown), `marks` the node's
    nodeops.memcg/* facts: cordoned_by, failure, step, target (missing or empty: not set).

    Returns {'status', 'resume_from', 'target', 'why'}: status 'pending' (a full upgrade),
    'resume' (an earlier run of this role left the node: resume_from 'cordon' runs it all again,
    'health' runs the health gate, commits the running release as the default and uncordons) or
    'already_fixed'. Raises MemcgError naming the node when a fact is missing or the state cannot
    be reconciled; nothing falls back to another host's kernel.
    """
    marks = dict((k, v) for k, v in (marks or {}).items() if v)
    release = (running or {}).get('release') or ''
    if not release.strip():
        raise MemcgError('node %s: no running kernel release (an empty or absent kernelVersion): refusing to '
                         'guess it; check the kubelet on the node or use kernel_upgrade_release_source=node' % name)
    step = marks.get('step')
    if step is not None and step not in NODE_STEPS:
        raise MemcgError('node %s: unknown nodeops.memcg/step %r (expected one of %s): inspect the node and '
                         'remove the nodeops.memcg/* annotations by hand' % (name, step, ', '.join(NODE_STEPS)))
    status = running.get('status')
    fixed = status == 'fixed'
    ours = bool(marks.get('cordoned_by') or marks.get('failure') or step)
    left = 'left by run %s at step %s' % (marks.get('cordoned_by') or '?', step or 'unrecorded')
    if ours:
        if fixed:
            return {'status': 'resume', 'resume_from': 'health', 'target': release,
                    'why': '%s; it runs the fixed %s: health gate, commit, uncordon' % (left, _kernel_text(running))}
        if running.get('upgrade_needed') and step not in BOOTED_STEPS:
            return {'status': 'resume', 'resume_from': 'cordon', 'target': None,
                    'why': '%s; it still runs %s: the whole procedure again' % (left, _kernel_text(running))}
        raise MemcgError('node %s: %s (target %s), but it runs %s, neither the target nor a fixed kernel: '
                         'inspect the node (did it fall back to its old default?), then remove the '
                         'nodeops.memcg/* annotations to start it over'
                         % (name, left, marks.get('target') or 'unrecorded', _kernel_text(running)))
    if running.get('upgrade_needed'):
        return {'status': 'pending', 'resume_from': None, 'target': None, 'why': 'runs %s' % _kernel_text(running)}
    if fixed and boot_default and boot_default.get('upgrade_needed'):
        return {'status': 'resume', 'resume_from': 'health', 'target': release,
                'why': 'runs the fixed %s, but its next boot lands on %s: health gate, commit'
                       % (_kernel_text(running), _kernel_text(boot_default))}
    return {'status': 'already_fixed', 'resume_from': None, 'target': None, 'why': 'runs %s' % _kernel_text(running)}


# ---------------------------------------------------------------- the lock's TTL

#: seconds of slack over the longest wait for what runs between two lock renewals (API calls, install)
LOCK_SLACK_SECONDS = 60


def lock_ttl_check(ttl, waits, slack=LOCK_SLACK_SECONDS):
    """None when a lock of `ttl` seconds, renewed before each wait, outlasts the longest of `waits`.

    `waits` maps a step to its bound in seconds (the lock is renewed before each one). Otherwise a
    message with the numbers: the step, its bound, the slack and the TTL needed.
    """
    step, longest = max(sorted(waits.items()), key=lambda item: int(item[1]))
    needed = int(longest) + int(slack)
    if int(ttl) >= needed:
        return None
    return ('kernel_upgrade_lock_ttl %ds is shorter than the longest step between two lock renewals: %s may '
            'take %ds, plus %ds for the calls around it = %ds. Raise kernel_upgrade_lock_ttl to at least %d '
            'or lower that timeout' % (int(ttl), step, int(longest), int(slack), needed, needed))


# ---------------------------------------------------------------- the live capacity budget

def unavailable_budget(max_unavailable, workers, batch):
    """Nodes allowed unavailable at once: a count, a percentage of `workers` (floored, at least 1 when
    above 0%), or '' / None for the batch size (nothing else may be unavailable). Raises MemcgError
    naming a bad value."""
    if max_unavailable in (None, ''):
        return batch
    match = _BATCH.match(str(max_unavailable))
    if not match or (match.group(2) and int(match.group(1)) > 100):
        raise MemcgError('kernel_upgrade_max_unavailable must be a count, a percentage from 0%% to 100%% of the '
                         'worker nodes, or empty for the batch size, got %r' % (max_unavailable,))
    value = int(match.group(1))
    if match.group(2):
        return max(1, int(value / 100.0 * workers)) if value else 0
    return value


def capacity_check(nodes, batch, finished, max_unavailable):
    """Whether the next batch fits the cluster's budget of unavailable nodes, read live; pure.

    `nodes` are node summaries as k8s_node_info returns them (name, ready, unschedulable,
    control_plane), `batch` the names of the next batch, `finished` those this run already finished.
    A node counts as unavailable when it is NotReady or unschedulable for any reason, except this
    run's finished nodes and the batch's own (the batch counts once, in full). Returns budget,
    workers, unavailable (the other nodes that use up the budget), needed and message (None when
    the batch fits).
    """
    batch = list(batch)
    workers = len([n for n in nodes if not n.get('control_plane')])
    budget = unavailable_budget(max_unavailable, workers, len(batch))
    skip = set(batch) | set(finished or [])
    unavailable = sorted(n['name'] for n in nodes
                         if n['name'] not in skip and (not n.get('ready') or n.get('unschedulable')))
    needed = len(unavailable) + len(batch)
    message = None
    if needed > budget:
        message = ('the batch %s would make %d nodes unavailable at once, over kernel_upgrade_max_unavailable %s '
                   '(%d of %d workers): already NotReady or unschedulable: %s'
                   % (', '.join(batch), needed, max_unavailable if max_unavailable not in (None, '') else
                      "'' (the batch size)", budget, workers, ', '.join(unavailable) or 'none'))
    return {'budget': budget, 'workers': workers, 'unavailable': unavailable, 'needed': needed, 'message': message}


# ---------------------------------------------------------------- room for the evicted pods

def _cpu(millis):
    return '%dm' % millis if millis < 1000 or millis % 1000 else '%d' % (millis // 1000)


def _memory(size):
    for unit, factor in (('GiB', 2 ** 30), ('MiB', 2 ** 20), ('KiB', 2 ** 10)):
        if size >= factor:
            return '%.1f %s' % (size / float(factor), unit)
    return '%d B' % size


def _pod_text(pod):
    req = pod['requests']
    return '%s/%s (cpu %s, memory %s)' % (pod['namespace'], pod['name'], _cpu(req['cpu_millis']),
                                          _memory(req['memory_bytes']))


def _running(pod):
    return pod.get('phase') not in ('Succeeded', 'Failed')


def room_check(nodes, batch):
    """Whether the nodes that stay schedulable have the allocatable room for the pods `batch` would evict; pure.

    `nodes` are k8s_node_info summaries with `allocatable` and `pods` (each with `requests`). The
    pods that need room are the ones a drain evicts and a controller recreates elsewhere (not
    DaemonSet or mirror pods, not finished ones, not bare pods, which nothing recreates). The room
    is on the nodes outside the batch that are Ready, schedulable and not control-plane nodes: their
    allocatable CPU, memory and pod count less the requests of the pods already on them. The pods are
    placed largest first, each on the node with the most free memory that holds it (as the
    scheduler's spreading would), so a pod too big for every single node is found even when the
    sum would fit. Requests are what the scheduler reserves; a pod without requests needs a pod slot
    only.

    Returns fits, pods (how many need room), cpu_millis and memory_bytes (their requests), targets
    (the nodes that stay schedulable), free_cpu_millis and free_memory_bytes (over the targets),
    unplaced (the pods that fit nowhere, as text) and message (one line either way).
    """
    batch = set(batch)
    moving = []
    for node in nodes:
        if node['name'] in batch:
            moving.extend(pod for pod in node.get('pods') or []
                          if _running(pod) and pod.get('owner_kind') not in (None, 'DaemonSet')
                          and not pod.get('mirror'))
    free = []
    for node in nodes:
        if node['name'] in batch or not node.get('ready') or node.get('unschedulable') or node.get('control_plane'):
            continue
        room = dict(node.get('allocatable') or {})
        slots = int(room.get('pods') or 0)
        cpu, memory = int(room.get('cpu_millis') or 0), int(room.get('memory_bytes') or 0)
        for pod in node.get('pods') or []:
            if _running(pod):
                cpu -= pod['requests']['cpu_millis']
                memory -= pod['requests']['memory_bytes']
                slots -= 1
        free.append({'name': node['name'], 'cpu_millis': cpu, 'memory_bytes': memory, 'pods': slots})
    targets = sorted(room['name'] for room in free)
    free_cpu = sum(max(0, room['cpu_millis']) for room in free)
    free_memory = sum(max(0, room['memory_bytes']) for room in free)
    want_cpu = sum(pod['requests']['cpu_millis'] for pod in moving)
    want_memory = sum(pod['requests']['memory_bytes'] for pod in moving)
    unplaced = []
    order = sorted(moving, key=lambda p: (-p['requests']['memory_bytes'], -p['requests']['cpu_millis'],
                                          p['namespace'], p['name']))
    for pod in order:
        req = pod['requests']
        fitting = [room for room in free if room['pods'] >= 1 and room['cpu_millis'] >= req['cpu_millis']
                   and room['memory_bytes'] >= req['memory_bytes']]
        if not fitting:
            unplaced.append(_pod_text(pod))
            continue
        room = sorted(fitting, key=lambda r: (-r['memory_bytes'], -r['cpu_millis'], r['name']))[0]
        room['cpu_millis'] -= req['cpu_millis']
        room['memory_bytes'] -= req['memory_bytes']
        room['pods'] -= 1
    where = ('the %d node(s) that stay schedulable (%s; %s CPU and %s memory free in all)'
             % (len(targets), ', '.join(targets), _cpu(free_cpu), _memory(free_memory)))
    batch_text = ', '.join(sorted(batch))
    if not moving:
        message = 'the batch %s evicts no pod that a controller recreates elsewhere' % batch_text
    elif unplaced and not targets:
        message = ('not enough allocatable room for the pods the batch %s would evict: no node stays schedulable '
                   '(every other node is in the batch, NotReady, cordoned or a control-plane node) for %d pod(s): %s'
                   % (batch_text, len(unplaced), '; '.join(unplaced)))
    elif unplaced:
        message = ('not enough allocatable room for the pods the batch %s would evict: %d of %d fit on none of %s: %s'
                   % (batch_text, len(unplaced), len(moving), where, '; '.join(unplaced)))
    else:
        message = ('room for the pods the batch %s would evict: %d pod(s) requesting %s CPU and %s memory fit on %s'
                   % (batch_text, len(moving), _cpu(want_cpu), _memory(want_memory), where))
    return {'fits': not unplaced, 'pods': len(moving), 'cpu_millis': want_cpu, 'memory_bytes': want_memory,
            'targets': targets, 'free_cpu_millis': free_cpu, 'free_memory_bytes': free_memory,
            'unplaced': unplaced, 'message': message}
