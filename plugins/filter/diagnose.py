# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn diagnose facts into the fleet and per-node diagnosis reports."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.nodeops.memcg.plugins.plugin_utils import diagnose_report as report


def diagnose_report(hosts, hostvars, generated_at):
    """Build the fleet diagnosis report from each host's diagnose_result fact."""
    rows = [report.diagnose_node_row(host, hostvars[host].get('diagnose_result')) for host in hosts]
    return report.diagnose_report(rows, generated_at)


def diagnose_markdown(fleet_report):
    """Render a fleet diagnosis report as Markdown."""
    return report.diagnose_markdown(fleet_report)


def diagnose_node_markdown(row):
    """Render one node row of a diagnosis report as Markdown."""
    return report.diagnose_node_markdown(row)


def diagnose_report_files(fleet_report):
    """The report's files by name, for report_files (plugin_utils.diagnose_report.report_files)."""
    return report.report_files(fleet_report)


class FilterModule(object):
    def filters(self):
        return {
            'diagnose_report': diagnose_report,
            'diagnose_markdown': diagnose_markdown,
            'diagnose_node_markdown': diagnose_node_markdown,
            'diagnose_report_files': diagnose_report_files,
        }
