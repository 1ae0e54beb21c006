# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes times (metav1.Time, MicroTime: RFC 3339) to and from epoch seconds."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import datetime
import re

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

_TIME = re.compile(r'^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$')


def parse_time(text):
    """RFC 3339 (Kubernetes Time or MicroTime) to epoch seconds; None for None or ''."""
    if not text:
        return None
    match = _TIME.match(text)
    if not match:
        raise MemcgError('not an RFC 3339 time: %r' % (text,))
    year, month, day, hour, minute, second = [int(g) for g in match.groups()[:6]]
    fraction = float('0.' + match.group(7)) if match.group(7) else 0.0
    epoch = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) + fraction
    zone = match.group(8)
    if zone != 'Z':
        sign = 1 if zone[0] == '+' else -1
        epoch -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return epoch


def format_time(epoch):
    """Epoch seconds to a Kubernetes MicroTime string (UTC, microseconds)."""
    stamp = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=epoch)
    return stamp.strftime('%Y-%m-%dT%H:%M:%S.%fZ')
