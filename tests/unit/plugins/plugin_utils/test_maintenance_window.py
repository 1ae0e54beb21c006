# -*- coding: utf-8 -*-
"""The maintenance window of the rolling upgrade (plugin_utils.maintenance_window): plain inputs, given times.

The filter plugin around it (which reads the clock and raises AnsibleFilterError) is exercised by
tests/integration/test_upgrade_window_webhook.py: importing controller code (ansible.errors) here
would switch module warnings to the controller's display for every later module unit test.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.plugin_utils.maintenance_window import window_state

ALL = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']
WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri']
# 2026-11-27 is a Friday; 2026-03-29 and 2026-10-25 are Berlin's DST changes, 2026-03-08 and
# 2026-11-01 New York's.


def state(now, days, start, end, zone='UTC'):
    return window_state(now, days, start, end, zone)


@pytest.mark.parametrize('now', [
    '2026-11-23T00:00:00Z', '2026-11-27T12:00:00Z', '2026-11-28T23:59:00Z', '2026-11-29T23:59:59.999999Z',
])
def test_the_default_window_is_always_open(now):
    result = state(now, ALL, '00:00', '23:59')
    assert result['open'] is True and result['next_open'] is None
    assert result['window'] == 'every day 00:00-23:59 UTC'


@pytest.mark.parametrize('now, is_open', [
    ('2026-11-27T23:59:59Z', True),    # Friday, the last second of the end minute
    ('2026-11-28T00:00:00Z', False),   # Saturday
    ('2026-11-29T23:59:59Z', False),   # Sunday
    ('2026-11-30T00:00:00Z', True),    # Monday, the first second
])
def test_weekday_boundaries(now, is_open):
    result = state(now, WEEKDAYS, '00:00', '23:59')
    assert result['open'] is is_open
    if not is_open:
        assert result['next_open'] == '2026-11-30T00:00:00+00:00'
        assert result['closes_at'] is None


def test_open_window_says_when_it_closes():
    result = state('2026-11-27T09:15:00Z', ['fri'], '09:00', '17:00')
    assert result['open'] is True
    assert result['closes_at'] == '2026-11-27T17:01:00+00:00'
    assert 'inside the maintenance window fri 09:00-17:00 UTC' in result['reason']


@pytest.mark.parametrize('now, is_open, next_open', [
    ('2026-11-27T21:59:59Z', False, '2026-11-27T22:00:00+00:00'),  # Friday before the start
    ('2026-11-27T22:00:00Z', True, None),                          # Friday 22:00
    ('2026-11-28T03:30:00Z', True, None),                          # Saturday morning: Friday's window
    ('2026-11-28T04:00:59Z', True, None),                          # the end minute is in the window
    ('2026-11-28T04:01:00Z', False, '2026-12-04T22:00:00+00:00'),  # closed until next Friday
    ('2026-11-28T23:00:00Z', False, '2026-12-04T22:00:00+00:00'),  # Saturday night: sat is not listed
    ('2026-11-27T03:00:00Z', False, '2026-11-27T22:00:00+00:00'),  # Friday morning is Thursday's window
])
def test_window_crossing_midnight_belongs_to_the_day_it_starts(now, is_open, next_open):
    result = state(now, ['fri'], '22:00', '04:00')
    assert result['open'] is is_open
    assert result['next_open'] == next_open
    if is_open:
        assert result['closes_at'] == '2026-11-28T04:01:00+00:00'


def test_window_crossing_midnight_every_night():
    assert state('2026-11-27T23:00:00Z', ALL, '22:00', '04:00')['open'] is True    # tonight's
    assert state('2026-11-27T02:00:00Z', ALL, '22:00', '04:00')['open'] is True    # last night's
    closed = state('2026-11-27T12:00:00Z', ALL, '22:00', '04:00')
    assert closed['open'] is False and closed['next_open'] == '2026-11-27T22:00:00+00:00'


def test_start_equal_to_end_is_one_minute():
    assert state('2026-11-27T03:00:30Z', ['fri'], '03:00', '03:00')['open'] is True
    assert state('2026-11-27T03:01:00Z', ['fri'], '03:00', '03:00')['open'] is False


def test_time_zone_shifts_the_window_and_the_day():
    # Friday 23:30 UTC is Saturday 00:30 in Berlin (CET, +01:00): a Saturday window is open there.
    berlin = state('2026-11-27T23:30:00Z', ['sat'], '00:00', '06:00', 'Europe/Berlin')
    assert berlin['open'] is True and berlin['now'] == '2026-11-28T00:30:00+01:00'
    assert berlin['closes_at'] == '2026-11-28T06:01:00+01:00'
    # and closed in UTC, where it is still Friday
    assert state('2026-11-27T23:30:00Z', ['sat'], '00:00', '06:00')['open'] is False
    # 22:00 in Tokyo (+09:00) is 13:00 UTC
    tokyo = state('2026-11-27T12:59:00Z', ['fri'], '22:00', '04:00', 'Asia/Tokyo')
    assert tokyo['open'] is False and tokyo['next_open'] == '2026-11-27T22:00:00+09:00'
    assert 'it is fri 21:59 there' in tokyo['reason']
    assert state('2026-11-27T13:00:00Z', ['fri'], '22:00', '04:00', 'Asia/Tokyo')['open'] is True


def test_half_hour_offset_zone():
    # Kolkata is +05:30: 03:30 UTC is 09:00 there
    assert state('2026-11-27T03:29:59Z', ['fri'], '09:00', '10:00', 'Asia/Kolkata')['open'] is False
    assert state('2026-11-27T03:30:00Z', ['fri'], '09:00', '10:00', 'Asia/Kolkata')['open'] is True


def test_dst_spring_forward_start_in_the_gap_opens_after_it():
    # Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST; a 02:30 start does not exist that night.
    before = state('2026-03-29T00:59:59Z', ['sun'], '02:30', '05:00', 'Europe/Berlin')
    assert before['open'] is False
    assert before['next_open'] == '2026-03-29T03:30:00+02:00'  # the skipped 02:30 CET, i.e. 01:30 UTC
    assert state('2026-03-29T01:30:00Z', ['sun'], '02:30', '05:00', 'Europe/Berlin')['open'] is True
    after = state('2026-03-29T03:00:59Z', ['sun'], '02:30', '05:00', 'Europe/Berlin')  # 05:00:59 CEST
    assert after['open'] is True and after['closes_at'] == '2026-03-29T05:01:00+02:00'
    assert state('2026-03-29T03:01:00Z', ['sun'], '02:30', '05:00', 'Europe/Berlin')['open'] is False


def test_dst_fall_back_night_is_an_hour_longer():
    # Berlin 2026-10-25: 03:00 CEST goes back to 02:00 CET. Saturday 22:00 CEST to Sunday 04:00 CET
    # is seven hours of real time (20:00 to 03:01 UTC).
    args = (['sat'], '22:00', '04:00', 'Europe/Berlin')
    assert state('2026-10-24T19:59:59Z', *args)['open'] is False
    assert state('2026-10-24T20:00:00Z', *args)['open'] is True
    assert state('2026-10-25T00:30:00Z', *args)['now'] == '2026-10-25T02:30:00+02:00'  # first 02:30
    assert state('2026-10-25T01:30:00Z', *args)['now'] == '2026-10-25T02:30:00+01:00'  # second 02:30
    assert state('2026-10-25T01:30:00Z', *args)['open'] is True
    last = state('2026-10-25T03:00:59Z', *args)
    assert last['open'] is True and last['closes_at'] == '2026-10-25T04:01:00+01:00'
    closed = state('2026-10-25T03:01:00Z', *args)
    assert closed['open'] is False and closed['next_open'] == '2026-10-31T22:00:00+01:00'


def test_dst_new_york_next_open_keeps_the_wall_clock():
    # Saturday 2026-03-07 12:00 EST; the Sunday 01:00 window opens before the change (EST), the
    # Monday one after it (EDT), both at 01:00 on the wall.
    result = state('2026-03-07T17:00:00Z', ['sun', 'mon'], '01:00', '02:00', 'America/New_York')
    assert result['next_open'] == '2026-03-08T01:00:00-05:00'
    later = state('2026-03-08T08:00:00Z', ['sun', 'mon'], '01:00', '02:00', 'America/New_York')
    assert later['open'] is False and later['next_open'] == '2026-03-09T01:00:00-04:00'


@pytest.mark.parametrize('days', [['MON', ' Tue '], ('mon', 'tue'), ['Mon', 'tue', 'mon']])
def test_days_are_case_insensitive(days):
    result = state('2026-11-24T12:00:00Z', days, '00:00', '23:59')  # a Tuesday
    assert result['open'] is True and result['window'].startswith('mon,tue ')


@pytest.mark.parametrize('now', [
    datetime.datetime(2026, 11, 27, 22, 30),                                    # naive: UTC
    datetime.datetime(2026, 11, 27, 22, 30, tzinfo=datetime.timezone.utc),
    '2026-11-27T22:30:00', '2026-11-27T22:30:00+00:00', '2026-11-27T23:30:00+01:00', '2026-11-27 22:30:00Z',
])
def test_the_time_given_in_any_iso_form(now):
    assert state(now, ['fri'], '22:00', '22:30')['open'] is True


@pytest.mark.parametrize('days, start, end, zone, message', [
    (['mon', 'mo'], '00:00', '23:59', 'UTC', r"kernel_upgrade_window_days: unknown day 'mo'"),
    (['monday'], '00:00', '23:59', 'UTC', r"unknown day 'monday'"),
    (['mon', 7], '00:00', '23:59', 'UTC', r"unknown day 7"),
    ([], '00:00', '23:59', 'UTC', r'kernel_upgrade_window_days is empty'),
    ('mon', '00:00', '23:59', 'UTC', r"kernel_upgrade_window_days must be a list .* got 'mon'"),
    (ALL, '24:00', '23:59', 'UTC', r"kernel_upgrade_window_start must be a time HH:MM .* got '24:00'"),
    (ALL, '22:60', '23:59', 'UTC', r"kernel_upgrade_window_start .* got '22:60'"),
    (ALL, 'noon', '23:59', 'UTC', r"kernel_upgrade_window_start .* got 'noon'"),
    (ALL, '00:00', '4', 'UTC', r"kernel_upgrade_window_end must be a time HH:MM .* got '4'"),
    (ALL, '00:00', '', 'UTC', r"kernel_upgrade_window_end .* got ''"),
    (ALL, '00:00', 400, 'UTC', r"kernel_upgrade_window_end .* got 400"),
    (ALL, '00:00', '23:59', 'Mars/Olympus_Mons', r"kernel_upgrade_window_timezone: unknown time zone 'Mars/Olympus_Mons'"),
    (ALL, '00:00', '23:59', 'CEST', r"unknown time zone 'CEST'"),
    (ALL, '00:00', '23:59', '../etc/passwd', r"unknown time zone '\.\./etc/passwd'"),
    (ALL, '00:00', '23:59', 'Europe', r"unknown time zone 'Europe'"),
    (ALL, '00:00', '23:59', '', r"kernel_upgrade_window_timezone must be an IANA time zone name .* got ''"),
])
def test_bad_values_are_named(days, start, end, zone, message):
    with pytest.raises(MemcgError, match=message):
        state('2026-11-27T12:00:00Z', days, start, end, zone)


def test_single_digit_hour_is_accepted():
    assert state('2026-11-27T07:30:00Z', ['fri'], '7:00', '8:00')['open'] is True


@pytest.mark.parametrize('now', ['yesterday', '2026-13-01T00:00:00Z', 1764288000])
def test_bad_time_to_evaluate_is_named(now):
    with pytest.raises(MemcgError, match='must be'):
        state(now, ALL, '00:00', '23:59')
