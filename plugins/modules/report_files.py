#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: report_files
short_description: Write report files on the controller, in-process
version_added: 1.0.0
description:
  - Writes text files into a directory on the controller (creating it), each through a temporary
    file and a rename, from the action plugin itself (no module run, no connection).
  - The roles write their fleet reports with it once per play. Two reports written with
    M(ansible.builtin.file) and M(ansible.builtin.copy) cost five module runs (a stat before each
    copy), about as much as measuring five more nodes (docs/benchmarks.md).
  - The files are outputs of the run, not managed state, so it never reports a change.
author:
  - nodeops.memcg contributors (@nodeops)
attributes:
  action:
    support: full
    description: Runs on the controller only.
  check_mode:
    support: full
    description: Check mode writes nothing and returns the paths it would write.
  diff_mode:
    support: none
    description: Reports are regenerated every run; there is no diff to show.
  platform:
    support: full
    platforms: posix
    description: The controller.
options:
  dest:
    description: Absolute path of the directory on the controller; created (mode 0755) when missing.
    type: path
    required: true
  files:
    description: File name (no directory part) to text content.
    type: dict
    required: true
  mode:
    description: Permissions of the files.
    type: str
    default: '0644'
  unchanged_since:
    description:
      - Unix time at which this run started. A file to be written that was modified after it was
        written by another run meanwhile; it is left as it is, and every file of this call is written
        with O(clash_suffix) before its extension instead (RV(clash) lists the files kept).
    type: float
  clash_suffix:
    description: Inserted before the extension of each file name on a clash; required with O(unchanged_since).
    type: str
'''

EXAMPLES = r'''
- name: Write detect.json and detect.md on the controller
  nodeops.memcg.report_files:
    dest: /var/tmp/nodeops-memcg-report
    files:
      detect.json: "{{ detect_fleet_report | ansible.builtin.to_nice_json }}\n"
      detect.md: "{{ detect_fleet_report | nodeops.memcg.detect_markdown }}"
  run_once: true
'''

RETURN = r'''
paths:
  description: The files written (in check mode, the files that would be written), sorted.
  returned: always
  type: list
  elements: str
  sample: [/var/tmp/nodeops-memcg-report/detect.json, /var/tmp/nodeops-memcg-report/detect.md]
clash:
  description: The files another run wrote after O(unchanged_since), left as they are; empty without a clash.
  returned: always
  type: list
  elements: str
  sample: [/var/tmp/nodeops-memcg-report/detect.json]
'''
