# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn detect/mitigate facts into fleet reports and Prometheus textfile content."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeops.memcg.plugins.module_utils import brakes, metrics
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.plugin_utils import report, rollout


def _filter_error(function):
    """The filter with MemcgError (a bad value, named in the message) raised as AnsibleFilterError."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except MemcgError as error:
            raise AnsibleFilterError(str(error))
    return wrapper


def _each_host(hosts, hostvars, name):
    """(host, the host's variable name or None) for every host.

    Through Ansible's HostVars, raw_get() reads the host's variables without templating them: the
    results a role registers are data, and templating a whole module result costs about as much as
    building the host's variables (benchmarks/bench_fleet.py, docs/benchmarks.md). Any other
    mapping (tests) is read as is.
    """
    read = getattr(hostvars, 'raw_get', hostvars.__getitem__)
    for host in hosts:
        yield host, read(host).get(name)


def detect_report(hosts, hostvars, generated_at):
    """Build the fleet report from each host's detect_result (the memcg_probe result it registered)."""
    rows = [report.detect_node_row(host, result) for host, result in _each_host(hosts, hostvars, 'detect_result')]
    return report.detect_report(rows, generated_at)


def detect_markdown(fleet_report):
    """Render a fleet report as Markdown."""
    return report.detect_markdown(fleet_report)


def mitigate_report(hosts, hostvars, generated_at):
    """Build the fleet mitigation report from each host's mitigate_result fact."""
    rows = [report.mitigate_node_row(host, result) for host, result in _each_host(hosts, hostvars, 'mitigate_result')]
    return report.mitigate_report(rows, generated_at)


def mitigate_markdown(fleet_report):
    """Render a mitigation report as Markdown."""
    return report.mitigate_markdown(fleet_report)


def upgrade_report(hosts, hostvars, generated_at, run_id):
    """Build the rollout report from each host's kernel_upgrade_result fact, in inventory order."""
    rows = []
    for host, state in _each_host(hosts, hostvars, 'kernel_upgrade_result'):
        state = state or {}
        rows.append(report.upgrade_node_row(host, state.get('node') or host, state))
    return report.upgrade_report(rows, generated_at, run_id)


def upgrade_batches(nodes, batch):
    """Cut nodes into the batches the rollout play's serial makes."""
    return rollout.plan_batches(nodes, batch)


def upgrade_node_state(name, running, boot_default=None, marks=None):
    """What the rollout does with one node; status 'stop' (with why) where its state cannot be reconciled."""
    try:
        return rollout.node_rollout_state(name, running, boot_default, marks)
    except MemcgError as exc:
        return {'status': 'stop', 'resume_from': None, 'target': None, 'why': str(exc)}


def upgrade_lock_ttl_check(ttl, waits):
    """None when the lock TTL outlasts the longest wait between two renewals, else why not (with the numbers)."""
    return rollout.lock_ttl_check(ttl, waits)


def upgrade_capacity_check(nodes, batch, finished, max_unavailable):
    """Whether the next batch fits the budget of unavailable nodes, from the nodes as read now."""
    return rollout.capacity_check(nodes, batch, finished, max_unavailable)


def upgrade_room_check(nodes, batch):
    """Whether the nodes that stay schedulable have room for the pods the batch would evict (requests)."""
    return rollout.room_check(nodes, batch)


def upgrade_brakes_check(settings):
    """Every problem of the brake settings (the role's variables without the prefix), each naming its value."""
    return brakes.check_settings(settings)


def upgrade_blocking_pods(nodes, batch, selector):
    """The nodes of the batch that run a pod the blocking-pod selector matched: {node: why it is kept out}."""
    return dict((node, brakes.kept_out_message(node, pods, selector))
                for node, pods in brakes.blocking_pods(nodes, batch).items())


def upgrade_markdown(fleet_report):
    """Render a rollout report as Markdown."""
    return report.upgrade_markdown(fleet_report)


def prometheus_textfile(probe, timestamp):
    """Render a memcg_probe result for the node_exporter textfile collector."""
    return metrics.render_textfile(probe, timestamp)


class FilterModule(object):
    def filters(self):
        filters = {
            'detect_report': detect_report,
            'detect_markdown': detect_markdown,
            'mitigate_report': mitigate_report,
            'mitigate_markdown': mitigate_markdown,
            'upgrade_report': upgrade_report,
            'upgrade_markdown': upgrade_markdown,
            'upgrade_batches': upgrade_batches,
            'upgrade_node_state': upgrade_node_state,
            'upgrade_lock_ttl_check': upgrade_lock_ttl_check,
            'upgrade_capacity_check': upgrade_capacity_check,
            'upgrade_room_check': upgrade_room_check,
            'upgrade_brakes_check': upgrade_brakes_check,
            'upgrade_blocking_pods': upgrade_blocking_pods,
            'prometheus_textfile': prometheus_textfile,
        }
        return dict((name, _filter_error(function)) for name, function in filters.items())
