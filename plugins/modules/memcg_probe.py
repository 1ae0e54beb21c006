#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: memcg_probe
short_description: Measure dying memory cgroups, memory.stat read latency and kubelet CPU
version_added: 1.0.0
description:
  - Read-only probe of a Linux node for the dying (zombie) memory cgroup build-up that makes
    C(memory.stat) reads slow and kubelet burn CPU in the kernel.
  - Reports the cgroup layout (v1, v2 or hybrid), live and dying memory cgroup counts, timed
    C(memory.stat) reads of the root and kubepods cgroups, slab and dentry counters, kubelet CPU
    use, RHEL 7 kmem leak signs and the kernel's fix status, and gives a verdict
    (V(ok), V(warn) or V(critical)) with the reasons.
  - Costs are bounded. The memory hierarchy is walked once, each C(memory.stat) is read at most
    O(stat_reads) times and never retried, and kubelet is sampled once over O(cpu_interval).
  - Time is bounded too. Every read that can block (C(memory.stat), kubelet's C(/proc/<pid>/stat),
    the kernel log) has the deadline O(read_timeout); a read past it is reported as timed out
    (RV(read_latency.root.timed_out)), with a verdict, instead of hanging the module.
  - C(/proc/slabinfo) is readable by root only; without root, RV(slabinfo) is null.
  - With O(list_installed) it also lists the installed kernels and the boot default exactly as
    M(nodeops.memcg.kernel_check) does, and with O(textfile_dir) it writes its metrics for the
    node_exporter textfile collector, so one module run measures a node completely (the
    C(nodeops.memcg.detect) role runs nothing else per node).
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
      - Measures the same way. With O(textfile_dir) it reports a change and writes nothing.
  diff_mode:
    support: none
    description: The only file it writes is generated metrics; there is no diff to show.
  platform:
    support: full
    platforms: linux
    description: Reads Linux C(/proc) and cgroup file systems; runs rpm, dpkg-query, grubby and grub-editenv when present.
options:
  cpu_interval:
    description:
      - Seconds over which kubelet CPU use is sampled. V(0) disables sampling; at most V(60).
    type: float
    default: 1.0
  list_installed:
    description:
      - Also list installed kernels and the boot default into RV(installed_kernels) and
        RV(boot_default), the same way and with the same O(root) handling as
        M(nodeops.memcg.kernel_check)'s O(nodeops.memcg.kernel_check#module:list_installed).
    type: bool
    default: false
  textfile_dir:
    description:
      - Absolute path of the node_exporter textfile collector directory. When set, the module
        writes its metrics (docs/metrics.md) to C(nodeops_memcg.prom) in it, atomically (a hidden
        temporary file in the same directory, then a rename), and reports a change.
      - The directory must exist. The path is on the node, not under O(root).
    type: path
seealso:
  - name: Probe fields and verdict rules
    description: What every result field measures, its units and the verdict rules.
    link: https://github.com/nodeops/memcg/blob/main/docs/probe.md
  - module: nodeops.memcg.kernel_check
  - name: Metrics
    description: The textfile metrics, their names and units.
    link: https://github.com/nodeops/memcg/blob/main/docs/metrics.md
'''

EXAMPLES = r'''
- name: Probe the node
  nodeops.memcg.memcg_probe:
  become: true
  register: memcg

- name: Show the verdict
  ansible.builtin.debug:
    msg: "{{ memcg.verdict }}: {{ memcg.reasons | join(' ') }}"

- name: Probe without timing reads or sampling kubelet, with a lower dying threshold
  nodeops.memcg.memcg_probe:
    stat_reads: 0
    cpu_interval: 0
    thresholds:
      warn_dying: 2000
  become: true

- name: Probe the host from a privileged container that mounts it at /host
  nodeops.memcg.memcg_probe:
    root: /host

- name: Measure, list the kernels and refresh the node_exporter metrics in one run
  nodeops.memcg.memcg_probe:
    list_installed: true
    textfile_dir: /var/lib/node_exporter/textfile_collector
  become: true
'''

RETURN = r'''
kernel:
  description: Fix status of the running kernel (from C(<root>/proc/sys/kernel/osrelease)).
  returned: always
  type: dict
  contains:
    release:
      description: The kernel release string.
      type: str
      returned: always
      sample: 3.10.0-1160.el7.x86_64
    stream:
      description: The distribution stream the release belongs to.
      type: str
      returned: always
      sample: el7
    status:
      description: V(severe), V(degraded), V(fixed) or V(unknown).
      type: str
      returned: always
      sample: severe
    reason:
      description: Why the release has that status.
      type: str
      returned: always
      sample: >-
        no RHEL/CentOS 7 kernel (3.10.0) is known to carry the fix: a memory.stat read walks
        every memcg, dying ones included, per stat item and per CPU
    source:
      description: Commit or bug reference behind the status.
      type: str
      returned: always
      sample: upstream a983b5ebee57 (4.16) and 42a300353577 (5.2) are not in 3.10.0
    upgrade_needed:
      description: True when the status is severe or degraded.
      type: bool
      returned: always
      sample: true
    recommendation:
      description: What to upgrade to; empty strings where there is nothing to say.
      type: dict
      returned: always
      sample:
        summary: >-
          install ELRepo kernel-lt (5.4) or kernel-ml from the elrepo-kernel repository,
          or move the node to EL8 (4.18.0-176+)
        package: kernel-lt
        repository: elrepo-kernel
        minimum: "5.4"
cgroup:
  description: The cgroup layout.
  returned: always
  type: dict
  contains:
    layout:
      description: V(v1), V(v2), V(hybrid) (memory on v1 plus a cgroup2 mount) or V(none).
      type: str
      returned: always
      sample: hybrid
    memory_mount:
      description: Host path of the v1 memory hierarchy, or null.
      type: str
      returned: always
      sample: /sys/fs/cgroup/memory
    unified_mount:
      description: Host path of the cgroup2 mount, or null.
      type: str
      returned: always
      sample: /sys/fs/cgroup/unified
memcg:
  description: Memory cgroup counts; values are null when they cannot be counted.
  returned: always
  type: dict
  contains:
    total:
      description: Live plus dying memory cgroups.
      type: int
      returned: always
      sample: 68700
    live:
      description: Memory cgroups with a directory, the root one included.
      type: int
      returned: always
      sample: 240
    dying:
      description: Removed memory cgroups the kernel still keeps.
      type: int
      returned: always
      sample: 68460
    source:
      description:
        - How dying was counted. V(proc_cgroups_minus_live_dirs) (v1, hybrid),
          V(cgroup.stat:nr_dying_subsys_memory) or V(cgroup.stat:nr_dying_descendants) (v2),
          or V(unavailable).
      type: str
      returned: always
      sample: proc_cgroups_minus_live_dirs
read_latency:
  description:
    - Timed reads of C(memory.stat); each of C(root) and C(kubepods) is null when not timed
      (O(stat_reads=0), no such file, no kubepods cgroup), else a dict.
    - On cgroup v2 older kernels have no root C(memory.stat); then C(root) is null.
  returned: always
  type: dict
  contains:
    root:
      description: The root memory cgroup's C(memory.stat).
      type: dict
      returned: always
      sample: {path: /sys/fs/cgroup/memory/memory.stat, reads: 1, ms: [1.42], max_ms: 1.42, slow: false}
      contains:
        path:
          description: Host path of the file.
          type: str
          returned: success
        reads:
          description: Number of reads done.
          type: int
          returned: success
        ms:
          description: Wall time of each read in milliseconds.
          type: list
          elements: float
          returned: success
        max_ms:
          description: The slowest read in milliseconds.
          type: float
          returned: success
        slow:
          description: True when max_ms is over the warn_read_ms threshold.
          type: bool
          returned: success
        timed_out:
          description:
            - True when a read did not finish within O(read_timeout). It was abandoned, the file
              was not read again, RV(read_latency.root.max_ms) counts the time waited and
              RV(read_latency.root.reads) only the reads that finished.
          type: bool
          returned: success
        timeout_s:
          description: The deadline that passed, in seconds.
          type: float
          returned: when timed_out
        waited_ms:
          description: How long the abandoned read was waited for, in milliseconds.
          type: float
          returned: when timed_out
        reader:
          description:
            - The child process that did the abandoned read, killed with SIGKILL at the deadline.
            - C(reaped) false means it was still inside the kernel (a read the kernel does not
              interrupt) 0.5 s later; the kernel ends it when that read returns and init reaps it.
          type: dict
          returned: when timed_out
          sample: {pid: 4242, reaped: true}
    kubepods:
      description:
        - The C(kubepods.slice) (systemd driver) or C(kubepods) (cgroupfs driver) C(memory.stat).
        - Same keys as C(root).
      type: dict
      returned: always
      sample: {path: /sys/fs/cgroup/memory/kubepods.slice/memory.stat, reads: 1, ms: [0.91], max_ms: 0.91, slow: false}
slab:
  description: Slab memory from C(/proc/meminfo), in kB (null when a line is missing).
  returned: always
  type: dict
  contains:
    slab_kb:
      description: C(Slab).
      type: int
      returned: always
      sample: 412332
    sreclaimable_kb:
      description: C(SReclaimable).
      type: int
      returned: always
      sample: 301220
    sunreclaim_kb:
      description: C(SUnreclaim).
      type: int
      returned: always
      sample: 111112
dentry:
  description: Dentry counters from C(/proc/sys/fs/dentry-state).
  returned: always
  type: dict
  contains:
    nr_dentry:
      description: Allocated dentries.
      type: int
      returned: always
      sample: 18271
    nr_unused:
      description: Unused dentries.
      type: int
      returned: always
      sample: 16925
    nr_negative:
      description: Negative dentries (a dummy V(0) on kernels before about 5.0).
      type: int
      returned: always
      sample: 3223
slabinfo:
  description:
    - C(dentry), C(*inode_cache) and C(xfs_inode) caches from C(/proc/slabinfo), by name, each with
      C(active_objs), C(num_objs) and C(objsize) (bytes).
    - Null when C(/proc/slabinfo) is unreadable (it is root only).
  returned: always
  type: dict
  sample:
    dentry: {active_objs: 1152000, num_objs: 1160000, objsize: 192}
    xfs_inode: {active_objs: 1040115, num_objs: 1040587, objsize: 1024}
kubelet:
  description: kubelet CPU use over the sample interval, in percent of one CPU (can exceed 100).
  returned: always
  type: dict
  contains:
    found:
      description: True when the kubelet process exists.
      type: bool
      returned: always
      sample: true
    pid:
      description: The pid looked at, or null when none was found.
      type: int
      returned: always
      sample: 1234
    interval_s:
      description: The requested sample interval in seconds.
      type: float
      returned: always
      sample: 1.0
    cpu_percent:
      description: User plus system CPU; null when not sampled or the process vanished.
      type: float
      returned: always
      sample: 97.0
    user_percent:
      description: User CPU (C(utime)).
      type: float
      returned: always
      sample: 3.0
    system_percent:
      description: Kernel CPU (C(stime)); a high share points at kernel-side C(memory.stat) reads.
      type: float
      returned: always
      sample: 94.0
    vanished:
      description: True when the process exited between the two samples; the percentages are null then.
      type: bool
      returned: always
      sample: false
    timed_out:
      description:
        - True when a read of C(/proc/<pid>/stat) did not finish within O(read_timeout) (the
          process is stuck in the kernel); the percentages are null then and C(timeout_s),
          C(waited_ms) and C(reader) are added as in RV(read_latency.root).
      type: bool
      returned: always
      sample: false
kmem_leak:
  description: Signs of the RHEL 7 (3.10.0 el7) kmem accounting leak.
  returned: always
  type: dict
  contains:
    suspected:
      description:
        - True on an el7 kernel without C(cgroup.memory=nokmem) whose memory cgroup count nears
          65535 or whose kernel log (RV(kernel_log)) shows the SLUB allocation failure.
      type: bool
      returned: always
      sample: false
    signs:
      description: The signs seen, as sentences (empty on other kernels).
      type: list
      elements: str
      returned: always
      sample:
        - kernel 3.10.0-1160.el7.x86_64 is a RHEL 7 3.10.0 kernel with kmem accounting
        - kernel command line lacks cgroup.memory=nokmem
        - memory num_cgroups 65100 is near the 65535 limit (over 60000)
kernel_log:
  description:
    - >-
      The kernel log search for the RHEL 7 kmem leak sign (C(SLUB: Unable to allocate memory on node -1)),
      read from C(<root>/dev/kmsg) without blocking.
  returned: always
  type: dict
  contains:
    source:
      description: V(/dev/kmsg) when it was read, V(unavailable) when it could not be (missing, or not permitted).
      type: str
      returned: always
      sample: /dev/kmsg
    note:
      description: What was read, or why nothing was.
      type: str
      returned: always
      sample: read 1843 records
    records:
      description: Log records read.
      type: int
      returned: always
      sample: 1843
    match_count:
      description: Records showing the sign.
      type: int
      returned: always
      sample: 0
    matched:
      description: The first five of them.
      type: list
      elements: str
      returned: always
      sample: []
    truncated:
      description: True when O(read_timeout) or the 8 MiB cap stopped the reading before the newest record.
      type: bool
      returned: always
      sample: false
read_timeout:
  description: The read deadline applied, in seconds (O(read_timeout) or its default).
  returned: always
  type: float
  sample: 5.0
verdict:
  description: V(ok), V(warn) or V(critical).
  returned: always
  type: str
  sample: critical
reasons:
  description: One sentence per crossed threshold, naming the measured value and the threshold; empty when ok.
  returned: always
  type: list
  elements: str
  sample:
    - >-
      68460 dying memory cgroups exceed critical_dying (20000); on this kernel every
      memory.stat read walks them.
installed_kernels:
  description:
    - Installed kernel packages (rpm or dpkg), as M(nodeops.memcg.kernel_check) returns them;
      empty when O(list_installed=false) or no tool was found.
  returned: always
  type: list
  elements: dict
  contains:
    package:
      description: Package name.
      type: str
      returned: always
      sample: kernel-lt
    version:
      description: Package version as the package manager prints it.
      type: str
      returned: always
      sample: 5.4.225-1.el7.elrepo
    release:
      description: Kernel release the package installs, as C(uname -r) prints it.
      type: str
      returned: always
      sample: 5.4.225-1.el7.elrepo.x86_64
boot_default:
  description:
    - Kernel release of the default boot entry, as M(nodeops.memcg.kernel_check) returns it;
      null when unknown or O(list_installed=false).
  returned: always
  type: str
  sample: 5.4.225-1.el7.elrepo.x86_64
boot_default_kernel:
  description:
    - The classification of RV(boot_default), as M(nodeops.memcg.kernel_check) returns it (the keys of
      RV(kernel)); null when the boot default is unknown or O(list_installed=false).
  returned: always
  type: dict
  sample: {release: 3.10.0-1160.el7.x86_64, stream: el7, status: severe, upgrade_needed: true}
findings:
  description:
    - Findings about the boot default, as M(nodeops.memcg.kernel_check) returns them; empty when there
      are none or O(list_installed=false).
    - Code V(boot_default_unfixed) (severity V(warning)) says the running kernel is not in need of an
      upgrade but the default boot entry is, so the next boot lands on an unfixed kernel.
  returned: always
  type: list
  elements: dict
  contains:
    severity:
      description: V(warning).
      type: str
      returned: always
      sample: warning
    code:
      description: What was found, V(boot_default_unfixed).
      type: str
      returned: always
      sample: boot_default_unfixed
    message:
      description: The finding in one sentence.
      type: str
      returned: always
      sample: "next boot lands on an unfixed kernel: the default boot entry 3.10.0-1160.el7.x86_64 is severe"
textfile:
  description: The metrics textfile; null without O(textfile_dir).
  returned: always
  type: dict
  contains:
    path:
      description: Path of the textfile.
      type: str
      returned: always
      sample: /var/lib/node_exporter/textfile_collector/nodeops_memcg.prom
    written:
      description: True when it was written (false in check mode).
      type: bool
      returned: always
      sample: true
thresholds:
  description: The thresholds applied (defaults merged with O(thresholds)).
  returned: always
  type: dict
  sample:
    warn_dying: 5000
    warn_dying_ratio: 10
    warn_dying_ratio_min: 1000
    warn_read_ms: 100
    critical_dying: 20000
    critical_read_ms: 1000
    warn_kubelet_system_percent: 50
'''

import time
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.kernel_inventory import module_tools, read_inventory
from ansible_collections.nodeops.memcg.plugins.module_utils.kernel_policy import assess_boot_default
from ansible_collections.nodeops.memcg.plugins.module_utils.metrics import render_textfile, textfile_path, write_textfile
from ansible_collections.nodeops.memcg.plugins.module_utils.probe import PROBE_OPTIONS, collect


def probe_node(module):
    """Measure the node and, as asked, list its kernels and write the textfile; the module result."""
    params = module.params
    # Checked first: a bad directory fails before anything is measured or written.
    path = textfile_path(params['textfile_dir']) if params['textfile_dir'] else None
    result = collect(
        root=params['root'],
        kubelet_name=params['kubelet_name'],
        kubelet_pid=params['kubelet_pid'],
        cpu_interval_s=params['cpu_interval'],
        stat_reads=params['stat_reads'],
        thresholds=params['thresholds'],
        kernel_overrides=params['policy_overrides'],
        read_timeout_s=params['read_timeout'],
    )
    result.update(installed_kernels=[], boot_default=None, boot_default_kernel=None, findings=[],
                  textfile=None, changed=False)
    if params['list_installed']:
        result.update(read_inventory(params['root'], *module_tools(module)))
        result.update(assess_boot_default(result['kernel'], result['boot_default'], params['policy_overrides']))
    if path:
        # The content carries the probe's timestamp, so every run rewrites it.
        result['changed'] = True
        result['textfile'] = {'path': path, 'written': not module.check_mode}
        if not module.check_mode:
            write_textfile(path, render_textfile(result, time.time()))
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            PROBE_OPTIONS,
            root=dict(type='path', default='/'),
            cpu_interval=dict(type='float', default=1.0),
            list_installed=dict(type='bool', default=False),
            textfile_dir=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    try:
        result = probe_node(module)
    except MemcgError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())
    else:
        module.exit_json(**result)


if __name__ == '__main__':
    main()
