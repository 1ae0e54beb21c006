#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: kernel_check
short_description: Tell whether a kernel reads memory.stat slowly with dying memory cgroups
version_added: 1.0.0
description:
  - Classifies the running kernel (or O(release)) against the collection's kernel policy table
    as V(severe), V(degraded), V(fixed) or V(unknown) for slow C(memory.stat) reads caused by
    dying memory cgroups, and says which kernel to upgrade to.
  - Versions are compared with the distribution's own ordering (rpm, dpkg) or by upstream
    C(major.minor), never as strings.
  - Lists the installed kernels (rpm or dpkg) and the boot default (grubby or the GRUB
    environment block) where those tools exist; a missing tool is not an error.
  - Classifies the boot default too. When the running kernel is fixed but the default entry is
    not, the next boot lands on an unfixed kernel; RV(findings) carries that as a warning.
  - Read-only.
author:
  - nodeops.memcg contributors (@nodeops)
extends_documentation_fragment:
  - nodeops.memcg.root
  - nodeops.memcg.policy_overrides
attributes:
  check_mode:
    support: full
    description: The module never changes anything; check mode returns the same result.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  platform:
    support: full
    platforms: linux
    description: Reads C(/proc) and runs rpm, dpkg-query, grubby and grub-editenv when present.
options:
  release:
    description:
      - Kernel release to classify, as C(uname -r) prints it, instead of the running kernel
        read from C(<root>/proc/sys/kernel/osrelease).
      - An empty value is an error (it never falls back to the running kernel).
    type: str
  list_installed:
    description:
      - List installed kernels and the boot default.
      - With O(root) other than V(/), rpm runs with C(--root), dpkg-query with C(--admindir)
        under it and the GRUB environment block is read under it; grubby is not run.
    type: bool
    default: true
notes:
  - Installed kernels come from C(rpm -q kernel kernel-lt kernel-ml kernel-uek) and
    C(dpkg-query -W 'linux-image-*') (installed packages only); the boot default from
    C(grubby --default-kernel), else C(saved_entry) of C(/boot/grub/grubenv) or
    C(/boot/grub2/grubenv).
seealso:
  - name: Kernel policy table
    description: The streams, status rules, sources and how to override them.
    link: https://github.com/nodeops/memcg/blob/main/docs/kernel-policy.md
'''

EXAMPLES = r'''
- name: Check the running kernel
  nodeops.memcg.kernel_check:
  register: kernel

- name: Fail when the kernel needs an upgrade
  ansible.builtin.assert:
    that: not kernel.upgrade_needed
    fail_msg: "{{ kernel.release }} is {{ kernel.status }}: {{ kernel.recommendation.summary }}"

- name: Classify a release without touching the host
  nodeops.memcg.kernel_check:
    release: 4.18.0-147.5.1.el8_1.x86_64
    list_installed: false

- name: Trust a vendor backport and require 5.15 for the upstream stream
  nodeops.memcg.kernel_check:
    policy_overrides:
      - match: '^4\.18\.0-147\.5\.1\.el8_1'
        status: fixed
        reason: vendor backport of the memcg statistics fix
      - match: '^\d+\.\d+'
        stream: upstream
        degraded_from: '4.16'
        fixed_from: '5.15'

- name: Check the host from a privileged container that mounts it at /host
  nodeops.memcg.kernel_check:
    root: /host
'''

RETURN = r'''
kernel:
  description: The classification of the kernel; the same keys are also returned at top level.
  returned: always
  type: dict
  sample:
    release: 4.19.0-26-amd64
    stream: debian
    status: degraded
    reason: 4.16-5.1 no longer multiplies by CPUs, but a memory.stat read still walks every memcg, dying ones included
    source: upstream 42a300353577 (5.2, series from 205b20cc5a99); a983b5ebee57 (4.16); 2d146aa3aa84 (5.13, rstat)
    upgrade_needed: true
    recommendation:
      summary: on Debian 10 (buster) install linux-image-amd64 from buster-backports (5.10), or upgrade to Debian 11+
      package: linux-image-amd64
      repository: buster-backports
      minimum: '5.10'
release:
  description: The kernel release classified (O(release) or the running one).
  returned: always
  type: str
  sample: 3.10.0-1160.el7.x86_64
stream:
  description:
    - The policy stream the release belongs to, for example V(el7), V(el8), V(elrepo),
      V(ubuntu), V(debian), V(amzn2), V(uek), V(alinux), V(upstream); V(unknown) when no
      entry matches.
  returned: always
  type: str
  sample: el7
status:
  description: V(severe), V(degraded), V(fixed) or V(unknown).
  returned: always
  type: str
  sample: severe
reason:
  description: Why the release has that status.
  returned: always
  type: str
  sample: "no RHEL/CentOS 7 kernel (3.10.0) is known to carry the fix: a memory.stat read walks every memcg, dying ones included, per stat item and per CPU"
source:
  description: Commit or bug reference behind the status; empty when unknown.
  returned: always
  type: str
  sample: upstream a983b5ebee57 (4.16) and 42a300353577 (5.2) are not in 3.10.0
upgrade_needed:
  description: True when RV(status) is V(severe) or V(degraded).
  returned: always
  type: bool
  sample: true
recommendation:
  description: What to upgrade to when RV(upgrade_needed); every value is an empty string otherwise.
  returned: always
  type: dict
  contains:
    summary:
      description: The upgrade path in one sentence.
      type: str
      returned: always
      sample: install ELRepo kernel-lt (5.4) or kernel-ml from the elrepo-kernel repository, or move the node to EL8 (4.18.0-176+)
    package:
      description: Package to install.
      type: str
      returned: always
      sample: kernel-lt
    repository:
      description: Repository that provides it.
      type: str
      returned: always
      sample: elrepo-kernel
    minimum:
      description: Minimum kernel version to install.
      type: str
      returned: always
      sample: '5.4'
installed_kernels:
  description: Installed kernel packages; empty when O(list_installed=false) or no tool was found.
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
      description: Package version as the package manager prints it (rpm C(VERSION-RELEASE), dpkg C(Version)).
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
    - Kernel release of the default boot entry; the raw GRUB C(saved_entry) when it names no
      release (a menu index such as V(0)); null when unknown or O(list_installed=false).
  returned: always
  type: str
  sample: 5.4.225-1.el7.elrepo.x86_64
boot_default_kernel:
  description:
    - The classification of RV(boot_default), with the keys of RV(kernel); null when the boot default
      is unknown or O(list_installed=false).
  returned: always
  type: dict
  sample: {release: 3.10.0-1160.el7.x86_64, stream: el7, status: severe, upgrade_needed: true}
findings:
  description:
    - Findings about the boot default; empty when there are none or O(list_installed=false).
    - RV(findings[].code) V(boot_default_unfixed) (severity V(warning)) says the running kernel is not
      in need of an upgrade but the default boot entry is, so the next boot lands on an unfixed kernel.
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
      sample: >-
        next boot lands on an unfixed kernel: the default boot entry 3.10.0-1160.el7.x86_64 is severe
        while the running 5.4.225-1.el7.elrepo.x86_64 is fixed
'''

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.kernel_inventory import module_tools, read_inventory
from ansible_collections.nodeops.memcg.plugins.module_utils.kernel_policy import assess_boot_default, classify, validate_policy
from ansible_collections.nodeops.memcg.plugins.module_utils.procfs import read_osrelease


def check_kernel(module):
    params = module.params
    for key in ('release', 'root'):  # left out they mean the running kernel and '/'; empty is a mistake
        if params[key] is not None and not params[key].strip():
            raise MemcgError('%s must not be empty, got %r; leave it out for the default' % (key, params[key]))
    validate_policy(list(params['policy_overrides'] or []), 'policy_overrides')
    root = params['root']
    kernel = classify(params['release'] or read_osrelease(root), params['policy_overrides'])
    result = dict(kernel, changed=False, kernel=kernel, installed_kernels=[], boot_default=None,
                  boot_default_kernel=None, findings=[])
    if params['list_installed']:
        result.update(read_inventory(root, *module_tools(module)))
        result.update(assess_boot_default(kernel, result['boot_default'], params['policy_overrides']))
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            release=dict(type='str'),
            policy_overrides=dict(type='list', elements='dict'),
            root=dict(type='path', default='/'),
            list_installed=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    try:
        module.exit_json(**check_kernel(module))
    except MemcgError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())


if __name__ == '__main__':
    main()
