# -*- coding: utf-8 -*-
"""Slice reports merged into one fleet report (plugin_utils.report_slices): plain report documents.

The filter plugin around it and the slices as AWX cuts them run in tests/integration/test_awx_runner.py
(importing controller code here would switch module warnings to the controller's display).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nodeops.memcg.plugins.plugin_utils import report
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.plugin_utils.report_slices import merge_slices

AT = '2026-12-02T02:00:00Z'


def detect_row(host, verdict='ok', upgrade_needed=False):
    probe = {'verdict': verdict, 'reasons': [], 'memcg': {'total': 10, 'live': 5, 'dying': 5},
             'kernel': {'release': '5.4.0', 'stream': 'upstream', 'status': 'degraded' if upgrade_needed else 'fixed',
                        'upgrade_needed': upgrade_needed}}
    return report.detect_node_row(host, probe)


def detect_slice(name, rows):
    """A slice's report as the detect role writes it: the report of its hosts plus `slice`."""
    return dict(report.detect_report(rows, AT), slice={'name': name, 'hosts': len(rows)})


def fleet_rows():
    return [detect_row('n1', 'warn', upgrade_needed=True), detect_row('n2'), detect_row('n3', 'critical'),
            report.detect_node_row('n4', {'unreachable': True, 'msg': 'ssh: no route'}), detect_row('n5')]


def test_merge_equals_the_unsliced_report_with_the_slices_listed():
    rows = fleet_rows()
    # AWX's cut of 5 hosts into 3 slices: sorted by name, then every third from the slice's offset
    partials = [detect_slice('103', rows[2::3]), detect_slice('101', rows[0::3]), detect_slice('102', rows[1::3])]
    merged = merge_slices('detect', partials, ['n5', 'n4', 'n3', 'n2', 'n1'], 'later')
    unsliced = report.detect_report(rows, 'later')
    assert merged.pop('slices') == [{'name': '101', 'hosts': 2, 'generated_at': AT},
                                    {'name': '102', 'hosts': 2, 'generated_at': AT},
                                    {'name': '103', 'hosts': 1, 'generated_at': AT}]
    assert merged == unsliced
    assert merged['summary'] == {'hosts': 5, 'probed': 4, 'unreachable': 1, 'failed': 0, 'ok': 2, 'warn': 1,
                                 'critical': 1, 'kernels_to_upgrade': 1}
    assert [row['host'] for row in merged['nodes']] == ['n1', 'n2', 'n3', 'n4', 'n5']


def test_a_slice_without_hosts_merges():
    rows = fleet_rows()
    merged = merge_slices('detect', [detect_slice('1', rows), detect_slice('2', [])], [r['host'] for r in rows], AT)
    assert merged['summary']['hosts'] == 5
    assert [entry['hosts'] for entry in merged['slices']] == [5, 0]


def test_a_slice_given_twice_is_named():
    rows = fleet_rows()
    with pytest.raises(MemcgError, match='detect slice 7 is given twice'):
        merge_slices('detect', [detect_slice('7', rows[:2]), detect_slice('7', rows[2:])], ['n1'], AT)


def test_a_host_in_two_slices_is_named_with_both():
    rows = fleet_rows()
    with pytest.raises(MemcgError, match='host n2 is in detect slices 1 and 2: the slices overlap'):
        merge_slices('detect', [detect_slice('1', rows[:2]), detect_slice('2', rows[1:])], ['n1'], AT)


def test_a_missing_slice_names_the_hosts_nobody_reported():
    rows = fleet_rows()
    hosts = [r['host'] for r in rows]
    with pytest.raises(MemcgError) as error:
        merge_slices('detect', [detect_slice('101', rows[0::2])], hosts, AT)
    assert 'no detect slice report covers 2 of 5 hosts: n2, n4 (slices merged: 101)' in str(error.value)


def test_many_missing_hosts_are_listed_up_to_twenty():
    with pytest.raises(MemcgError, match=r'covers 25 of 26 hosts: h00, h01, .*h19 and 5 more'):
        merge_slices('detect', [detect_slice('1', [detect_row('x')])], ['x'] + ['h%02d' % i for i in range(25)], AT)


def test_hosts_outside_the_run_are_named_with_their_slice():
    rows = fleet_rows()
    with pytest.raises(MemcgError, match=r'detect slices report hosts this run does not cover: n4, n5 \(in slices 2\)'):
        merge_slices('detect', [detect_slice('1', rows[:3]), detect_slice('2', rows[3:])], ['n1', 'n2', 'n3'], AT)


def test_no_slices_and_unknown_kind_are_errors():
    with pytest.raises(MemcgError, match='no detect slice reports to merge'):
        merge_slices('detect', [], ['n1'], AT)
    with pytest.raises(MemcgError, match="kind must be one of detect, mitigate, got 'upgrade'"):
        merge_slices('upgrade', [detect_slice('1', [])], [], AT)


def test_what_is_not_a_slice_report_is_refused():
    rows = fleet_rows()
    unsliced = report.detect_report(rows, AT)
    with pytest.raises(MemcgError, match='not a detect slice report'):
        merge_slices('detect', [unsliced], ['n1'], AT)
    with pytest.raises(MemcgError, match='detect slice 1 is not a detect report of schema_version 1'):
        merge_slices('detect', [dict(detect_slice('1', rows), schema_version=2)], ['n1'], AT)
    # a detect slice given as a mitigate one: its rows' statuses are not mitigate statuses
    with pytest.raises(MemcgError, match="mitigate slice 1: .*'status': 'probed'.* is not a mitigate report row"):
        merge_slices('mitigate', [detect_slice('1', rows)], ['n1'], AT)


def test_mitigate_slices_merge_with_the_counts_recomputed():
    would = report.mitigate_node_row('a', {'steps': [{'gate': {'verdict': 'warn', 'decision': 'drop'},
                                                      'would_drop': True, 'before': {'verdict': 'warn'}}]})
    fine = report.mitigate_node_row('b', {'assessment': {'gate': {'verdict': 'ok', 'decision': 'no'},
                                                         'before': {'verdict': 'ok'}}})
    gone = report.mitigate_node_row('c', {'unreachable': True, 'error': 'timed out'})
    partials = [dict(report.mitigate_report(part, AT), slice={'name': name, 'hosts': len(part)})
                for name, part in (('1', [would, gone]), ('2', [fine]))]
    merged = merge_slices('mitigate', partials, ['a', 'b', 'c'], AT)
    statuses = {row['host']: row['status'] for row in merged['nodes']}
    assert statuses == {'a': 'would_mitigate', 'b': 'not_needed', 'c': 'unreachable'}
    assert merged['summary'] == dict(report.mitigate_report([would, fine, gone], AT)['summary'])
    assert merged['summary']['hosts'] == 3 and merged['summary']['would_mitigate'] == 1
