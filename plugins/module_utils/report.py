# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet report: per-node rows and a summary from detection results, as JSON data and Markdown.

Pure functions; the filter plugin feeds them hostvars. Schema: docs/report.md.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DETECT_SCHEMA_VERSION = 1
VERDICTS = ('ok', 'warn', 'critical')


def _latency_ms(probe, cgroup):
    latency = (probe.get('read_latency') or {}).get(cgroup)
    return latency.get('max_ms') if latency else None


def detect_node_row(host, detect):
    """One report row from a host's detect_result fact (None when the host never produced one)."""
    if not detect:
        return {'host': host, 'status': 'failed', 'error': 'no detection result for this host'}
    if detect.get('unreachable'):
        return {'host': host, 'status': 'unreachable', 'error': detect.get('error')}
    if detect.get('error'):
        return {'host': host, 'status': 'failed', 'error': detect['error']}
    probe = detect.get('probe') or {}
    check = detect.get('kernel_check') or {}
    kernel = check.get('kernel') or probe.get('kernel') or {}
    memcg = probe.get('memcg') or {}
    kubelet = probe.get('kubelet') or {}
    return {
        'host': host,
        'status': 'probed',
        'verdict': probe.get('verdict'),
        'reasons': list(probe.get('reasons') or []),
        'kernel': {
            'release': kernel.get('release'),
            'stream': kernel.get('stream'),
            'status': kernel.get('status'),
            'upgrade_needed': bool(kernel.get('upgrade_needed')),
            'recommendation': (kernel.get('recommendation') or {}).get('summary') or '',
        },
        'installed_kernels': list(check.get('installed_kernels') or []),
        'boot_default': check.get('boot_default'),
        'memcg': {key: memcg.get(key) for key in ('total', 'live', 'dying')},
        'read_ms': {'root': _latency_ms(probe, 'root'), 'kubepods': _latency_ms(probe, 'kubepods')},
        'kubelet': {
            'found': bool(kubelet.get('found')),
            'pid': kubelet.get('pid'),
            'cpu_percent': kubelet.get('cpu_percent'),
            'system_percent': kubelet.get('system_percent'),
        },
        'kmem_leak_suspected': bool((probe.get('kmem_leak') or {}).get('suspected')),
    }


def detect_report(rows, generated_at):
    """The report document: schema version, time, summary counts and the rows sorted by host."""
    rows = sorted(rows, key=lambda row: row['host'])
    summary = {'hosts': len(rows), 'probed': 0, 'unreachable': 0, 'failed': 0, 'kernels_to_upgrade': 0}
    summary.update((verdict, 0) for verdict in VERDICTS)
    for row in rows:
        summary[row['status']] += 1
        if row['status'] == 'probed':
            if row['verdict'] in VERDICTS:
                summary[row['verdict']] += 1
            if row['kernel']['upgrade_needed']:
                summary['kernels_to_upgrade'] += 1
    return {'schema_version': DETECT_SCHEMA_VERSION, 'generated_at': generated_at,
            'summary': summary, 'nodes': rows}


def _cell(value):
    if value is None or value == '':
        return '-'
    return str(value).replace('|', '\\|').replace('\n', ' ')


def _count(value):
    return '-' if value is None else '{0:,}'.format(value)


def _ms(value):
    return '-' if value is None else '{0:,.1f} ms'.format(value)


def _percent(value):
    return '-' if value is None else '{0:.0f}%'.format(value)


def markdown_table(headers, rows):
    """A GitHub-flavoured Markdown table; cells are escaped."""
    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
    lines.extend('| ' + ' | '.join(_cell(cell) for cell in row) + ' |' for row in rows)
    return '\n'.join(lines)


def detect_markdown(report):
    """The report as Markdown: a summary line, one table row per node, then the reasons."""
    summary = report['summary']
    lines = [
        '# Memory cgroup detection report',
        '',
        'Generated %s. %d hosts: %d ok, %d warn, %d critical, %d unreachable, %d failed. '
        '%d kernels to upgrade.' % (
            report['generated_at'], summary['hosts'], summary['ok'], summary['warn'],
            summary['critical'], summary['unreachable'], summary['failed'],
            summary['kernels_to_upgrade']),
        '',
    ]
    table = []
    details = []
    for row in report['nodes']:
        if row['status'] != 'probed':
            table.append([row['host'], row['status'], '-', '-', '-', '-', '-', '-', '-', row.get('error')])
            continue
        kernel = row['kernel']
        kubelet = row['kubelet']
        if kubelet['found']:
            kubelet_cpu = '%s (sys %s)' % (_percent(kubelet['cpu_percent']), _percent(kubelet['system_percent']))
        else:
            kubelet_cpu = 'not running'
        table.append([
            row['host'], row['verdict'],
            '%s (%s)' % (kernel['release'], kernel['stream']), kernel['status'],
            _count(row['memcg']['dying']), _count(row['memcg']['live']),
            _ms(row['read_ms']['root']), _ms(row['read_ms']['kubepods']), kubelet_cpu,
            kernel['recommendation'] if kernel['upgrade_needed'] else '',
        ])
        details.extend('- %s: %s' % (row['host'], reason) for reason in row['reasons'])
        if row['kmem_leak_suspected']:
            details.append('- %s: RHEL 7 kmem accounting leak signs present' % row['host'])
    lines.append(markdown_table(
        ['Host', 'Verdict', 'Kernel', 'Kernel status', 'Dying memcgs', 'Live memcgs',
         'root memory.stat', 'kubepods memory.stat', 'kubelet CPU', 'Recommendation'], table))
    if details:
        lines.extend(['', '## Reasons', ''] + details)
    return '\n'.join(lines) + '\n'
