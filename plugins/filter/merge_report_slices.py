# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter merge_report_slices: one fleet report from the slice reports of a sliced job (plugin_utils)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: merge_report_slices
version_added: 1.0.0
author: nodeops.memcg contributors (@nodeops)
short_description: Merge the slice reports of a sliced detect or mitigate run into one fleet report
description:
  - AWX job slicing runs the detect and mitigate job templates as several jobs, each on a part of the
    inventory; each writes the report of its part with a C(slice) key (docs/awx.md). This filter makes
    the fleet report of the whole run from them, in the schema of an unsliced report (docs/report.md,
    docs/mitigate.md) plus C(slices), the slices merged.
  - Every host of O(hosts) must be in exactly one slice report. Fails naming the slice given twice,
    the host two slices report, the hosts no slice reports, or the hosts a slice reports that
    O(hosts) does not list.
  - The summary is counted again from the rows.
positional: kind, hosts, generated_at
options:
  _input:
    description: The slice reports, in any order.
    type: list
    elements: dict
    required: true
  kind:
    description: Which report the slices are.
    type: str
    choices: [detect, mitigate]
    required: true
  hosts:
    description: The hosts the whole run covers, for example C(ansible_play_hosts_all) of a play over the same hosts.
    type: list
    elements: str
    required: true
  generated_at:
    description: Timestamp written into the merged report (ISO 8601).
    type: str
    required: true
'''

EXAMPLES = r'''
- name: Merge the detect slices that AWX handed over as extra vars (detect_slice_<job id>)
  ansible.builtin.set_fact:
    fleet: >-
      {{ query('ansible.builtin.vars', *query('ansible.builtin.varnames', '^detect_slice_'))
         | nodeops.memcg.merge_report_slices('detect', ansible_play_hosts_all, now(utc=true).isoformat()) }}
'''

RETURN = r'''
_value:
  description:
    - The fleet report (C(schema_version), C(generated_at), C(summary), C(nodes)) with C(slices), a list
      of C(name), C(hosts) (how many) and C(generated_at) per slice, sorted by name.
  type: dict
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.plugin_utils.report_slices import merge_slices


def merge_report_slices(partials, kind, hosts, generated_at):
    """The fleet report of a sliced run; AnsibleFilterError naming what does not add up."""
    try:
        return merge_slices(kind, partials, hosts, generated_at)
    except MemcgError as error:
        raise AnsibleFilterError(str(error))


class FilterModule(object):
    def filters(self):
        return {'merge_report_slices': merge_report_slices}
