#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: k8s_churn_sources
short_description: Rank the workloads that create memory cgroups on a node, and fetch kubelet's CPU profile
version_added: 1.1.0
description:
  - Read-only. Lists the pods on one node and the container C(Started) events of pods on that node
    (events outlive the pods of finished Jobs), and ranks the owners (a Job of a CronJob counts as
    the CronJob, a ReplicaSet as its Deployment) by namespace and owner with counts of pods, Job
    pods, restarts, pods created recently and container starts. Every pod and container start
    makes a memory cgroup, so the top of the list is what to look at first.
  - Optionally fetches kubelet's CPU profile through the API server with the user's credentials,
    C(kubectl get --raw /api/v1/nodes/NODE/proxy/debug/pprof/profile?seconds=N) (needs the
    C(nodes/proxy) permission; docs/diagnose.md has a minimal RBAC role), saves it at O(pprof_dest)
    and lists its top functions. It never runs C(kubectl proxy) and opens no listening socket.
  - Runs on the host that holds the kubeconfig (usually C(delegate_to) the controller).
author:
  - nodeops.memcg contributors (@nodeops)
extends_documentation_fragment:
  - nodeops.memcg.kubectl
attributes:
  check_mode:
    support: full
    description:
      - Nothing in the cluster changes. The profile file is an output of the diagnosis on the
        controller, like the reports; it is saved in check mode too, and C(changed) is always false.
  diff_mode:
    support: none
    description: Nothing in the cluster changes, so there is no diff.
  platform:
    support: full
    platforms: posix
    description: Runs kubectl on the host that holds the kubeconfig.
options:
  node:
    description: The Kubernetes node name.
    type: str
    required: true
  recent_hours:
    description: Pods created within this many hours count as recent.
    type: float
    default: 1.0
  top:
    description: How many owners and namespaces to return.
    type: int
    default: 10
  pprof_seconds:
    description: Seconds of kubelet CPU profile to fetch; V(0) fetches none.
    type: int
    default: 0
  pprof_dest:
    description: File on the controller the profile is saved to (gzipped protobuf, for C(go tool pprof)).
    type: path
seealso:
  - name: Diagnosis guide
    description: How to read the sources and the profile; the RBAC role for nodes/proxy.
    link: https://github.com/nodeops/memcg/blob/main/docs/diagnose.md
'''

EXAMPLES = r'''
- name: Rank what creates memory cgroups on node1
  nodeops.memcg.k8s_churn_sources:
    node: node1
  delegate_to: localhost
  register: sources

- name: Also fetch 10 seconds of kubelet CPU profile
  nodeops.memcg.k8s_churn_sources:
    node: node1
    pprof_seconds: 10
    pprof_dest: /tmp/node1-kubelet.pprof
    kubeconfig: ~/.kube/config
  delegate_to: localhost
'''

RETURN = r'''
sources:
  description:
    - Owners of pods on the node by estimated container starts (C(score)), highest first. Each has
      C(namespace), C(owner_kind) (C(CronJob), C(Job), C(Deployment), C(DaemonSet), C(Pod) for a
      bare pod, C(Job or other) for a pod known only from events), C(owner_name), C(pods), C(job_pods),
      C(restarts), C(recent_pods), C(started_events) and C(score).
  returned: always
  type: list
  elements: dict
  sample: [{namespace: batch, owner_kind: CronJob, owner_name: report, pods: 3, job_pods: 3, restarts: 0,
            recent_pods: 3, started_events: 24, score: 24}]
namespaces:
  description: Namespaces by the summed score of their owners (C(namespace), C(score)).
  returned: always
  type: list
  elements: dict
  sample: [{namespace: batch, score: 24}]
look_first:
  description: Up to three sentences naming the owners to look at first and why.
  returned: always
  type: list
  elements: str
  sample: ["batch/CronJob/report: 24 container starts in recent events, 3 pods created recently; every run makes ..."]
counts:
  description: How many pods on the node and Started events were read (C(pods), C(events)).
  returned: always
  type: dict
  sample: {pods: 40, events: 120}
pprof:
  description:
    - Null unless O(pprof_seconds) is set. Else C(path) (where it was saved), C(bytes), C(samples),
      C(top) (C(function), C(flat) and C(cum) in percent of CPU time), C(memory_stat_share_percent)
      (CPU under cAdvisor's memory stat readers) and C(error) (why it could not be fetched or read).
  returned: always
  type: dict
  sample: {path: /tmp/node1-kubelet.pprof, bytes: 20480, samples: 950, memory_stat_share_percent: 81.2,
           top: [{function: syscall.Syscall, flat: 78.5, cum: 80.1}], error: null}
'''

import os
import time
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeops.memcg.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.nodeops.memcg.plugins.module_utils.churn import parse_pprof, rank_sources
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

PPROF_PATH = '/api/v1/nodes/%s/proxy/debug/pprof/profile?seconds=%d'


def fetch_pprof(module, kube, node, seconds, dest):
    """kubectl get --raw of kubelet's profile (bytes), saved at dest and parsed; errors are returned, not raised."""
    argv = k8s_client.Kubectl(None, kube.binary, kube.kubeconfig, kube.context,
                              seconds + (kube.request_timeout or 30)).base_argv()
    argv += ['get', '--raw', PPROF_PATH % (node, seconds)]
    rc, out, err = module.run_command(argv, encoding=None, environ_update={'LANG': 'C', 'LC_ALL': 'C'})
    if rc != 0:
        error = k8s_client.map_error(err.decode('utf-8', 'replace'), 'the kubelet profile of node %s' % node, argv)
        return {'path': None, 'bytes': 0, 'samples': None, 'top': [], 'memory_stat_share_percent': None,
                'error': str(error)}
    with open(dest, 'wb') as handle:
        handle.write(out)
    os.chmod(dest, 0o600)
    result = {'path': dest, 'bytes': len(out), 'error': None}
    try:
        result.update(parse_pprof(out))
    except MemcgError as exc:
        result.update(samples=None, top=[], memory_stat_share_percent=None, error='saved, but not readable: %s' % exc)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            k8s_client.KUBECTL_OPTIONS,
            node=dict(type='str', required=True),
            recent_hours=dict(type='float', default=1.0),
            top=dict(type='int', default=10),
            pprof_seconds=dict(type='int', default=0),
            pprof_dest=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        if params['pprof_seconds'] < 0:
            raise MemcgError('pprof_seconds must not be negative, got %d' % params['pprof_seconds'])
        if params['pprof_seconds'] and not params['pprof_dest']:
            raise MemcgError('pprof_seconds %d needs pprof_dest' % params['pprof_seconds'])
        kube = k8s_client.kubectl_for(module)
        node = params['node']
        pods = kube.get_items('pods', all_namespaces=True, field_selector='spec.nodeName=%s' % node)
        events = kube.get_items('events', all_namespaces=True, field_selector='involvedObject.kind=Pod,reason=Started')
        result = rank_sources(pods, events, node, time.time(), params['recent_hours'] * 3600, params['top'])
        result['counts'] = {'pods': len(pods), 'events': len(events)}
        result['pprof'] = None
        if params['pprof_seconds']:
            result['pprof'] = fetch_pprof(module, kube, node, params['pprof_seconds'], params['pprof_dest'])
    except MemcgError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())
    else:
        module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
