# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

from ansible_collections.nodeops.memcg.plugins.plugin_utils import diagnose_report as report


def node_result(conclusion='confirmed'):
    return {
        'conclusion': conclusion,
        'reasons': ['kubelet (pid 9) used 98% of a CPU'],
        'kernel': {'release': '3.10.0-1160.el7.x86_64', 'generation': '3.10'},
        'kubelet': {'found': True, 'pid': 9, 'interval_s': 20.0, 'cpu_percent': 98.0, 'user_percent': 4.0,
                    'system_percent': 94.0},
        'evidence': {'method': 'perf', 'tried': ['perf'], 'error': None, 'samples': 1980, 'stat_samples': 1850,
                     'share_percent': 93.4, 'stat_functions_seen': [{'function': 'mem_cgroup_iter', 'samples': 1850}],
                     'top_functions': [{'function': 'mem_cgroup_iter', 'samples': 900}],
                     'visibility': 'perf samples every thread', 'kernel_generation': '3.10', 'functions': ['x']},
        'read_latency': [{'level': 'root', 'path': '/sys/fs/cgroup/memory/memory.stat', 'ms': 2400.5, 'slow': True,
                          'status': 'read', 'error': None},
                         {'level': 'kubepods', 'path': '/k/memory.stat', 'ms': None, 'slow': False,
                          'status': 'timeout', 'error': 'no answer'}],
        'rates': {'interval_s': 20.0, 'created': 12, 'created_per_hour': 2160.0, 'dying_delta': 11,
                  'dying_per_hour': 1980.0, 'first': {}, 'second': {'total': 45240, 'live': 240, 'dying': 45000}},
        'forecast': {'hours_to_critical': 0.0, 'summary': ['45000 dying memcgs already exceed critical_dying (20000).']},
        'sources': {'transient_units': {'total': 2, 'by_type': {'scope': 2}}, 'live_by_top': {'kubepods.slice': 200}},
        'timing': {'elapsed_s': 21.3, 'timeout_s': 50.0, 'stopped_early': True},
    }


KUBERNETES = {'sources': [{'namespace': 'batch', 'owner_kind': 'CronJob', 'owner_name': 'report', 'pods': 3,
                           'job_pods': 3, 'restarts': 0, 'recent_pods': 3, 'started_events': 24, 'score': 24}],
              'namespaces': [{'namespace': 'batch', 'score': 24}],
              'look_first': ['batch CronJob/report: 24 container starts in recent events; every run makes ...']}
PPROF = {'path': '/r/kubelet-a.pprof', 'bytes': 100, 'error': None, 'memory_stat_share_percent': 80.0,
         'top': [{'function': 'syscall.Syscall', 'flat': 80.0, 'cum': 80.0}]}


def test_rows_summary_and_markdown():
    rows = [report.diagnose_node_row('a', {'node': node_result(), 'kubernetes': KUBERNETES, 'pprof': PPROF}),
            report.diagnose_node_row('b', {'unreachable': True, 'error': 'ssh timed out'}),
            report.diagnose_node_row('c', None),
            report.diagnose_node_row('d', {'node': node_result('not this')})]
    doc = report.diagnose_report(rows, 'T')
    assert doc['summary'] == {'hosts': 4, 'diagnosed': 2, 'unreachable': 1, 'failed': 1, 'confirmed': 1,
                              'likely': 0, 'not this': 1, 'unknown': 0}
    assert doc['nodes'][1]['status'] == 'unreachable' and doc['nodes'][2]['error'] == 'no diagnosis result for this host'
    assert doc['nodes'][3]['kubernetes']['queried'] is False
    text = report.diagnose_markdown(doc)
    assert '1 confirmed, 0 likely, 1 not this, 0 unknown, 1 unreachable, 1 failed' in text
    assert ('| a | confirmed | 98% (sys 94%) | perf | 93.4% | 2,400.5 ms | 1,980.0 | now | '
            'batch CronJob/report: 24 container starts') in text
    assert '| b | unreachable |' in text and 'ssh timed out' in text
    assert '- a: 45000 dying memcgs already exceed critical_dying (20000).' in text

    node = report.diagnose_node_markdown(doc['nodes'][0])
    assert '**Conclusion: confirmed.**' in node
    assert '| mem_cgroup_iter | 1850 |' in node
    assert '| kubepods | /k/memory.stat | - | timeout: no answer |' in node
    assert '| root | /sys/fs/cgroup/memory/memory.stat | 2,400.5 ms | read (slow) |' in node
    assert 'Transient systemd units: 2 (2 scope).' in node
    assert '| batch | CronJob/report | 3 | 3 | 0 | 3 | 24 | 24 |' in node
    assert 'Saved on the controller: /r/kubelet-a.pprof' in node and '| syscall.Syscall | 80.0% | 80.0% |' in node
    assert 'some levels were not read' in node
    assert report.diagnose_node_markdown(doc['nodes'][1]).endswith('unreachable: ssh timed out\n')


def test_report_files_one_json_and_one_markdown_for_the_fleet_and_for_each_node():
    doc = report.diagnose_report([report.diagnose_node_row('a', {'node': node_result()}),
                                  report.diagnose_node_row('b', {'unreachable': True, 'error': 'ssh timed out'})], 'T')
    files = report.report_files(doc)
    assert sorted(files) == ['diagnose-a.json', 'diagnose-a.md', 'diagnose-b.json', 'diagnose-b.md',
                             'diagnose.json', 'diagnose.md']
    assert json.loads(files['diagnose.json']) == json.loads(json.dumps(doc))
    assert json.loads(files['diagnose-b.json'])['error'] == 'ssh timed out'
    assert files['diagnose.json'].startswith('{\n    "') and files['diagnose.json'].endswith('}\n')
    assert files['diagnose.md'] == report.diagnose_markdown(doc)
    assert files['diagnose-a.md'] == report.diagnose_node_markdown(doc['nodes'][0])
