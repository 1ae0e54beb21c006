# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure decisions of the upgrade on Kubernetes objects: nodes, pods, PodDisruptionBudgets, drains.

Functions take plain decoded JSON (a Node, Pods, PodDisruptionBudgets, kubectl drain's output) and
return plain data: summaries, merge patches, blocking budgets, refusals. No kubectl runs here
(client.py runs it).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

# ---------------------------------------------------------------- annotations and names

ANNOTATION_PREFIX = 'nodeops.memcg/'
#: the run id of the run that cordoned the node; only that run uncordons it
CORDONED_BY = 'nodeops.memcg/cordoned-by'
#: why the upgrade of this node failed (the node stays cordoned)
FAILURE = 'nodeops.memcg/failure'
#: the run id that recorded nodeops.memcg/failure (so that run can clear its own stale failure)
FAILURE_RUN = 'nodeops.memcg/failure-run'
#: the last step of the upgrade the node finished (NODE_STEPS), so a re-run knows where to resume
STEP = 'nodeops.memcg/step'
#: the kernel release the upgrade boots on this node
TARGET = 'nodeops.memcg/target'
OUR_ANNOTATIONS = (CORDONED_BY, FAILURE, FAILURE_RUN, STEP, TARGET)

CONTROL_PLANE_LABELS = ('node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master')
MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror'

#: annotation values are free text for people; keep them short enough to read in `kubectl describe`
MAX_ANNOTATION_CHARS = 1024

#: the steps a node passes, in order, as recorded in its nodeops.memcg/step annotation; the uncordon
#: removes the annotations, so an uncordoned node carries none
NODE_STEPS = ('cordoned', 'drained', 'booted', 'healthy', 'committed')


# ---------------------------------------------------------------- nodes

def _annotations(obj):
    return ((obj or {}).get('metadata') or {}).get('annotations') or {}


def _labels(obj):
    return ((obj or {}).get('metadata') or {}).get('labels') or {}


def condition_status(obj, condition):
    """'True', 'False', 'Unknown' or None when the status has no such condition."""
    for cond in ((obj or {}).get('status') or {}).get('conditions') or []:
        if cond.get('type') == condition:
            return cond.get('status')
    return None


def node_ready(node):
    return condition_status(node, 'Ready') == 'True'


# ---------------------------------------------------------------- resource quantities

_QUANTITY = re.compile(r'^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$')
_SUFFIX = {'Ki': 2 ** 10, 'Mi': 2 ** 20, 'Gi': 2 ** 30, 'Ti': 2 ** 40, 'Pi': 2 ** 50, 'Ei': 2 ** 60,
           'n': 1e-9, 'u': 1e-6, 'm': 1e-3, 'k': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12, 'P': 1e15, 'E': 1e18}


def parse_quantity(value):
    """A Kubernetes resource quantity ('100m', '1.5Gi', '2', '1e3') as a float in base units; None for
    None or ''. Raises MemcgError naming a value that is not a quantity."""
    if value is None or value == '':
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise MemcgError('not a Kubernetes quantity: %r' % (value,))
    number = float(match.group(1))
    if match.group(2):
        return number * 10 ** int(match.group(2)[1:])
    return number * _SUFFIX.get(match.group(3), 1)


def _resources(mapping):
    """{'cpu_millis', 'memory_bytes'} of a requests or allocatable map (missing: 0)."""
    mapping = mapping or {}
    cpu = parse_quantity(mapping.get('cpu')) or 0
    memory = parse_quantity(mapping.get('memory')) or 0
    return {'cpu_millis': int(round(cpu * 1000)), 'memory_bytes': int(round(memory))}


def pod_requests(pod):
    """What the scheduler reserves for a pod: {'cpu_millis', 'memory_bytes'}.

    The larger of the containers' requests (plus the restartable init containers, sidecars, that
    keep running beside them) and the largest ordinary init container's (plus the sidecars started
    before it, taken as all of them), plus the pod overhead: the scheduler's own rule.
    """
    spec = pod.get('spec') or {}
    total = {'cpu_millis': 0, 'memory_bytes': 0}
    sidecars = {'cpu_millis': 0, 'memory_bytes': 0}
    init_peak = {'cpu_millis': 0, 'memory_bytes': 0}
    for container in spec.get('containers') or []:
        for key, value in _resources((container.get('resources') or {}).get('requests')).items():
            total[key] += value
    for container in spec.get('initContainers') or []:
        wanted = _resources((container.get('resources') or {}).get('requests'))
        for key, value in wanted.items():
            if container.get('restartPolicy') == 'Always':
                sidecars[key] += value
            else:
                init_peak[key] = max(init_peak[key], value)
    overhead = _resources(spec.get('overhead'))
    return dict((key, max(total[key] + sidecars[key], init_peak[key] + sidecars[key]) + overhead[key])
                for key in total)


def node_summary(node):
    """The facts of one Node object the upgrade flow decides on."""
    meta = node.get('metadata') or {}
    labels = meta.get('labels') or {}
    annotations = meta.get('annotations') or {}
    status = node.get('status') or {}
    info = status.get('nodeInfo') or {}
    allocatable = _resources(status.get('allocatable'))
    allocatable['pods'] = int(parse_quantity((status.get('allocatable') or {}).get('pods')) or 0)
    return {
        'name': meta.get('name'),
        'ready': node_ready(node),
        'ready_status': condition_status(node, 'Ready') or 'Unknown',
        'unschedulable': bool((node.get('spec') or {}).get('unschedulable')),
        'control_plane': any(label in labels for label in CONTROL_PLANE_LABELS),
        'kernel_version': info.get('kernelVersion'),
        'kubelet_version': info.get('kubeletVersion'),
        'os_image': info.get('osImage'),
        'cordoned_by': annotations.get(CORDONED_BY),
        'failure': annotations.get(FAILURE),
        'step': annotations.get(STEP),
        'target': annotations.get(TARGET),
        'annotations': dict((k, v) for k, v in annotations.items() if k.startswith(ANNOTATION_PREFIX)),
        'allocatable': allocatable,
    }


def cordon_owner(node, run_id):
    """Who holds the node's cordon: None (schedulable), 'this_run', 'other_run' or 'admin'.

    A node that is unschedulable without our cordoned-by annotation was cordoned by someone else (an
    admin, another tool): it must stay cordoned whatever this run does. A cordoned-by annotation on a
    schedulable node (someone uncordoned by hand) does not make the node ours to cordon later either:
    it is reported as schedulable and cordoning it annotates it anew.
    """
    unschedulable = bool((node.get('spec') or {}).get('unschedulable'))
    if not unschedulable:
        return None
    by = _annotations(node).get(CORDONED_BY)
    if not by:
        return 'admin'
    return 'this_run' if by == run_id else 'other_run'


def cordon_patch(run_id, resource_version=None):
    """Merge patch: cordon and annotate in one request (resourceVersion makes it a precondition)."""
    patch = {'metadata': {'annotations': {CORDONED_BY: run_id}}, 'spec': {'unschedulable': True}}
    if resource_version:
        patch['metadata']['resourceVersion'] = resource_version
    return patch


def uncordon_patch(node, run_id, resource_version=None):
    """Merge patch undoing this run's cordon, or None when the node is not this run's to uncordon.

    Removes cordoned-by and, when it was recorded by this run, the failure annotations.
    """
    annotations = _annotations(node)
    remove = {}
    uncordon = False
    if annotations.get(CORDONED_BY) == run_id:
        remove[CORDONED_BY] = None
        remove.update((key, None) for key in (STEP, TARGET) if key in annotations)
        uncordon = bool((node.get('spec') or {}).get('unschedulable'))
    if annotations.get(FAILURE_RUN) == run_id:
        remove[FAILURE_RUN] = None
        if FAILURE in annotations:
            remove[FAILURE] = None
    if not remove:
        return None
    patch = {'metadata': {'annotations': remove}}
    if uncordon:
        patch['spec'] = {'unschedulable': None}
    if resource_version:
        patch['metadata']['resourceVersion'] = resource_version
    return patch


def failure_patch(node, reason, run_id=None, resource_version=None):
    """Merge patch recording the failure reason, or None when the node already says exactly that."""
    reason = (reason or '').strip()
    if len(reason) > MAX_ANNOTATION_CHARS:
        reason = reason[:MAX_ANNOTATION_CHARS - 3] + '...'
    annotations = _annotations(node)
    wanted = {FAILURE: reason}
    if run_id:
        wanted[FAILURE_RUN] = run_id
    elif FAILURE_RUN in annotations:
        wanted[FAILURE_RUN] = None
    return _annotations_patch(annotations, wanted, resource_version)


def _annotations_patch(annotations, wanted, resource_version):
    """Merge patch setting the wanted annotations (None removes one), or None when the node has them."""
    if all(annotations.get(k) == v for k, v in wanted.items()):
        return None
    patch = {'metadata': {'annotations': wanted}}
    if resource_version:
        patch['metadata']['resourceVersion'] = resource_version
    return patch


def progress_patch(node, run_id, step, target=None, resource_version=None):
    """Merge patch recording the step the node finished (and the target release).

    None when the node already says so, or when this run did not cordon it: the uncordon removes
    these annotations only from the nodes it cordoned, so it never writes them on others.
    """
    annotations = _annotations(node)
    if annotations.get(CORDONED_BY) != run_id:
        return None
    wanted = {STEP: step}
    if target:
        wanted[TARGET] = target
    return _annotations_patch(annotations, wanted, resource_version)


def apply_merge_patch(obj, patch):
    """RFC 7386 merge patch applied to a copy of obj (for diffs and check mode predictions)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(obj) if isinstance(obj, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def node_state(node):
    """The part of a node the node module changes: for diffs and results."""
    return {
        'unschedulable': bool((node.get('spec') or {}).get('unschedulable')),
        'annotations': dict((k, v) for k, v in sorted(_annotations(node).items()) if k.startswith(ANNOTATION_PREFIX)),
    }


WAIT_CONDITIONS = ('ready', 'not_ready', 'daemonsets_ready')


def wait_condition_met(condition, node, pods=None):
    """(met, why_not) for one node (None: missing) under a wait_for condition.

    ready: the Ready condition is True. not_ready: it is not True (False or Unknown, the node went
    down). daemonsets_ready: the node is Ready and every DaemonSet pod on it is Running and Ready.
    """
    if node is None:
        return False, 'the node does not exist'
    status = condition_status(node, 'Ready') or 'Unknown'
    if condition == 'not_ready':
        return status != 'True', 'its Ready condition is still True'
    if status != 'True':
        return False, 'its Ready condition is %s' % status
    if condition == 'ready':
        return True, ''
    waiting = []
    for pod in pods or []:
        if pod_owner(pod)[0] != 'DaemonSet':
            continue
        if (pod.get('status') or {}).get('phase') != 'Running' or not pod_ready(pod):
            meta = pod.get('metadata') or {}
            waiting.append('%s/%s' % (meta.get('namespace'), meta.get('name')))
    if waiting:
        return False, 'DaemonSet pods not Ready: %s' % ', '.join(sorted(waiting))
    return True, ''


def soak_breaks(names, nodes, elapsed, soak, broken=None):
    """The nodes of `names` whose health gate broke during a soak, after one more reading; pure.

    `nodes` maps a name to the Node as read `elapsed` seconds into a soak of `soak` seconds (a
    missing name: the node is gone). A node breaks when it is not Ready at any reading; the first
    break is kept ({name: why}), a node that comes back Ready later stays broken.
    """
    broken = dict(broken or {})
    for name in names:
        if name in broken:
            continue
        node = nodes.get(name)
        if node is None:
            broken[name] = 'it was gone from the API %ds into the %ds soak' % (int(elapsed), int(soak))
        elif not node_ready(node):
            broken[name] = ('its Ready condition was %s %ds into the %ds soak'
                            % (condition_status(node, 'Ready') or 'Unknown', int(elapsed), int(soak)))
    return broken


# ---------------------------------------------------------------- pods and PodDisruptionBudgets

def pod_owner(pod):
    """(kind, name) of the pod's controller, or (None, None) for a bare pod."""
    refs = (pod.get('metadata') or {}).get('ownerReferences') or []
    for ref in refs:
        if ref.get('controller'):
            return ref.get('kind'), ref.get('name')
    return None, None


def pod_ready(pod):
    return condition_status(pod, 'Ready') == 'True'


def pod_summary(pod):
    meta = pod.get('metadata') or {}
    kind, name = pod_owner(pod)
    return {
        'namespace': meta.get('namespace'),
        'name': meta.get('name'),
        'owner_kind': kind,
        'owner_name': name,
        'phase': (pod.get('status') or {}).get('phase'),
        'ready': pod_ready(pod),
        'mirror': MIRROR_POD_ANNOTATION in (meta.get('annotations') or {}),
        'requests': pod_requests(pod),
    }


def selector_matches(selector, labels):
    """A metav1.LabelSelector against a label map: None matches nothing, {} matches everything."""
    if selector is None:
        return False
    for key, value in (selector.get('matchLabels') or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get('matchExpressions') or []:
        key, op, values = expr.get('key'), expr.get('operator'), expr.get('values') or []
        if op == 'In':
            if key not in labels or labels[key] not in values:
                return False
        elif op == 'NotIn':
            if key in labels and labels[key] in values:
                return False
        elif op == 'Exists':
            if key not in labels:
                return False
        elif op == 'DoesNotExist':
            if key in labels:
                return False
        else:
            return False
    return True


def _evictable(pod):
    """Pods kubectl drain evicts (DaemonSet and mirror pods are skipped, finished pods need no budget)."""
    if pod_owner(pod)[0] == 'DaemonSet':
        return False
    if MIRROR_POD_ANNOTATION in _annotations(pod):
        return False
    return (pod.get('status') or {}).get('phase') not in ('Succeeded', 'Failed')


def pods_blocking(pods, pdbs, node=None):
    """Pods (optionally only those on `node`) whose eviction the PodDisruptionBudgets refuse.

    A budget blocks a pod when it selects the pod (same namespace) and its status.disruptionsAllowed
    is below 1; a pod selected by more than one budget cannot be evicted at all (the eviction API
    refuses it whatever the budgets allow). Returns a list of dicts: namespace, pod, pdbs (names of
    the blocking budgets), reason, sorted by namespace and pod.
    """
    blocked = []
    for pod in pods:
        meta = pod.get('metadata') or {}
        if node is not None and (pod.get('spec') or {}).get('nodeName') != node:
            continue
        if not _evictable(pod):
            continue
        labels = meta.get('labels') or {}
        matching = []
        for pdb in pdbs:
            pmeta = pdb.get('metadata') or {}
            if pmeta.get('namespace') != meta.get('namespace'):
                continue
            if selector_matches((pdb.get('spec') or {}).get('selector'), labels):
                matching.append(pdb)
        if not matching:
            continue
        blocking = [p for p in matching if int((p.get('status') or {}).get('disruptionsAllowed') or 0) < 1]
        names = sorted(p['metadata']['name'] for p in (blocking or matching))
        if blocking:
            reason = 'PodDisruptionBudget %s allows no disruption' % ', '.join(names)
        elif len(matching) > 1:
            reason = 'selected by more than one PodDisruptionBudget (%s): the eviction API refuses it' % ', '.join(names)
        else:
            continue
        blocked.append({'namespace': meta.get('namespace'), 'pod': meta.get('name'), 'pdbs': names,
                        'reason': reason})
    return sorted(blocked, key=lambda b: (b['namespace'], b['pod']))


# ---------------------------------------------------------------- kubectl drain's error text

# `error when evicting pods/"web-5d8f7" -n "shop" (will retry after 5s): Cannot evict pod ...`
# (kubectl >= 1.23) and `error when evicting pod "web-5d8f7" (will retry after 5s): ...` (older)
_EVICT_ERROR = re.compile(
    r'error when evicting (?:pods/"(?P<pod>[^"]+)" -n "(?P<ns>[^"]+)"|pod "(?P<oldpod>[^"]+)")'
    r'(?P<retry> \(will retry after \d+s\))?: (?P<msg>[^\n]*)')
# `cannot delete Pods that declare no controller (use --force to override): default/bare, ns/other`
_FILTER_ERROR = re.compile(
    r'cannot delete (?:cannot delete )?(?P<what>[^(:\n]+?) \(use (?P<flag>--[\w-]+) to (?:override|ignore)\): '
    r'(?P<pods>[\w.-]+/[\w.-]+(?:, [\w.-]+/[\w.-]+)*)')
_FILTER_REASONS = (
    ('no controller', 'no_controller'),
    ('not managed by', 'no_controller'),
    ('local storage', 'local_storage'),
    ('DaemonSet', 'daemonset'),
)


def _refusal_reason(message):
    lowered = message.lower()
    if 'disruption budget' in lowered:
        return 'pdb'
    if 'more than one poddisruptionbudget' in lowered:
        return 'multiple_pdbs'
    if 'global timeout reached' in lowered:
        return 'timeout'
    if 'forbidden' in lowered:
        return 'forbidden'
    return 'error'


def parse_drain_errors(stderr):
    """The pods kubectl drain could not evict, and why.

    Returns a list of dicts: namespace (None when kubectl did not say, old kubectl), pod, reason
    ('pdb', 'multiple_pdbs', 'timeout', 'no_controller', 'local_storage', 'daemonset', 'forbidden',
    'error') and message (kubectl's words). A pod that was refused by a budget and then hit the
    global timeout is reported once, with reason 'pdb'. Sorted by namespace and pod.
    """
    found = {}
    order = []

    def note(ns, pod, reason, message):
        key = (ns, pod)
        if key not in found:
            order.append(key)
            found[key] = {'namespace': ns, 'pod': pod, 'reason': reason, 'message': message}
            return
        # the more specific reason wins: a budget refusal explains a later timeout
        if found[key]['reason'] in ('timeout', 'error') and reason not in ('timeout', 'error'):
            found[key].update(reason=reason, message=message)

    for match in _EVICT_ERROR.finditer(stderr or ''):
        pod = match.group('pod') or match.group('oldpod')
        message = match.group('msg').strip()
        note(match.group('ns'), pod, _refusal_reason(message), message)
    for match in _FILTER_ERROR.finditer(stderr or ''):
        what = match.group('what')
        reason = 'error'
        for needle, code in _FILTER_REASONS:
            if needle in what:
                reason = code
                break
        message = 'cannot delete %s (use %s to override)' % (what, match.group('flag'))
        for ref in match.group('pods').split(', '):
            ns, pod = ref.split('/', 1)
            note(ns, pod, reason, message)
    return sorted((found[k] for k in order), key=lambda r: (r['namespace'] or '', r['pod']))


_REASON_TEXT = {
    'pdb': 'refused by a PodDisruptionBudget',
    'multiple_pdbs': 'selected by more than one PodDisruptionBudget, which the eviction API refuses',
    'timeout': 'not gone before the drain timeout',
    'no_controller': 'a bare pod without controller, force=true would delete it',
    'local_storage': 'uses emptyDir local storage, delete_emptydir_data=true would delete it',
    'daemonset': 'managed by a DaemonSet, ignore_daemonsets=true would skip it',
    'forbidden': 'eviction forbidden, RBAC needs pods/eviction create',
}


def summarize_refusals(refusals):
    """One line naming each refused pod, its reason and (when known) the budgets that block it."""
    parts = []
    for item in refusals:
        ref = '%s/%s' % (item['namespace'], item['pod']) if item.get('namespace') else item['pod']
        text = _REASON_TEXT.get(item['reason'], item.get('message') or item['reason'])
        if item.get('pdbs'):
            text = 'blocked by PodDisruptionBudget %s' % ', '.join(item['pdbs'])
        parts.append('%s: %s' % (ref, text))
    return '; '.join(parts)


_EVICTING = re.compile(r'^evicting pod (?P<ns>[^/\s]+)/(?P<pod>\S+)', re.MULTILINE)
_DELETING = re.compile(r'^(?:deleting|removing) pod (?P<ns>[^/\s]+)/(?P<pod>\S+)', re.MULTILINE)
_IGNORED_DS = re.compile(r'ignoring DaemonSet-managed Pods: (?P<pods>[\w.-]+/[\w.-]+(?:, [\w.-]+/[\w.-]+)*)')


def parse_drain_output(stdout, stderr=''):
    """What kubectl drain evicted (or, with --dry-run=server, would evict) and the DaemonSet pods it skipped.

    kubectl prints `evicting pod NS/NAME` before every attempt, refused ones included: pods that
    stderr reports as refused are not counted as evicted.
    """
    refused = set()
    for item in parse_drain_errors(stderr):
        refused.add((item['namespace'], item['pod']))
        refused.add((None, item['pod']))
    evicted = []
    for match in list(_EVICTING.finditer(stdout or '')) + list(_DELETING.finditer(stdout or '')):
        ns, pod = match.group('ns'), match.group('pod')
        ref = '%s/%s' % (ns, pod)
        if ref not in evicted and (ns, pod) not in refused and (None, pod) not in refused:
            evicted.append(ref)
    ignored = []
    for match in _IGNORED_DS.finditer((stdout or '') + '\n' + (stderr or '')):
        for ref in match.group('pods').split(', '):
            if ref not in ignored:
                ignored.append(ref)
    return {'evicted': sorted(evicted), 'ignored_daemonset_pods': sorted(ignored)}


def eviction_supported(api_v1_resources):
    """True when /api/v1 advertises the pods/eviction subresource (else kubectl drain silently deletes)."""
    for resource in (api_v1_resources or {}).get('resources') or []:
        if resource.get('name') == 'pods/eviction':
            return True
    return False
