# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Diagnosis report: per-node rows and a fleet summary, as JSON data and Markdown.

Pure functions in the style of report.py (detect); the filter plugin feeds them hostvars.
Schema: docs/diagnose.md.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

from ansible_collections.nodeops.memcg.plugins.plugin_utils.report import markdown_table

DIAGNOSE_SCHEMA_VERSION = 1
CONCLUSIONS = ('confirmed', 'likely', 'not this', 'unknown')
TOP_SOURCES = 5


def _num(value, pattern):
    return '-' if value is None else pattern.format(value)


def _hours(value):
    if value is None:
        return 'not growing'
    return 'now' if value == 0 else _num(value, '{0:,.1f} h')


def diagnose_node_row(host, state):
    """One report row from a host's diagnose_result fact (None: the host produced none)."""
    if not state:
        return {'host': host, 'status': 'failed', 'error': 'no diagnosis result for this host'}
    if state.get('unreachable'):
        return {'host': host, 'status': 'unreachable', 'error': state.get('error')}
    if state.get('error'):
        return {'host': host, 'status': 'failed', 'error': state['error']}
    node = state.get('node') or {}
    evidence = node.get('evidence') or {}
    kubernetes = state.get('kubernetes') or {}
    return {
        'host': host,
        'status': 'diagnosed',
        'error': None,
        'conclusion': node.get('conclusion'),
        'reasons': list(node.get('reasons') or []),
        'kernel': node.get('kernel') or {},
        'kubelet': node.get('kubelet') or {},
        'evidence': dict((key, evidence.get(key)) for key in (
            'method', 'tried', 'error', 'samples', 'stat_samples', 'share_percent', 'stat_functions_seen',
            'top_functions', 'open_files', 'visibility', 'kernel_generation', 'functions')),
        'read_latency': list(node.get('read_latency') or []),
        'rates': dict((key, (node.get('rates') or {}).get(key)) for key in (
            'interval_s', 'created', 'created_per_hour', 'dying_delta', 'dying_per_hour')),
        'memcg': (node.get('rates') or {}).get('second') or {},
        'forecast': node.get('forecast') or {},
        'node_sources': node.get('sources') or {},
        'kubernetes': {
            'queried': bool(kubernetes),
            'error': kubernetes.get('error'),
            'sources': list(kubernetes.get('sources') or []),
            'namespaces': list(kubernetes.get('namespaces') or []),
            'look_first': list(kubernetes.get('look_first') or []),
        },
        'pprof': state.get('pprof') or None,
        'timing': node.get('timing') or {},
    }


def diagnose_report(rows, generated_at):
    """The fleet document: schema version, time, counts by conclusion, rows by host."""
    rows = sorted(rows, key=lambda row: row['host'])
    summary = {'hosts': len(rows), 'diagnosed': 0, 'unreachable': 0, 'failed': 0}
    summary.update((conclusion, 0) for conclusion in CONCLUSIONS)
    for row in rows:
        summary[row['status']] += 1
        if row['status'] == 'diagnosed' and row['conclusion'] in CONCLUSIONS:
            summary[row['conclusion']] += 1
    return {'schema_version': DIAGNOSE_SCHEMA_VERSION, 'generated_at': generated_at,
            'summary': summary, 'nodes': rows}


def _root_ms(row):
    for level in row['read_latency']:
        if level['level'] == 'root':
            return _num(level['ms'], '{0:,.1f} ms') if level['status'] == 'read' else level['status']
    return '-'


def _cpu(kubelet):
    if not kubelet.get('found'):
        return 'not running'
    return '%s (sys %s)' % (_num(kubelet.get('cpu_percent'), '{0:.0f}%'), _num(kubelet.get('system_percent'), '{0:.0f}%'))


def _look_first(row):
    first = row['kubernetes']['look_first']
    return first[0] if first else ''


def diagnose_markdown(report):
    """The fleet report as Markdown: a summary line, a row per node, the reasons and forecasts."""
    summary = report['summary']
    lines = [
        '# Memory cgroup diagnosis report',
        '',
        'Generated %s. %d hosts: %d confirmed, %d likely, %d not this, %d unknown, %d unreachable, %d failed.' % (
            report['generated_at'], summary['hosts'], summary['confirmed'], summary['likely'],
            summary['not this'], summary['unknown'], summary['unreachable'], summary['failed']),
        '',
    ]
    table, details = [], []
    for row in report['nodes']:
        if row['status'] != 'diagnosed':
            table.append([row['host'], row['status'], '-', '-', '-', '-', '-', '-', row.get('error')])
            continue
        evidence, forecast = row['evidence'], row['forecast']
        table.append([
            row['host'], row['conclusion'], _cpu(row['kubelet']), evidence['method'],
            _num(evidence['share_percent'], '{0}%'), _root_ms(row),
            _num(row['rates']['dying_per_hour'], '{0:,.1f}'), _hours(forecast.get('hours_to_critical')),
            _look_first(row),
        ])
        details.extend('- %s: %s' % (row['host'], text) for text in row['reasons'] + (forecast.get('summary') or []))
    lines.append(markdown_table(['Host', 'Conclusion', 'kubelet CPU', 'Method', 'Samples in memcg stat',
                                 'root memory.stat', 'Dying memcgs / h', 'Critical in', 'Look first at'], table))
    if details:
        lines.extend(['', '## Findings', ''] + details)
    lines.extend(['', 'Per-node evidence: diagnose-<host>.md next to this file; how to read it: docs/diagnose.md.'])
    return '\n'.join(lines) + '\n'


def diagnose_node_markdown(row):
    """One node's full evidence as Markdown."""
    lines = ['# Diagnosis of %s' % row['host'], '']
    if row['status'] != 'diagnosed':
        return '\n'.join(lines + ['%s: %s' % (row['status'], row.get('error')), ''])
    evidence, kernel, rates, forecast = row['evidence'], row['kernel'], row['rates'], row['forecast']
    lines += ['**Conclusion: %s.**' % row['conclusion'], ''] + ['- %s' % reason for reason in row['reasons']]
    lines += ['', '## Where kubelet\'s time goes', '',
              'Kernel %s (generation %s). kubelet CPU %s over %s s.' % (
                  kernel.get('release'), kernel.get('generation') or 'unknown', _cpu(row['kubelet']),
                  row['kubelet'].get('interval_s')),
              '',
              'Method: %s (tried %s). %s' % (evidence['method'], ', '.join(evidence['tried'] or []) or 'none',
                                             evidence['visibility'] or ''), '']
    if evidence['error']:
        lines += ['Note: %s' % evidence['error'], '']
    lines.append('%s of %s samples inside a memory.stat read (%s)%s.' % (
        _num(evidence['stat_samples'], '{0}'), _num(evidence['samples'], '{0}'), _num(evidence['share_percent'], '{0}%'),
        ': under memory cgroup stat functions' if evidence['method'] == 'perf' else
        ': a stat function on a stack, or memory.stat open' if evidence['method'] == 'proc' else ''))
    for key, title in (('stat_functions_seen', 'Stat functions seen'), ('top_functions', 'Top functions (leaf)')):
        if evidence.get(key):
            lines += ['', markdown_table([title, 'Samples'], [[item['function'], item['samples']] for item in evidence[key]])]
    if evidence.get('open_files'):
        lines += ['', markdown_table(['memory.stat open', 'Samples'], [[item['path'], item['samples']] for item in evidence['open_files']])]
    lines += ['', '## memory.stat read time per level', '',
              markdown_table(['Level', 'File', 'Read', 'Status'], [
                  [level['level'], level['path'], _num(level['ms'], '{0:,.1f} ms'),
                   level['status'] + (' (slow)' if level['slow'] else '') + (': %s' % level['error'] if level['error'] else '')]
                  for level in row['read_latency']])]
    lines += ['', '## What creates the dying memory cgroups', '',
              'Over %s s: %s memcgs created (net, a lower bound), dying count %+d (%s per hour); now %s live, %s dying.' % (
                  rates['interval_s'], _num(rates['created'], '{0}'), rates['dying_delta'] or 0,
                  _num(rates['dying_per_hour'], '{0:,.1f}'), _num(row['memcg'].get('live'), '{0:,}'),
                  _num(row['memcg'].get('dying'), '{0:,}'))]
    transient = row['node_sources'].get('transient_units')
    if transient:
        lines += ['', 'Transient systemd units: %d (%s).' % (transient['total'], ', '.join(
            '%s %s' % (count, kind) for kind, count in sorted(transient['by_type'].items())))]
    live = row['node_sources'].get('live_by_top') or {}
    if live:
        lines += ['', markdown_table(['Top-level cgroup', 'Live memcgs'],
                                     sorted(([name, count] for name, count in live.items()), key=lambda item: -item[1]))]
    kubernetes = row['kubernetes']
    if kubernetes['queried']:
        if kubernetes['error']:
            lines += ['', 'Kubernetes API: %s' % kubernetes['error']]
        if kubernetes['look_first']:
            lines += ['', 'Look first at:', ''] + ['- %s' % text for text in kubernetes['look_first']]
        if kubernetes['sources']:
            lines += ['', markdown_table(
                ['Namespace', 'Owner', 'Pods', 'Job pods', 'Restarts', 'Recent pods', 'Container starts (events)', 'Score'],
                [[s['namespace'], '%s/%s' % (s['owner_kind'], s['owner_name']), s['pods'], s['job_pods'], s['restarts'],
                  s['recent_pods'], s['started_events'], s['score']] for s in kubernetes['sources'][:10]])]
    lines += ['', '## Forecast', ''] + ['- %s' % text for text in forecast.get('summary') or []]
    pprof = row.get('pprof')
    if pprof:
        lines += ['', '## kubelet CPU profile (pprof)', '']
        if pprof.get('path'):
            lines.append('Saved on the controller: %s (%s bytes, open with `go tool pprof`).' % (pprof['path'], pprof.get('bytes')))
        if pprof.get('error'):
            lines.append('Problem: %s' % pprof['error'])
        if pprof.get('top'):
            lines += ['', '%s%% of kubelet\'s CPU under cAdvisor\'s memory stat readers.' % pprof.get('memory_stat_share_percent'),
                      '', markdown_table(['Function', 'Flat', 'Cumulative'],
                                         [[item['function'], '%s%%' % item['flat'], '%s%%' % item['cum']] for item in pprof['top']])]
    timing = row['timing']
    stopped = '; some levels were not read' if timing.get('stopped_early') else ''
    lines += ['', 'Took %s s of a %s s budget%s.' % (timing.get('elapsed_s'), timing.get('timeout_s'), stopped)]
    return '\n'.join(lines) + '\n'


def _nice_json(value):
    """As ansible.builtin.to_nice_json(sort_keys=true) renders it, with a final newline."""
    return json.dumps(value, indent=4, sort_keys=True, separators=(',', ': ')) + '\n'


def report_files(report):
    """File name -> text: diagnose.json and .md for the fleet, diagnose-<host>.json and .md per node."""
    files = {'diagnose.json': _nice_json(report), 'diagnose.md': diagnose_markdown(report)}
    for row in report['nodes']:
        files['diagnose-%s.json' % row['host']] = _nice_json(row)
        files['diagnose-%s.md' % row['host']] = diagnose_node_markdown(row)
    return files
