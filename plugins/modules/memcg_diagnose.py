#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: memcg_diagnose
short_description: Prove whether kubelet's CPU goes to memory.stat reads, and measure dying memcg rates
version_added: 1.1.0
description:
  - Read-only diagnosis of one node, bounded by O(timeout).
  - Samples kubelet for O(duration) seconds, with C(perf record -g) (kernel call graphs of every
    kubelet thread) where perf is installed and works, else by sampling
    C(/proc/<pid>/task/*/stack), C(wchan) and kubelet's open files. Reports the share of samples
    spent under the kernel's memory cgroup stat functions (the names for the running kernel's
    generation are returned in RV(evidence), key C(functions)), kubelet's user and system CPU over the same
    interval, and a conclusion (V(confirmed), V(likely), V(not this) or V(unknown)) with the reasons.
  - Counts live and dying memory cgroups before and after the interval and returns the rates and a
    forecast (when C(critical_dying), and on RHEL 7 kernels the 65535 memcg id limit, is crossed).
  - Times one C(memory.stat) read at each level cAdvisor reads (root, kubepods, QoS slices, a few
    pods) with what is left of the time budget; a read that does not return in time is reported as
    V(timeout) and no further level is read.
  - perf writes its data into a private temporary directory that is removed before the module
    returns (no build-id cache). Needs root for perf, C(/proc/<pid>/stack) and C(/proc/<pid>/fd).
author:
  - nodeops.memcg contributors (@nodeops)
extends_documentation_fragment:
  - nodeops.memcg.root
attributes:
  check_mode:
    support: full
    description: The module never changes anything; check mode runs the same diagnosis.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  platform:
    support: full
    platforms: linux
    description: Reads Linux C(/proc) and cgroup file systems; runs C(perf) when present.
options:
  kubelet_name:
    description: Process name (C(/proc/<pid>/comm)) of kubelet when O(kubelet_pid) is not given; the lowest pid is used.
    type: str
    default: kubelet
  kubelet_pid:
    description: Pid of kubelet; skips the lookup by name.
    type: int
  duration:
    description: Seconds kubelet is sampled and between the two memory cgroup counts.
    type: float
    default: 20.0
  timeout:
    description:
      - Seconds the whole diagnosis may take; at least O(duration) + 5. What does not fit (the
        C(memory.stat) reads of the last levels) is reported as skipped.
    type: float
    default: 50.0
  method:
    description:
      - V(auto) uses perf and falls back to C(/proc) sampling when perf is missing or fails;
        V(perf) and V(proc) use only that method.
    type: str
    default: auto
    choices: [auto, perf, proc]
  perf:
    description: The perf binary, a name looked up in C(PATH) or a path.
    type: str
    default: perf
  max_pods:
    description: How many pod cgroups get their C(memory.stat) read timed.
    type: int
    default: 3
  critical_dying:
    description: Dying memory cgroup count the forecast counts down to (the detect threshold of the same name).
    type: int
    default: 20000
  warn_read_ms:
    description: A C(memory.stat) read slower than this is flagged slow.
    type: float
    default: 100
  thresholds:
    description: Overrides of the conclusion thresholds (docs/diagnose.md).
    type: dict
    suboptions:
      busy_cpu_percent:
        description: kubelet under this share of one CPU is V(not this).
        type: float
      confirm_share_percent:
        description: Share of samples inside C(memory.stat) reads that confirms the cause.
        type: float
      likely_share_percent:
        description: Share that makes it likely.
        type: float
      system_share_percent:
        description: Share of kubelet's CPU in the kernel that a C(/proc) sampling confirmation also needs.
        type: float
seealso:
  - name: Diagnosis guide
    description: How to read the evidence, with a worked example.
    link: https://github.com/nodeops/memcg/blob/main/docs/diagnose.md
'''

EXAMPLES = r'''
- name: Diagnose the node for 20 seconds
  nodeops.memcg.memcg_diagnose:
  become: true
  register: diagnosis

- name: Show the conclusion
  ansible.builtin.debug:
    msg: "{{ diagnosis.conclusion }}: {{ diagnosis.reasons | join(' ') }}"

- name: A shorter diagnosis with /proc sampling only
  nodeops.memcg.memcg_diagnose:
    duration: 5
    timeout: 15
    method: proc
  become: true
'''

RETURN = r'''
kernel:
  description: The running kernel.
  returned: always
  type: dict
  contains:
    release:
      description: C(uname -r).
      type: str
      returned: always
      sample: 3.10.0-1160.el7.x86_64
    generation:
      description: V(3.10), V(4.x), V(5.x), V(6.x), or null when not recognised.
      type: str
      returned: always
      sample: "3.10"
cgroup:
  description: The cgroup layout, as memcg_probe returns it (C(layout), C(memory_mount), C(unified_mount)).
  returned: always
  type: dict
  sample: {layout: v1, memory_mount: /sys/fs/cgroup/memory, unified_mount: null}
kubelet:
  description: kubelet's CPU over the sampling interval, in percent of one CPU.
  returned: always
  type: dict
  sample: {found: true, pid: 1234, interval_s: 20.0, cpu_percent: 98.5, user_percent: 4.0,
           system_percent: 94.5, vanished: false}
  contains:
    found:
      description: True when kubelet was running at the start.
      type: bool
      returned: always
    pid:
      description: The pid sampled, or null.
      type: int
      returned: always
    interval_s:
      description: Seconds between the two CPU samples.
      type: float
      returned: always
    cpu_percent:
      description: User plus system CPU; null when not sampled.
      type: float
      returned: always
    user_percent:
      description: User CPU.
      type: float
      returned: always
    system_percent:
      description: Kernel CPU.
      type: float
      returned: always
    vanished:
      description: True when kubelet exited during the interval.
      type: bool
      returned: always
evidence:
  description:
    - Where kubelet's time went. C(method) says how it was sampled (V(perf), V(proc) or V(none)),
      C(tried) which methods were tried, C(error) why one failed, C(visibility) what that method can see.
    - C(samples), C(stat_samples) and C(share_percent) (samples under the stat functions, in percent);
      C(stat_functions_seen) lists the innermost stat function per sample with counts.
    - perf adds C(kernel_samples), C(kernel_symbols), C(top_functions) (leaf functions) and C(truncated);
      proc adds C(running_samples), C(stack_samples), C(open_samples), C(stack_readable) and C(open_files).
    - C(functions) is the list of stat functions looked for, C(kernel_generation) the row of the table used.
  returned: always
  type: dict
  sample:
    method: perf
    tried: [perf]
    error: null
    samples: 1980
    stat_samples: 1850
    share_percent: 93.4
    stat_functions_seen: [{function: memcg_stat_show, samples: 1850}]
    top_functions: [{function: mem_cgroup_iter, samples: 900}]
    functions: [memcg_stat_show, mem_cgroup_read_stat]
    kernel_generation: "3.10"
    visibility: perf samples every thread of kubelet with its kernel call graph
conclusion:
  description: V(confirmed), V(likely), V(not this) or V(unknown).
  returned: always
  type: str
  sample: confirmed
reasons:
  description: The sentences behind the conclusion, with the measured values and thresholds.
  returned: always
  type: list
  elements: str
  sample: ["kubelet (pid 1234) used 98% of a CPU, 96% of it in the kernel; 93.4% of 1980 perf samples ..."]
read_latency:
  description:
    - One row per level (C(root), C(kubepods), C(qos:burstable), C(qos:besteffort), C(pod)) with
      C(level), C(path), C(ms) (null unless read), C(slow), C(status) (V(read), V(missing),
      V(timeout), V(skipped), V(error)) and C(error).
  returned: always
  type: list
  elements: dict
  sample: [{level: root, path: /sys/fs/cgroup/memory/memory.stat, ms: 2400.5, slow: true, status: read, error: null}]
rates:
  description:
    - The two memory cgroup counts (C(first), C(second), as memcg_probe's C(memcg)) C(interval_s) apart,
      C(created) and C(created_per_hour) (net growth of live + dying, a lower bound on creations),
      C(dying_delta) and C(dying_per_hour). Null values when a count is unavailable.
  returned: always
  type: dict
  sample: {interval_s: 20.1, created: 12, created_per_hour: 2149.3, dying_delta: 11, dying_per_hour: 1970.1}
forecast:
  description:
    - C(dying_per_hour), C(critical_dying), C(hours_to_critical), C(id_limit) and C(hours_to_id_limit)
      (RHEL 7 kernels only, else null), C(hours_back_after_drop) and C(summary) (sentences).
      Hours are null when the count does not grow.
  returned: always
  type: dict
  sample: {dying_per_hour: 1970.1, critical_dying: 20000, hours_to_critical: 3.2, id_limit: 65535,
           hours_to_id_limit: 25.1, hours_back_after_drop: 7.0, summary: ["At 1970.1 dying memcgs per hour ..."]}
sources:
  description:
    - Memory cgroup makers seen on the node. C(transient_units), null without C(/run/systemd/transient), has
      C(total) and C(by_type); C(live_by_top) counts live memcgs per top-level cgroup.
  returned: always
  type: dict
  sample: {transient_units: {total: 3, by_type: {scope: 3}}, live_by_top: {kubepods.slice: 120, system.slice: 40}}
timing:
  description: C(timeout_s), C(duration_s), C(elapsed_s), C(within_budget) and C(stopped_early) (levels not read).
  returned: always
  type: dict
  sample: {timeout_s: 50.0, duration_s: 20.0, elapsed_s: 21.3, within_budget: true, stopped_early: false}
thresholds:
  description: The conclusion thresholds applied.
  returned: always
  type: dict
  sample: {busy_cpu_percent: 20, confirm_share_percent: 25, likely_share_percent: 10, system_share_percent: 50}
'''

import shutil
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeops.memcg.plugins.module_utils.diagnose import collect
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type='path', default='/'),
            kubelet_name=dict(type='str', default='kubelet'),
            kubelet_pid=dict(type='int'),
            duration=dict(type='float', default=20.0),
            timeout=dict(type='float', default=50.0),
            method=dict(type='str', default='auto', choices=['auto', 'perf', 'proc']),
            perf=dict(type='str', default='perf'),
            max_pods=dict(type='int', default=3),
            critical_dying=dict(type='int', default=20000),
            warn_read_ms=dict(type='float', default=100),
            thresholds=dict(type='dict', options=dict(
                busy_cpu_percent=dict(type='float'),
                confirm_share_percent=dict(type='float'),
                likely_share_percent=dict(type='float'),
                system_share_percent=dict(type='float'),
            )),
        ),
        supports_check_mode=True,
    )
    params = module.params
    perf = module.get_bin_path(params['perf']) if params['method'] != 'proc' else None
    workdir = tempfile.mkdtemp(prefix='nodeops-memcg-diagnose-', dir=module.tmpdir)
    try:
        result = collect(
            root=params['root'], kubelet_name=params['kubelet_name'], kubelet_pid=params['kubelet_pid'],
            duration_s=params['duration'], timeout_s=params['timeout'], method=params['method'],
            perf=perf, sleep_binary=module.get_bin_path('sleep', required=True), workdir=workdir,
            max_pods=params['max_pods'], thresholds=params['thresholds'],
            critical_dying=params['critical_dying'], warn_read_ms=params['warn_read_ms'],
        )
    except MemcgError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
