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
# The next step for warn and critical nodes (docs/diagnose.md).
DIAGNOSE_HINT = ('prove what burns kubelet CPU and find what creates the dying memcgs: '
                 'ansible-playbook nodeops.memcg.diagnose --limit %s (docs/diagnose.md)')


def _latency_ms(probe, cgroup):
    latency = (probe.get('read_latency') or {}).get(cgroup)
    return latency.get('max_ms') if latency else None


def detect_node_row(host, probe):
    """One report row from a host's detect_result: its memcg_probe result as registered.

    None (the host never ran the probe), an unreachable result or one without a verdict (the
    module failed) make a row with the error and no measurements.
    """
    if not probe:
        return {'host': host, 'status': 'failed', 'error': 'no detection result for this host'}
    if probe.get('unreachable'):
        return {'host': host, 'status': 'unreachable', 'error': probe.get('msg') or 'unreachable'}
    if probe.get('failed') or 'verdict' not in probe:
        return {'host': host, 'status': 'failed', 'error': probe.get('msg') or 'the probe did not run'}
    kernel = probe.get('kernel') or {}
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
        'installed_kernels': list(probe.get('installed_kernels') or []),
        'boot_default': probe.get('boot_default'),
        # e.g. boot_default_unfixed: the next boot lands on an unfixed kernel
        'findings': list(probe.get('findings') or []),
        'memcg': {key: memcg.get(key) for key in ('total', 'live', 'dying')},
        'read_ms': {'root': _latency_ms(probe, 'root'), 'kubepods': _latency_ms(probe, 'kubepods')},
        'kubelet': {
            'found': bool(kubelet.get('found')),
            'pid': kubelet.get('pid'),
            'cpu_percent': kubelet.get('cpu_percent'),
            'system_percent': kubelet.get('system_percent'),
        },
        'kmem_leak_suspected': bool((probe.get('kmem_leak') or {}).get('suspected')),
        'diagnose': DIAGNOSE_HINT % host if probe.get('verdict') in ('warn', 'critical') else None,
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
        details.extend('- %s: %s: %s' % (row['host'], finding['severity'], finding['message'])
                       for finding in row['findings'])
        if row['kmem_leak_suspected']:
            details.append('- %s: RHEL 7 kmem accounting leak signs present' % row['host'])
        if row.get('diagnose'):
            details.append('- %s: next, %s' % (row['host'], row['diagnose']))
    lines.append(markdown_table(
        ['Host', 'Verdict', 'Kernel', 'Kernel status', 'Dying memcgs', 'Live memcgs',
         'root memory.stat', 'kubepods memory.stat', 'kubelet CPU', 'Recommendation'], table))
    if details:
        lines.extend(['', '## Reasons', ''] + details)
    return '\n'.join(lines) + '\n'


MITIGATE_SCHEMA_VERSION = 1
MITIGATE_STATUSES = ('not_needed', 'would_mitigate', 'mitigated', 'not_improved', 'unreachable', 'failed')
_VERDICT_ORDER = {'ok': 0, 'warn': 1, 'critical': 2}


def improved(before, after):
    """True when the verdict came down, or it stayed but dying memcgs fell; pure."""
    if not before or not after:
        return False
    old, new = _VERDICT_ORDER.get(before.get('verdict'), 0), _VERDICT_ORDER.get(after.get('verdict'), 0)
    if new != old:
        return new < old
    dying_before = (before.get('memcg') or {}).get('dying')
    dying_after = (after.get('memcg') or {}).get('dying')
    return dying_before is not None and dying_after is not None and dying_after < dying_before


def _figures(snapshot):
    if not snapshot:
        return None
    return {'verdict': snapshot.get('verdict'),
            'dying': (snapshot.get('memcg') or {}).get('dying'),
            'total': (snapshot.get('memcg') or {}).get('total'),
            'slab_kb': (snapshot.get('slab') or {}).get('slab_kb'),
            'root_read_ms': snapshot.get('root_read_ms')}


def mitigate_node_row(host, result):
    """One report row from a host's mitigate_result fact (None when the host produced none)."""
    # Every row has 'problem': the report's fail step names it for each host, reached or not.
    if not result:
        error = 'no mitigation result for this host'
        return {'host': host, 'status': 'failed', 'error': error, 'problem': error}
    if result.get('unreachable'):
        return {'host': host, 'status': 'unreachable', 'error': result.get('error'), 'problem': result.get('error')}
    assessment = result.get('assessment') or {}
    steps = [step for step in result.get('steps') or [] if step.get('gate')]
    first = steps[0] if steps else assessment
    dropped = [step for step in steps if step.get('dropped') or (step.get('reaper') or {}).get('reaped')]
    last_after = dropped[-1].get('after') if dropped else None
    before = first.get('before')
    row = {
        'host': host,
        'verdict': (first.get('gate') or {}).get('verdict'),
        'decision': ' Then: '.join(step['gate'].get('decision') or '' for step in steps or [assessment] if step.get('gate')),
        'reasons': list((first.get('gate') or {}).get('reasons') or []),
        'levels': [step.get('level') for step in dropped],
        'before': _figures(before),
        'after': _figures(last_after),
        'error': result.get('error') or None,
    }
    row['problem'] = None
    if row['error']:
        row['status'] = 'failed'
        row['problem'] = row['error']
    elif dropped:
        row['status'] = 'mitigated' if improved(before, last_after) else 'not_improved'
        if row['status'] == 'not_improved':
            row['problem'] = 'did not improve after drop_caches level %s: verdict %s -> %s, dying memcgs %s -> %s' % (
                ', '.join(str(level) for level in row['levels']), row['before']['verdict'],
                row['after']['verdict'], row['before']['dying'], row['after']['dying'])
    elif any(step.get('would_drop') for step in steps):
        row['status'] = 'would_mitigate'
    else:
        row['status'] = 'not_needed'
    return row


def mitigate_report(rows, generated_at):
    """The mitigation report document: schema version, time, counts by status, rows by host."""
    rows = sorted(rows, key=lambda row: row['host'])
    summary = dict((status, 0) for status in MITIGATE_STATUSES)
    summary['hosts'] = len(rows)
    for row in rows:
        summary[row['status']] += 1
    return {'schema_version': MITIGATE_SCHEMA_VERSION, 'generated_at': generated_at,
            'summary': summary, 'nodes': rows}


def _change(before, after, key, render):
    old = before.get(key) if before else None
    new = after.get(key) if after else None
    if new is None:
        return render(old)
    return '%s -> %s' % (render(old), render(new))


def mitigate_markdown(report):
    """The mitigation report as Markdown: summary line, a before/after row per node, decisions."""
    summary = report['summary']
    lines = [
        '# Memory cgroup mitigation report',
        '',
        'Generated %s. %d hosts: %d mitigated, %d not improved, %d would mitigate, %d not needed, '
        '%d unreachable, %d failed.' % (
            report['generated_at'], summary['hosts'], summary['mitigated'], summary['not_improved'],
            summary['would_mitigate'], summary['not_needed'], summary['unreachable'], summary['failed']),
        '',
    ]
    table = []
    decisions = []
    for row in report['nodes']:
        before, after = row.get('before'), row.get('after')
        if before is None:
            table.append([row['host'], row['status'], '-', '-', '-', '-', '-', row.get('error')])
            continue
        table.append([
            row['host'], row['status'], _change(before, after, 'verdict', _cell),
            _change(before, after, 'dying', _count), _change(before, after, 'slab_kb', _count),
            _change(before, after, 'root_read_ms', _ms),
            ', '.join(str(level) for level in row['levels']) or '-', row.get('error'),
        ])
        if row.get('decision'):
            decisions.append('- %s: %s' % (row['host'], row['decision']))
    lines.append(markdown_table(
        ['Host', 'Status', 'Verdict', 'Dying memcgs', 'Slab kB', 'root memory.stat', 'Levels', 'Error'], table))
    if decisions:
        lines.extend(['', '## Decisions', ''] + decisions)
    return '\n'.join(lines) + '\n'


UPGRADE_SCHEMA_VERSION = 1
UPGRADE_STATUSES = ('upgraded', 'resumed', 'failed', 'planned', 'already_fixed', 'blocked', 'not_started',
                    'unreachable')
UPGRADE_STEPS = ('cordon', 'drain', 'boot', 'ready', 'finalize', 'uncordon')


def _seconds_between(start, end):
    """Seconds between two Unix timestamps, rounded to 0.1; None when either is missing."""
    if start is None or end is None:
        return None
    return round(float(end) - float(start), 1)


def upgrade_timeline(marks):
    """[{step, started, ended, seconds}] from marks [{'step': 'start'|step, 'at': unix time}]; pure.

    Each step starts when the step before it ended: marks are taken once, after each step.
    """
    timeline = []
    previous = None
    for mark in marks or []:
        if mark['step'] != 'start' and previous is not None:
            timeline.append({'step': mark['step'], 'started': previous, 'ended': mark['at'],
                             'seconds': _seconds_between(previous, mark['at'])})
        previous = mark['at']
    return timeline


def upgrade_node_row(host, node_name, state):
    """One report row from a host's kernel_upgrade_result fact (None: never reached)."""
    state = state or {}
    row = {
        'host': host,
        'node': node_name,
        # 'pending' or 'resume': planned for this run, but the rollout stopped before it reached the node.
        'status': 'not_started' if state.get('status') in (None, 'pending', 'resume') else state['status'],
        # why the node was resumed (left by an earlier run, or its boot default not fixed); None otherwise
        'resumed': state.get('resumed') or None,
        'kernel_before': state.get('kernel_before'),
        'kernel_after': state.get('kernel_after'),
        'failed_step': state.get('failed_step'),
        'error': state.get('error') or None,
        'admin_cordoned': bool(state.get('admin_cordoned')),
        'left_cordoned': bool(state.get('left_cordoned')),
        'timeline': upgrade_timeline(state.get('marks')),
    }
    row['seconds'] = sum(step['seconds'] or 0 for step in row['timeline']) if row['timeline'] else None
    return row


def upgrade_report(rows, generated_at, run_id):
    """The rollout report: counts by status, where it stopped (the first failed node), rows in order."""
    summary = dict((status, 0) for status in UPGRADE_STATUSES)
    summary['hosts'] = len(rows)
    stopped_at = None
    for row in rows:
        summary[row['status']] += 1
        if row['status'] == 'failed' and stopped_at is None:
            stopped_at = {'node': row['node'], 'step': row['failed_step'], 'error': row['error']}
    return {'schema_version': UPGRADE_SCHEMA_VERSION, 'generated_at': generated_at, 'run_id': run_id,
            'stopped_at': stopped_at, 'summary': summary, 'nodes': list(rows)}


def _timeline_cell(row):
    return ', '.join('%s %ss' % (step['step'], step['seconds']) for step in row['timeline']) or '-'


def upgrade_markdown(report):
    """The rollout report as Markdown: outcome line, a row per node with its timeline."""
    summary = report['summary']
    stopped = report.get('stopped_at')
    outcome = ('Stopped at node %s, step %s: %s' % (stopped['node'], stopped['step'], stopped['error'])
               if stopped else 'Completed.')
    lines = [
        '# Kernel upgrade report',
        '',
        'Run %s, generated %s. %s' % (report['run_id'], report['generated_at'], outcome),
        '',
        '%d hosts: %d upgraded, %d resumed, %d failed, %d planned, %d already fixed, %d blocked, %d not started, '
        '%d unreachable.' % (
            summary['hosts'], summary['upgraded'], summary['resumed'], summary['failed'], summary['planned'],
            summary['already_fixed'], summary['blocked'], summary['not_started'], summary['unreachable']),
        '',
    ]
    table = []
    for row in report['nodes']:
        kernel = row['kernel_before'] or '-'
        if row['kernel_after'] and row['kernel_after'] != row['kernel_before']:
            kernel = '%s -> %s' % (kernel, row['kernel_after'])
        notes = '; '.join(text for text in (row.get('resumed'), row['error']) if text)
        if row['admin_cordoned']:
            notes = (notes + '; ' if notes else '') + 'cordoned by an admin before the run: left cordoned'
        elif row['left_cordoned']:
            notes = (notes + '; ' if notes else '') + 'left cordoned'
        table.append([row['node'], row['status'], kernel, row['failed_step'], _timeline_cell(row), notes])
    lines.append(markdown_table(['Node', 'Status', 'Kernel', 'Failed step', 'Timeline', 'Notes'], table))
    return '\n'.join(lines) + '\n'
