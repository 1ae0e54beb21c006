# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter maintenance_window: is the rolling upgrade's maintenance window open (plugin_utils)?"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: maintenance_window
version_added: 1.0.0
author: nodeops.memcg contributors (@nodeops)
short_description: Is a maintenance window (weekdays, HH:MM-HH:MM, time zone) open at a given time
description:
  - Evaluates a maintenance window the way kured's reboot window works, for the rolling kernel upgrade
    (C(kernel_upgrade_window_*), docs/kernel-upgrade.md).
  - The end minute is part of the window (C(23:59) means until midnight). When the end is before the
    start the window crosses midnight, and the days name the day the window starts.
  - Times are wall-clock times in O(timezone) and follow its daylight saving time changes.
  - Fails naming the value when a day, a time or the time zone is not valid.
positional: days, start, end, timezone
options:
  _input:
    description:
      - The time to evaluate at, ISO 8601 (a time without an offset is UTC).
      - V(null) (C(none)) evaluates at the controller's current time.
    type: raw
    required: true
  days:
    description: Days the window starts on, C(mon) to C(sun), case-insensitive.
    type: list
    elements: str
    required: true
  start:
    description: Start of the window, C(HH:MM).
    type: str
    required: true
  end:
    description: Last minute of the window, C(HH:MM); before O(start) the window crosses midnight.
    type: str
    required: true
  timezone:
    description: IANA time zone name of the window, for example C(UTC) or C(Europe/Berlin).
    type: str
    default: UTC
'''

EXAMPLES = r'''
- name: Refuse to start outside Saturday night
  ansible.builtin.assert:
    that: __window.open
    fail_msg: "{{ __window.reason }}"
  vars:
    __window: "{{ none | nodeops.memcg.maintenance_window(['sat'], '22:00', '04:00', 'Europe/Berlin') }}"

- name: Evaluate at a given time
  ansible.builtin.debug:
    msg: "{{ '2026-03-29T01:30:00Z' | nodeops.memcg.maintenance_window(['sun'], '02:30', '05:00', 'Europe/Berlin') }}"
'''

RETURN = r'''
_value:
  description: The window's state at that time.
  type: dict
  contains:
    open:
      description: Whether the window is open.
      type: bool
    reason:
      description: One line naming the window and, when closed, the local time and when it next opens.
      type: str
    next_open:
      description: When the window next opens (ISO 8601 in the window's time zone); null when open.
      type: str
    closes_at:
      description: When the open window closes (ISO 8601 in the window's time zone); null when closed.
      type: str
    now:
      description: The time evaluated, ISO 8601 in the window's time zone.
      type: str
    window:
      description: The window in one phrase, for example C(sat 22:00-04:00 Europe/Berlin).
      type: str
'''

import datetime

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.plugin_utils.maintenance_window import window_state


def maintenance_window(now, days, start, end, timezone='UTC'):
    """The window's state at now (None: the controller's clock, read here and only here)."""
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    try:
        return window_state(now, days, start, end, timezone)
    except MemcgError as error:
        raise AnsibleFilterError(str(error))


class FilterModule(object):
    def filters(self):
        return {'maintenance_window': maintenance_window}
