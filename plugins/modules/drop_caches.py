#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: drop_caches
short_description: Drop caches (and reap zombie memory cgroups) when the memcg probe says it is needed
version_added: 1.0.0
description:
  - The stopgap C(sync; echo 2 > /proc/sys/vm/drop_caches) for nodes piling up dying (zombie)
    memory cgroups, done carefully, in one call per node.
  - It measures the node first with the same probe as M(nodeops.memcg.memcg_probe) and acts only
    when the probe's verdict reaches O(min_verdict), or when O(force=true). Below that it
    changes nothing.
  - When the gate opens it runs C(sync) (unless O(sync=false)), optionally triggers the memcg
    reaper of Alibaba Cloud Linux kernels (O(reaper)), writes O(level) into
    C(/proc/sys/vm/drop_caches), waits O(settle_seconds) and measures again, returning the
    figures before and after and their difference.
  - The kernel documentation calls drop_caches a debugging aid. Level V(2) frees reclaimable slab
    (dentries, inodes) and keeps the page cache; levels V(1) and V(3) also throw away the page
    cache, which the node then reads back from disk. The relief is temporary; the lasting fix is
    a kernel that no longer walks dying memory cgroups (see M(nodeops.memcg.kernel_check)).
  - All files are written under O(root). When O(root) is not C(/) (for example a fixture tree),
    C(sync) is skipped and RV(sync.note) says so.
author:
  - nodeops.memcg contributors (@nodeops)
extends_documentation_fragment:
  - nodeops.memcg.root
  - nodeops.memcg.policy_overrides
  - nodeops.memcg.probe
attributes:
  check_mode:
    support: full
    description:
      - Check mode measures the node, decides, and reports what it would do (RV(would_drop),
        RV(reaper.would_reap), RV(gate.decision), RV(changed)); it writes nothing and does not run C(sync).
  diff_mode:
    support: none
    description: drop_caches and the reaper are triggers, not state; there is nothing to diff.
  platform:
    support: full
    platforms: linux
    description: Writes Linux C(/proc/sys/vm/drop_caches) and C(/sys/kernel/mm/memcg_reaper/).
options:
  level:
    description:
      - What to drop. V(1) page cache, V(2) reclaimable slab objects (dentries and inodes),
        V(3) both.
      - V(2) frees the slab that pins dying memory cgroups without throwing away hot page cache.
        When page cache pins them, only V(1) or V(3) helps, at the cost of re-reading from disk.
    type: int
    default: 2
    choices: [1, 2, 3]
  sync:
    description:
      - Run the C(sync) command before dropping, so that dirty objects can be freed too.
      - Skipped when O(root) is not C(/).
    type: bool
    default: true
  min_verdict:
    description:
      - The probe verdict from which caches are dropped. V(critical) needs a kernel whose
        C(memory.stat) reads scale with dying memory cgroups (on a fixed kernel the probe says
        at most V(warn)).
    type: str
    default: warn
    choices: [warn, critical]
  force:
    description:
      - Drop (and reap) whatever the verdict. The measurements and the verdict are still reported.
    type: bool
    default: false
  settle_seconds:
    description:
      - Seconds to wait after dropping or reaping before measuring again; the kernel releases
        memory cgroups asynchronously. From V(0) to V(300).
    type: float
    default: 1.0
  reaper:
    description:
      - Use of the zombie memory cgroup reaper of Alibaba Cloud Linux kernels
        (C(/sys/kernel/mm/memcg_reaper/)), when the gate is open and the reaper exists.
      - V(before) triggers one round of reaping (writes C(1) to C(reap)), then drops caches.
      - V(instead) triggers one round of reaping and does not drop caches.
      - V(never) leaves the reaper alone.
      - Where the reaper does not exist this is not an error; RV(reaper.available) is false and
        caches are dropped.
    type: str
    default: before
    choices: [before, instead, never]
  reaper_background:
    description:
      - Where the reaper exists, switch on its background thread (write C(1) to
        C(reap_background)) if it is not on yet. That is a change, made once; it does not depend on
        the verdict.
    type: bool
    default: false
  cpu_interval:
    description:
      - Seconds over which the probe samples kubelet CPU before deciding. V(0) (the default here)
        skips sampling, keeping the run cheap; the after-measurement never samples. At most V(60).
    type: float
    default: 0.0
notes:
  - Needs root to write C(/proc/sys/vm/drop_caches).
  - Gate it on measured need, never run it blindly from cron; the module's gate does that.
seealso:
  - module: nodeops.memcg.memcg_probe
  - module: nodeops.memcg.kernel_check
  - name: drop_caches, the gate, its costs and the reaper
    description: What the module does, what it costs and how to read its result.
    link: https://github.com/nodeops/memcg/blob/main/docs/drop_caches.md
'''

EXAMPLES = r'''
- name: Drop reclaimable slab where the probe warns (reaper first on Alibaba kernels)
  nodeops.memcg.drop_caches:
  become: true
  register: dropped

- name: Show what happened
  ansible.builtin.debug:
    msg: "{{ dropped.gate.decision }} dying memcgs changed by {{ dropped.delta.dying | default('n/a') }}"

- name: Drop only on critical nodes, with a lower dying threshold
  nodeops.memcg.drop_caches:
    min_verdict: critical
    thresholds:
      warn_dying: 2000
      critical_dying: 10000
  become: true

- name: Preview the decision without writing anything
  nodeops.memcg.drop_caches:
  check_mode: true
  become: true
  register: preview

- name: On Alibaba Cloud Linux, reap instead of dropping and keep the background reaper on
  nodeops.memcg.drop_caches:
    reaper: instead
    reaper_background: true
  become: true

- name: Drop page cache too, whatever the verdict, waiting longer before measuring again
  nodeops.memcg.drop_caches:
    level: 3
    force: true
    settle_seconds: 5
  become: true
'''

RETURN = r'''
changed:
  description: True when caches were dropped, the reaper ran or background reaping was switched on (in check mode, would be).
  returned: always
  type: bool
  sample: true
dropped:
  description: True when O(level) was written to C(/proc/sys/vm/drop_caches) (always false in check mode).
  returned: always
  type: bool
  sample: true
would_drop:
  description: The decision to drop caches (in check mode, what a real run would do).
  returned: always
  type: bool
  sample: true
level:
  description: The drop_caches level used.
  returned: always
  type: int
  sample: 2
gate:
  description: How the decision was made.
  returned: always
  type: dict
  contains:
    verdict:
      description: The probe's verdict before acting, V(ok), V(warn) or V(critical).
      type: str
      returned: always
      sample: warn
    min_verdict:
      description: The O(min_verdict) applied.
      type: str
      returned: always
      sample: warn
    forced:
      description: True when O(force=true) was given.
      type: bool
      returned: always
      sample: false
    open:
      description: True when the verdict reached O(min_verdict) or O(force=true) was given.
      type: bool
      returned: always
      sample: true
    reasons:
      description: The reasons of the verdict, one sentence per crossed threshold.
      type: list
      elements: str
      returned: always
      sample: ['6210 dying memory cgroups exceed warn_dying (5000).']
    decision:
      description: One sentence saying what was (or in check mode would be) done and why.
      type: str
      returned: always
      sample: 'Verdict warn reaches min_verdict warn: reaped zombie memory cgroups with the memcg reaper, dropped caches (level 2).'
    thresholds:
      description: The thresholds applied (defaults merged with O(thresholds)).
      type: dict
      returned: always
      sample:
        warn_dying: 5000
        warn_dying_ratio: 10
        warn_dying_ratio_min: 1000
        warn_read_ms: 100
        critical_dying: 20000
        critical_read_ms: 1000
        warn_kubelet_system_percent: 50
before:
  description: Figures measured before acting.
  returned: always
  type: dict
  contains:
    memcg:
      description: Memory cgroup counts C(total), C(live), C(dying) (null when not countable).
      type: dict
      returned: always
      sample: {total: 6450, live: 240, dying: 6210}
    slab:
      description: C(slab_kb), C(sreclaimable_kb), C(sunreclaim_kb) from C(/proc/meminfo).
      type: dict
      returned: always
      sample: {slab_kb: 1412332, sreclaimable_kb: 1301220, sunreclaim_kb: 111112}
    dentry:
      description: C(nr_dentry) and C(nr_unused) from C(/proc/sys/fs/dentry-state).
      type: dict
      returned: always
      sample: {nr_dentry: 1152113, nr_unused: 1108811}
    root_read_ms:
      description: Slowest timed read of the root C(memory.stat) in ms; null when not timed (O(stat_reads=0)).
      type: float
      returned: always
      sample: 1.42
    root_read_timed_out:
      description: True when that read did not finish within O(read_timeout); RV(before.root_read_ms) is then the time waited.
      type: bool
      returned: always
      sample: false
    verdict:
      description: The probe's verdict at that moment.
      type: str
      returned: always
      sample: warn
after:
  description:
    - Figures measured O(settle_seconds) after acting; same keys as RV(before).
    - Null when nothing was dropped or reaped (gate closed, check mode).
  returned: always
  type: dict
  sample:
    memcg: {total: 3320, live: 240, dying: 3080}
    slab: {slab_kb: 402100, sreclaimable_kb: 291000, sunreclaim_kb: 111100}
    dentry: {nr_dentry: 41210, nr_unused: 1203}
    root_read_ms: 0.95
    root_read_timed_out: false
    verdict: ok
delta:
  description:
    - RV(after) minus RV(before) (negative means released); null when RV(after) is null.
    - Each value is null when either side is.
  returned: always
  type: dict
  contains:
    dying:
      description: Change of dying memory cgroups.
      type: int
      returned: success
      sample: -3130
    total:
      description: Change of all memory cgroups.
      type: int
      returned: success
      sample: -3130
    slab_kb:
      description: Change of C(Slab) in kB.
      type: int
      returned: success
      sample: -1010232
    sreclaimable_kb:
      description: Change of C(SReclaimable) in kB.
      type: int
      returned: success
      sample: -1010220
    sunreclaim_kb:
      description: Change of C(SUnreclaim) in kB.
      type: int
      returned: success
      sample: -12
    nr_dentry:
      description: Change of allocated dentries.
      type: int
      returned: success
      sample: -1110903
    root_read_ms:
      description: Change of the root C(memory.stat) read time in ms.
      type: float
      returned: success
      sample: -0.47
reaper:
  description: The zombie memory cgroup reaper of Alibaba Cloud Linux kernels.
  returned: always
  type: dict
  contains:
    available:
      description: True when C(<root>/sys/kernel/mm/memcg_reaper/) with its C(reap) file exists.
      type: bool
      returned: always
      sample: false
    path:
      description: Host path of the reaper directory.
      type: str
      returned: always
      sample: /sys/kernel/mm/memcg_reaper
    mode:
      description: The O(reaper) mode applied.
      type: str
      returned: always
      sample: before
    reaped:
      description: True when one round of reaping was triggered (always false in check mode).
      type: bool
      returned: always
      sample: false
    would_reap:
      description: The decision to trigger the reaper (in check mode, what a real run would do).
      type: bool
      returned: always
      sample: false
    background:
      description:
        - C(requested) (O(reaper_background)), and C(reap_background) C(before) and C(after) the run
          (null when unavailable; in check mode C(after) is the value a real run would leave).
      type: dict
      returned: always
      sample: {requested: true, before: 0, after: 1}
    scan_interval:
      description: The reaper's C(scan_interval) (seconds), or null.
      type: int
      returned: always
      sample: 5
    pages_scan:
      description: The reaper's C(pages_scan) (pages per scan), or null.
      type: int
      returned: always
      sample: 1310720
sync:
  description: Whether C(sync) ran before dropping.
  returned: always
  type: dict
  contains:
    requested:
      description: The O(sync) option.
      type: bool
      returned: always
      sample: true
    ran:
      description: True when C(sync) ran.
      type: bool
      returned: always
      sample: true
    note:
      description: Why it ran or not (for example skipped because O(root) is not C(/)).
      type: str
      returned: always
      sample: ran sync before drop_caches
'''

import time
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeops.memcg.plugins.module_utils import mitigation
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.probe import PROBE_OPTIONS


def sync_with(module):
    """A sync function for mitigation.apply(): the sync binary, run as an argument list."""
    def sync():
        binary = module.get_bin_path('sync')
        if not binary:
            raise MemcgError('the sync command was not found; install coreutils or set sync: false')
        rc, out, err = module.run_command([binary])
        if rc != 0:
            raise MemcgError('%s failed with rc %d: %s' % (binary, rc, (err or out).strip()))
    return sync


def main():
    module = AnsibleModule(
        argument_spec=dict(
            PROBE_OPTIONS,
            root=dict(type='path', default='/'),
            level=dict(type='int', default=2, choices=[1, 2, 3]),
            sync=dict(type='bool', default=True),
            min_verdict=dict(type='str', default='warn', choices=['warn', 'critical']),
            force=dict(type='bool', default=False),
            settle_seconds=dict(type='float', default=1.0),
            reaper=dict(type='str', default='before', choices=['before', 'instead', 'never']),
            reaper_background=dict(type='bool', default=False),
            cpu_interval=dict(type='float', default=0.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        state = mitigation.assess(
            root=params['root'],
            level=params['level'],
            min_verdict=params['min_verdict'],
            force=params['force'],
            reaper_mode=params['reaper'],
            reaper_background=params['reaper_background'],
            sync=params['sync'],
            settle_seconds=params['settle_seconds'],
            thresholds=params['thresholds'],
            cpu_interval_s=params['cpu_interval'],
            stat_reads=params['stat_reads'],
            kernel_overrides=params['policy_overrides'],
            kubelet_name=params['kubelet_name'],
            kubelet_pid=params['kubelet_pid'],
            read_timeout_s=params['read_timeout'],
        )
        if not module.check_mode:
            mitigation.apply(state, sync_fn=sync_with(module), sleep_fn=time.sleep)
    except MemcgError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())
    else:
        module.exit_json(**state['result'])


if __name__ == '__main__':
    main()
