# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # The kernel policy overrides of every module that classifies the kernel (kernel_policy.classify).
    DOCUMENTATION = r'''
options:
  policy_overrides:
    description:
      - Policy entries checked before the built-in table; the first entry whose C(match)
        regular expression is found in the release wins.
      - "Keys: C(match) (required), C(status), C(stream), C(reason), C(source), C(recommendation)
        (C(summary), C(package), C(repository), C(minimum)), and the thresholds C(degraded_from),
        C(fixed_from) compared with C(ordering) (V(upstream), V(rpm) or V(dpkg)) against the
        version that C(version_pattern) extracts."
      - Quote threshold versions; YAML reads an unquoted V(5.10) as V(5.1).
      - An invalid entry fails the module with a message naming C(policy_overrides[index]) and
        the bad value.
      - See C(docs/kernel-policy.md) for the built-in table.
    type: list
    elements: dict
'''
