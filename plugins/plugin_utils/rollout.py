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
