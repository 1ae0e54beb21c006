# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # The options of every module that runs the probe (memcg_probe, drop_caches): how kubelet is
    # found, how memory.stat is timed, the verdict thresholds and the read deadline. The argument
    # spec is module_utils/probe.py PROBE_OPTIONS (with policy_overrides, nodeops.memcg.policy_overrides).
    DOCUMENTATION = r'''
options:
  kubelet_name:
    description:
      - Process name (C(/proc/<pid>/comm)) of kubelet, looked up when O(kubelet_pid) is not given.
      - The lowest matching pid is sampled.
    type: str
    default: kubelet
  kubelet_pid:
    description:
      - Pid of kubelet; skips the lookup by name.
    type: int
  stat_reads:
    description:
      - How many times each C(memory.stat) is read and timed in one measurement
        (M(nodeops.memcg.drop_caches) measures before and again after). V(0) disables timing.
      - On a sick node every read burns kernel CPU, hence the small cap.
    type: int
    default: 1
    choices: [0, 1, 2, 3, 4, 5]
  thresholds:
    description:
      - Thresholds for the verdict; keys left out keep their defaults.
      - Values must not be negative and a warn threshold must not exceed its critical one.
    type: dict
    suboptions:
      warn_dying:
        description: Warn when dying memory cgroups exceed this count. Default V(5000).
        type: int
      warn_dying_ratio:
        description: Warn when dying memory cgroups exceed this many times the live ones. Default V(10).
        type: float
      warn_dying_ratio_min:
        description: The ratio rule applies only from this many dying memory cgroups up. Default V(1000).
        type: int
      warn_read_ms:
        description: Warn when a C(memory.stat) read takes longer than this (ms). Default V(100).
        type: float
      critical_dying:
        description:
          - Critical when dying memory cgroups exceed this count and the kernel is not fixed
            (warn on a fixed kernel). Default V(20000).
        type: int
      critical_read_ms:
        description:
          - Critical when a C(memory.stat) read takes longer than this (ms) and the kernel is
            not fixed (warn on a fixed kernel). Default V(1000).
        type: float
      warn_kubelet_system_percent:
        description:
          - Warn when kubelet spends more than this percent of one CPU in the kernel. Default V(50).
        type: float
  read_timeout:
    description:
      - Deadline in seconds of each C(memory.stat) read, of each C(/proc/<pid>/stat) read of
        kubelet and of the kernel log search. A read past it is abandoned and reported as a
        measurement (C(timed_out), the time waited, a critical verdict on a kernel that is not
        fixed), not as an error.
      - Each timed read runs in a child process that the module kills and reaps at the deadline,
        so nothing outlives the module; see the probe documentation for a read stuck in the kernel.
      - Left out, O(thresholds.critical_read_ms) plus 4 seconds (V(5) with the defaults). Must be
        over O(thresholds.critical_read_ms) (in seconds) and at most V(600).
    type: float
'''
