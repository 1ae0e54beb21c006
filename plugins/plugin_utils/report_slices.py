# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Slice reports of a sliced detect or mitigate run merged into one fleet report; pure, controller side.

AWX job slicing (docs/awx.md) runs a job template as N jobs, each on its own part of the inventory;
each job writes the report of its part, tagged with the name of the slice (its AWX job id). The
merge checks that the slices cover the expected hosts exactly once and recounts the summary with the
same code that builds an unsliced report, so both have one schema (docs/report.md, docs/mitigate.md).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.nodeops.memcg.plugins.plugin_utils import report
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

# kind -> (schema version of its reports, the statuses its rows have, the function that builds a report from rows)
KINDS = {
    'detect': (report.DETECT_SCHEMA_VERSION, ('probed', 'unreachable', 'failed'), report.detect_report),
    'mitigate': (report.MITIGATE_SCHEMA_VERSION, report.MITIGATE_STATUSES, report.mitigate_report),
}
_SHOWN = 20  # host names listed in an error before "and N more"


def _names(names):
    names = sorted(names)
    shown = ', '.join(names[:_SHOWN])
    return shown + (' and %d more' % (len(names) - _SHOWN) if len(names) > _SHOWN else '')


def _checked_slice(kind, partial):
    """The slice's name and rows; MemcgError naming what is wrong with a slice report."""
    if not isinstance(partial, dict) or not isinstance(partial.get('slice'), dict) or not partial['slice'].get('name'):
        raise MemcgError('not a %s slice report (no slice name): %.200r' % (kind, partial))
    name = str(partial['slice']['name'])
    schema_version, statuses = KINDS[kind][:2]
    if partial.get('schema_version') != schema_version or not isinstance(partial.get('nodes'), list):
        raise MemcgError('%s slice %s is not a %s report of schema_version %d (schema_version %r)'
                         % (kind, name, kind, schema_version, partial.get('schema_version')))
    for row in partial['nodes']:
        if not isinstance(row, dict) or row.get('status') not in statuses:
            raise MemcgError('%s slice %s: %.200r is not a %s report row' % (kind, name, row, kind))
    return name, partial['nodes']


def merge_slices(kind, partials, hosts, generated_at):
    """One fleet report from the slice reports of a `kind` (detect, mitigate) run.

    `hosts` are the hosts the whole run covers (the merge play's hosts: the inventory and the limit);
    each must be in exactly one slice. Slices without hosts are fine (AWX can cut one when a limit
    leaves none of its hosts). MemcgError names a slice given twice, a host in two slices, the hosts
    no slice reported and hosts a slice reported that the run does not cover.
    """
    if kind not in KINDS:
        raise MemcgError('kind must be one of %s, got %r' % (', '.join(sorted(KINDS)), kind))
    if not partials:
        raise MemcgError('no %s slice reports to merge' % kind)
    slices, names, rows, slice_of = [], set(), [], {}
    for partial in partials:
        name, nodes = _checked_slice(kind, partial)
        if name in names:
            raise MemcgError('%s slice %s is given twice' % (kind, name))
        for row in nodes:
            if row['host'] in slice_of:
                raise MemcgError('host %s is in %s slices %s and %s: the slices overlap'
                                 % (row['host'], kind, slice_of[row['host']], name))
            slice_of[row['host']] = name
            rows.append(row)
        names.add(name)
        slices.append({'name': name, 'hosts': len(nodes), 'generated_at': partial.get('generated_at')})
    missing = set(hosts) - set(slice_of)
    if missing:
        raise MemcgError('no %s slice report covers %d of %d hosts: %s (slices merged: %s). A slice job failed '
                         'before its report, or its artifacts did not reach this job'
                         % (kind, len(missing), len(set(hosts)), _names(missing),
                            ', '.join(entry['name'] for entry in slices)))
    extra = set(slice_of) - set(hosts)
    if extra:
        raise MemcgError('%s slices report hosts this run does not cover: %s (in slices %s)'
                         % (kind, _names(extra), ', '.join(sorted(set(slice_of[host] for host in extra)))))
    merged = KINDS[kind][2](rows, generated_at)
    merged['slices'] = sorted(slices, key=lambda entry: entry['name'])
    return merged
