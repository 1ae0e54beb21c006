# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.nodeops.memcg.plugins.filter import memcg as memcg_filters
from ansible_collections.nodeops.memcg.plugins.plugin_utils import report


def probe_result(verdict='critical', dying=45000, root_ms=9012.5):
    return {
        'verdict': verdict,
        'reasons': ['45,000 dying memcgs exceed critical_dying 20,000'] if verdict != 'ok' else [],
        'kernel': {'release': '3.10.0-1160.el7.x86_64', 'stream': 'el7', 'status': 'severe',
                   'upgrade_needed': True,
                   'recommendation': {'summary': 'Install kernel-lt from elrepo-kernel'}},
        'memcg': {'total': dying + 240, 'live': 240, 'dying': dying, 'source': 'proc_cgroups'},
        'read_latency': {'root': {'path': '/sys/fs/cgroup/memory/memory.stat', 'reads': 1,
                                  'ms': [root_ms], 'max_ms': root_ms, 'slow': True},
                         'kubepods': None},
        'kubelet': {'found': True, 'pid': 812, 'cpu_percent': 98.0, 'user_percent': 7.0,
                    'system_percent': 91.0},
        'kmem_leak': {'suspected': False, 'signs': []},
    }


def test_row_for_a_probed_node_carries_the_probe_and_its_kernels():
    probe = dict(probe_result(),
                 installed_kernels=[{'package': 'kernel', 'version': '3.10.0-1160.el7',
                                     'release': '3.10.0-1160.el7.x86_64'}],
                 boot_default='3.10.0-1160.el7.x86_64', changed=False, textfile=None)
    row = report.detect_node_row('node-a', probe)
    assert row['status'] == 'probed'
    assert row['verdict'] == 'critical'
    assert row['kernel']['status'] == 'severe' and row['kernel']['upgrade_needed'] is True
    assert row['kernel']['recommendation'] == 'Install kernel-lt from elrepo-kernel'
    assert row['memcg'] == {'total': 45240, 'live': 240, 'dying': 45000}
    assert row['read_ms'] == {'root': 9012.5, 'kubepods': None}
    assert row['kubelet']['system_percent'] == 91.0
    assert row['installed_kernels'] == probe['installed_kernels']
    assert row['boot_default'] == '3.10.0-1160.el7.x86_64'


def test_unreachable_failed_and_missing_hosts_are_rows_not_gaps():
    # What register holds with ignore_unreachable / ignore_errors, and a host that never ran it.
    unreachable = report.detect_node_row('u', {'unreachable': True, 'changed': False, 'msg': 'ssh: connect refused'})
    failed = report.detect_node_row('f', {'failed': True, 'msg': 'textfile_dir must be an absolute path'})
    crashed = report.detect_node_row('c', {'failed': True, 'msg': 'MODULE FAILURE', 'module_stderr': 'x'})
    skipped = report.detect_node_row('s', {'skipped': True, 'changed': False})
    missing = report.detect_node_row('m', None)
    assert (unreachable['status'], unreachable['error']) == ('unreachable', 'ssh: connect refused')
    assert (failed['status'], failed['error']) == ('failed', 'textfile_dir must be an absolute path')
    assert (crashed['status'], crashed['error']) == ('failed', 'MODULE FAILURE')
    assert (skipped['status'], skipped['error']) == ('failed', 'the probe did not run')
    assert (missing['status'], missing['error']) == ('failed', 'no detection result for this host')


def test_summary_counts_verdicts_statuses_and_upgrades():
    rows = [
        report.detect_node_row('b', probe_result('critical')),
        report.detect_node_row('a', probe_result('ok', dying=3, root_ms=1.2)),
        report.detect_node_row('c', {'unreachable': True, 'msg': 'x'}),
    ]
    doc = report.detect_report(rows, '2026-11-26T18:00:00Z')
    assert [row['host'] for row in doc['nodes']] == ['a', 'b', 'c']
    assert doc['summary'] == {'hosts': 3, 'probed': 2, 'unreachable': 1, 'failed': 0,
                              'ok': 1, 'warn': 0, 'critical': 1, 'kernels_to_upgrade': 2}
    assert doc['schema_version'] == report.DETECT_SCHEMA_VERSION
    json.dumps(doc)  # the document must serialise as is


def test_markdown_has_a_row_per_node_and_escapes_cells():
    rows = [report.detect_node_row('node|1', probe_result()),
            report.detect_node_row('node-2', {'unreachable': True, 'msg': 'timed out'})]
    text = report.detect_markdown(report.detect_report(rows, 'T'))
    lines = text.splitlines()
    assert lines[0] == '# Memory cgroup detection report'
    assert '1 critical, 1 unreachable' in lines[2]
    node_line = [line for line in lines if line.startswith('| node\\|1 ')][0]
    assert '| critical |' in node_line and '45,000' in node_line and '9,012.5 ms' in node_line
    assert '98% (sys 91%)' in node_line and 'Install kernel-lt from elrepo-kernel' in node_line
    assert '| node-2 | unreachable |' in text and 'timed out' in text
    assert '- node|1: 45,000 dying memcgs exceed critical_dying 20,000' in text
    assert '- node|1: next, prove what burns kubelet CPU' in text
    assert 'nodeops.memcg.diagnose --limit node|1 (docs/diagnose.md)' in text


def test_filter_reports_10000_hosts_each_once_in_order():
    """The detect_report filter over 10,000 hosts' registered results (speed: benchmarks/bench_fleet.py)."""
    hosts = ['node%05d' % index for index in range(10000)]
    hostvars = {}
    for index, host in enumerate(reversed(hosts)):
        if index % 100 == 0:
            hostvars[host] = {'detect_result': {'unreachable': True, 'msg': 'ssh: timed out'}}
        elif index % 100 == 1:
            hostvars[host] = {'detect_result': {'failed': True, 'msg': 'MODULE FAILURE'}}
        elif index % 100 == 2:
            hostvars[host] = {}
        else:
            hostvars[host] = {'detect_result': probe_result('warn' if index % 2 else 'ok', dying=index)}
    doc = memcg_filters.detect_report(hosts, hostvars, 'T')
    assert [row['host'] for row in doc['nodes']] == hosts
    assert doc['summary'] == {'hosts': 10000, 'probed': 9700, 'unreachable': 100, 'failed': 200,
                              'ok': 4800, 'warn': 4900, 'critical': 0, 'kernels_to_upgrade': 9700}
    assert doc['nodes'][-1] == {'host': 'node09999', 'status': 'unreachable', 'error': 'ssh: timed out'}
    assert (doc['nodes'][0]['memcg']['dying'], doc['nodes'][0]['verdict']) == (9999, 'warn')
    text = memcg_filters.detect_markdown(doc)
    assert sum(1 for line in text.splitlines() if line.startswith('| node')) == 10000


def test_markdown_leaves_out_recommendation_when_kernel_is_fixed():
    probe = probe_result('ok', dying=2, root_ms=1.0)
    probe['kernel'] = {'release': '5.4.0-150-generic', 'stream': 'ubuntu', 'status': 'fixed',
                       'upgrade_needed': False, 'recommendation': {'summary': 'nothing to do'}}
    text = report.detect_markdown(report.detect_report(
        [report.detect_node_row('n', probe)], 'T'))
    assert 'nothing to do' not in text
    assert '## Reasons' not in text
    assert 'nodeops.memcg.diagnose' not in text


def snap(verdict, dying, slab_kb=1000, read_ms=1.0):
    return {'verdict': verdict, 'memcg': {'total': dying + 10, 'live': 10, 'dying': dying},
            'slab': {'slab_kb': slab_kb}, 'root_read_ms': read_ms}


def step(before, after=None, level=2, would_drop=False, decision='Verdict warn reaches min_verdict warn'):
    return {'gate': {'verdict': before['verdict'], 'reasons': ['r'], 'decision': decision},
            'before': before, 'after': after, 'dropped': after is not None, 'would_drop': would_drop,
            'level': level, 'reaper': {'reaped': False}}


@pytest.mark.parametrize('before, after, expected', [
    (snap('warn', 300), snap('ok', 300), True),        # verdict came down
    (snap('warn', 300), snap('warn', 10), True),       # same verdict, fewer zombies
    (snap('warn', 300), snap('warn', 300), False),
    (snap('ok', 3), snap('warn', 1), False),           # verdict went up
    (snap('warn', 300), None, False),
])
def test_improved(before, after, expected):
    assert report.improved(before, after) is expected


def test_mitigate_rows_by_outcome():
    assessment = step(snap('warn', 300), would_drop=True)
    mitigated = report.mitigate_node_row('a', {
        'assessment': assessment,
        'steps': [step(snap('warn', 300), snap('warn', 290)), step(snap('warn', 290), snap('ok', 5), level=3)]})
    assert mitigated['status'] == 'mitigated' and mitigated['levels'] == [2, 3]
    assert mitigated['before']['dying'] == 300 and mitigated['after']['dying'] == 5
    assert mitigated['problem'] is None

    stuck = report.mitigate_node_row('b', {'assessment': assessment,
                                           'steps': [step(snap('warn', 300), snap('warn', 300))]})
    assert stuck['status'] == 'not_improved'
    assert stuck['problem'] == ('did not improve after drop_caches level 2: verdict warn -> warn, '
                                'dying memcgs 300 -> 300')

    would = report.mitigate_node_row('c', {'assessment': assessment, 'steps': [step(snap('warn', 300), would_drop=True)]})
    assert would['status'] == 'would_mitigate' and would['after'] is None
    calm = report.mitigate_node_row('d', {'assessment': step(snap('ok', 2)), 'steps': []})
    assert calm['status'] == 'not_needed' and calm['before']['dying'] == 2
    failed = report.mitigate_node_row('e', {'assessment': assessment, 'steps': [], 'error': 'write failed'})
    assert (failed['status'], failed['problem']) == ('failed', 'write failed')
    unreachable = report.mitigate_node_row('f', {'unreachable': True, 'error': 'no route'})
    assert (unreachable['status'], unreachable['problem']) == ('unreachable', 'no route')
    assert report.mitigate_node_row('g', None)['problem'] == 'no mitigation result for this host'

    doc = report.mitigate_report([mitigated, stuck, would, calm, failed], 'T')
    assert doc['summary'] == {'hosts': 5, 'mitigated': 1, 'not_improved': 1, 'would_mitigate': 1,
                              'not_needed': 1, 'unreachable': 0, 'failed': 1}
    text = report.mitigate_markdown(doc)
    assert '| a | mitigated | warn -> ok | 300 -> 5 |' in text
    assert '| 2, 3 |' in text
    assert '| d | not_needed | ok | 2 |' in text
    assert '- a: Verdict warn reaches min_verdict warn Then: Verdict warn reaches min_verdict warn' in text


def test_upgrade_timeline_steps_start_when_the_previous_one_ended():
    marks = [{'step': 'start', 'at': 100.0}, {'step': 'cordon', 'at': 101.5}, {'step': 'drain', 'at': 131.5},
             {'step': 'boot', 'at': 301.0}]
    assert report.upgrade_timeline(marks) == [
        {'step': 'cordon', 'started': 100.0, 'ended': 101.5, 'seconds': 1.5},
        {'step': 'drain', 'started': 101.5, 'ended': 131.5, 'seconds': 30.0},
        {'step': 'boot', 'started': 131.5, 'ended': 301.0, 'seconds': 169.5}]
    assert report.upgrade_timeline([]) == []


def test_upgrade_report_says_where_the_rollout_stopped():
    done = report.upgrade_node_row('h1', 'node-1', {
        'status': 'upgraded', 'kernel_before': '3.10.0-1160.el7.x86_64', 'kernel_after': '5.4.225-1.el7.elrepo.x86_64',
        'marks': [{'step': 'start', 'at': 0}, {'step': 'cordon', 'at': 1}, {'step': 'uncordon', 'at': 61}]})
    blocked = report.upgrade_node_row('h2', 'node-2', {
        'status': 'failed', 'kernel_before': '3.10.0-1160.el7.x86_64', 'failed_step': 'drain',
        'error': 'pod shop/web-1 blocked by PodDisruptionBudget shop/web', 'left_cordoned': True,
        'marks': [{'step': 'start', 'at': 0}, {'step': 'cordon', 'at': 1}]})
    untouched = report.upgrade_node_row('h3', 'node-3', None)
    admin = report.upgrade_node_row('h4', 'node-4', {'status': 'upgraded', 'admin_cordoned': True})
    doc = report.upgrade_report([done, blocked, untouched, admin], 'T', 'run-7')
    assert doc['stopped_at'] == {'node': 'node-2', 'step': 'drain',
                                 'error': 'pod shop/web-1 blocked by PodDisruptionBudget shop/web'}
    assert doc['summary']['upgraded'] == 2 and doc['summary']['failed'] == 1
    assert doc['summary']['not_started'] == 1
    assert done['seconds'] == 61
    text = report.upgrade_markdown(doc)
    assert 'Stopped at node node-2, step drain: pod shop/web-1 blocked by PodDisruptionBudget shop/web' in text
    assert '| node-1 | upgraded | 3.10.0-1160.el7.x86_64 -> 5.4.225-1.el7.elrepo.x86_64 | - | cordon 1.0s, uncordon 60.0s | - |' in text
    assert 'cordoned by an admin before the run: left cordoned' in text
    assert '| node-3 | not_started |' in text
    assert 'Completed.' in report.upgrade_markdown(report.upgrade_report([done], 'T', 'r'))


def test_boot_default_finding_is_a_row_field_and_a_reason_line():
    finding = {'severity': 'warning', 'code': 'boot_default_unfixed',
               'message': 'next boot lands on an unfixed kernel: the default boot entry 3.10.0-1160.el7.x86_64 is '
                          'severe while the running 5.4.225-1.el7.elrepo.x86_64 is fixed'}
    probe = dict(probe_result('ok', dying=3, root_ms=1.2), boot_default='3.10.0-1160.el7.x86_64',
                 findings=[finding])
    row = report.detect_node_row('node-a', probe)
    assert row['findings'] == [finding]
    text = report.detect_markdown(report.detect_report([row], 'T'))
    assert '- node-a: warning: next boot lands on an unfixed kernel: the default boot entry' in text
    assert report.detect_node_row('node-b', probe_result())['findings'] == []
