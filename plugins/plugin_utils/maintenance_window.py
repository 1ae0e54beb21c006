# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance windows of the rolling kernel upgrade (kured's reboot window); pure, controller side.

A window is a set of weekdays, a start and an end wall-clock time ("HH:MM") and an IANA time zone.
The end minute is part of the window: 22:00-04:00 is open from 22:00:00 to 04:00:59 local time,
00:00-23:59 all day. When the end is before the start the window crosses midnight, and the day
named is the day the window starts (fri 22:00-04:00 is open from Friday 22:00 to Saturday 04:00).
Wall-clock times follow daylight saving time: a start the clock skips (02:30 on the night the
clocks go forward) opens the window at the first moment after the gap, a time that happens twice
(the night they go back) counts at its first occurrence.

There is no clock in here: the caller passes the time to evaluate (the filter plugin reads it).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import re

try:
    import zoneinfo
except ImportError:  # Python < 3.9; the controller of every supported ansible-core has it
    zoneinfo = None

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

DAYS = ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')
_TIME = re.compile(r'^\s*([01]?\d|2[0-3]):([0-5]\d)\s*$')
_MINUTE = datetime.timedelta(minutes=1)
_UTC = datetime.timezone.utc


def parse_days(days):
    """Weekday numbers (Monday 0) from names mon..sun, case-insensitive; MemcgError naming a bad one."""
    if isinstance(days, str) or not isinstance(days, (list, tuple)):
        raise MemcgError('kernel_upgrade_window_days must be a list of days (mon, tue, wed, thu, fri, '
                         'sat, sun), got %r' % (days,))
    if not days:
        raise MemcgError('kernel_upgrade_window_days is empty: the window would never open '
                         '(list the days, mon to sun)')
    numbers = set()
    for day in days:
        name = str(day).strip().lower()
        if name not in DAYS:
            raise MemcgError('kernel_upgrade_window_days: unknown day %r (use mon, tue, wed, thu, fri, sat, sun)'
                             % (day,))
        numbers.add(DAYS.index(name))
    return numbers


def parse_time(value, name):
    """(hour, minute) from "HH:MM"; MemcgError naming the variable and the value otherwise."""
    match = _TIME.match(value) if isinstance(value, str) else None
    if not match:
        raise MemcgError('%s must be a time HH:MM from 00:00 to 23:59, got %r' % (name, value))
    return int(match.group(1)), int(match.group(2))


def parse_zone(name):
    """The ZoneInfo of an IANA time zone name; MemcgError naming an unknown one."""
    if zoneinfo is None:
        raise MemcgError('maintenance windows need Python 3.9 or later on the controller (zoneinfo)')
    if not isinstance(name, str) or not name.strip():
        raise MemcgError('kernel_upgrade_window_timezone must be an IANA time zone name such as UTC or '
                         'Europe/Berlin, got %r' % (name,))
    try:
        return zoneinfo.ZoneInfo(name.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    raise MemcgError('kernel_upgrade_window_timezone: unknown time zone %r (an IANA name such as UTC '
                     'or Europe/Berlin)' % (name,))


def parse_now(now):
    """An aware UTC datetime from a datetime (naive: UTC) or an ISO 8601 string."""
    if isinstance(now, str):
        text = now.strip()
        if text.endswith(('Z', 'z')):
            text = text[:-1] + '+00:00'
        try:
            parsed = datetime.datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise MemcgError('the time to evaluate the maintenance window at must be ISO 8601, got %r' % (now,))
        now = parsed
    if not isinstance(now, datetime.datetime):
        raise MemcgError('the time to evaluate the maintenance window at must be a datetime or ISO 8601, '
                         'got %r' % (now,))
    if now.tzinfo is None or now.utcoffset() is None:
        now = now.replace(tzinfo=_UTC)
    return now.astimezone(_UTC)


def describe(days, start, end, zone_name):
    """The window in one phrase, e.g. "mon,tue 22:00-04:00 Europe/Berlin" ("every day" for all seven)."""
    numbers = parse_days(days)
    names = 'every day' if len(numbers) == 7 else ','.join(DAYS[number] for number in sorted(numbers))
    return '%s %02d:%02d-%02d:%02d %s' % ((names,) + parse_time(start, 'kernel_upgrade_window_start')
                                          + parse_time(end, 'kernel_upgrade_window_end') + (zone_name,))


def _wall(day, hour, minute, zone):
    """The UTC instant of a wall-clock time on a local date (a skipped time maps past the gap)."""
    local = datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    return local.astimezone(_UTC)


def _window_on(day, start, end, zone):
    """(opens, closes) in UTC of the window that starts on the local date day; closes is exclusive."""
    end_day = day + datetime.timedelta(days=1) if end < start else day
    opens = _wall(day, start[0], start[1], zone)
    # the end minute is in the window: it closes when the minute after it begins
    closes = _wall(end_day, end[0], end[1], zone) + _MINUTE
    return opens, closes


def _iso(instant, zone):
    return instant.astimezone(zone).isoformat()


def window_state(now, days, start, end, zone_name):
    """Is the maintenance window open at now? Pure: now is given (aware, naive UTC, or ISO 8601).

    Returns {'open', 'reason', 'next_open', 'closes_at', 'now', 'window'}: next_open (ISO 8601 in the
    window's time zone) is the next opening when closed, None when open; closes_at is the end of the
    open window, None when closed. Raises MemcgError naming a bad day, time or time zone.
    """
    numbers = parse_days(days)
    start_hm = parse_time(start, 'kernel_upgrade_window_start')
    end_hm = parse_time(end, 'kernel_upgrade_window_end')
    zone = parse_zone(zone_name)
    now = parse_now(now)
    window = describe(days, start, end, zone_name.strip())
    today = now.astimezone(zone).date()

    # A window that started yesterday may still be open (crossing midnight), one that starts today may be.
    for offset in (-1, 0):
        day = today + datetime.timedelta(days=offset)
        if day.weekday() not in numbers:
            continue
        opens, closes = _window_on(day, start_hm, end_hm, zone)
        if opens <= now < closes:
            return {
                'open': True, 'window': window, 'now': _iso(now, zone),
                'next_open': None, 'closes_at': _iso(closes, zone),
                'reason': 'inside the maintenance window %s (opened %s, closes %s)'
                          % (window, _iso(opens, zone), _iso(closes, zone)),
            }

    next_open = None
    for offset in range(0, 8):
        day = today + datetime.timedelta(days=offset)
        if day.weekday() not in numbers:
            continue
        opens = _window_on(day, start_hm, end_hm, zone)[0]
        if opens > now:
            next_open = opens
            break
    return {
        'open': False, 'window': window, 'now': _iso(now, zone),
        'next_open': _iso(next_open, zone), 'closes_at': None,
        'reason': 'outside the maintenance window %s: it is %s %s there; the window next opens %s'
                  % (window, DAYS[now.astimezone(zone).weekday()], now.astimezone(zone).strftime('%H:%M'),
                     _iso(next_open, zone)),
    }
