# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The brakes' pure decisions, with plain inputs: URL, answer, decision, selector, blocking pods, settings."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils import brakes
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

# ---------------------------------------------------------------- the URL


@pytest.mark.parametrize('url, split', [
    ('http://127.0.0.1:9090', {'scheme': 'http', 'host': '127.0.0.1', 'port': 9090, 'path': ''}),
    ('https://prom.example.com/prometheus/', {'scheme': 'https', 'host': 'prom.example.com', 'port': 443,
                                              'path': '/prometheus'}),
    ('http://[::1]:9090/', {'scheme': 'http', 'host': '::1', 'port': 9090, 'path': ''}),
    ('http://prometheus.monitoring.svc', {'scheme': 'http', 'host': 'prometheus.monitoring.svc', 'port': 80,
                                          'path': ''}),
])
def test_prometheus_url_splits_a_good_url(url, split):
    assert brakes.prometheus_url(url) == split


@pytest.mark.parametrize('url, message', [
    ('', "kernel_upgrade_prometheus_url must be an http:// or https:// URL, got ''"),
    ('ftp://prom:21', 'kernel_upgrade_prometheus_url must be an http:// or https:// URL with a host, got ftp://prom:21'),
    ('prometheus:9090', 'kernel_upgrade_prometheus_url must be an http:// or https:// URL with a host'),
    ('http://admin:s3cret@prom:9090', 'kernel_upgrade_prometheus_url must not carry credentials'),
    ('http://prom:9090/?token=s3cret', 'kernel_upgrade_prometheus_url must be the base URL of Prometheus'),
    ('http://prom:99999', 'kernel_upgrade_prometheus_url is not a valid URL'),
])
def test_prometheus_url_refuses_a_bad_url_without_showing_credentials(url, message):
    with pytest.raises(MemcgError) as raised:
        brakes.prometheus_url(url)
    assert str(raised.value).startswith(message)
    assert 's3cret' not in str(raised.value)


def test_redact_url_keeps_scheme_host_port_and_path_only():
    assert brakes.redact_url('https://u:pw@prom.example.com:8443/p/?q=1#x') == 'https://prom.example.com:8443/p/'
    assert brakes.redact_url('nonsense') == '<not a URL>'


def test_query_path_encodes_the_query_under_the_prefix():
    base = brakes.prometheus_url('http://prom/prom')
    assert brakes.query_path(base, 'ALERTS{alertstate="firing"}') == (
        '/prom/api/v1/query?query=ALERTS%7Balertstate%3D%22firing%22%7D')


# ---------------------------------------------------------------- the answer

FIRING = {'status': 'success', 'data': {'resultType': 'vector', 'result': [
    {'metric': {'__name__': 'ALERTS', 'alertname': 'NodeDown', 'alertstate': 'firing', 'instance': 'n9',
                'severity': 'critical'}, 'value': [1700000000.1, '1']},
    {'metric': {'__name__': 'ALERTS', 'alertname': 'KubeCPUOvercommit', 'alertstate': 'firing',
                'severity': 'warning'}, 'value': [1700000000.1, '1']}]}}


def test_parse_answer_returns_each_series_with_labels_and_value():
    series = brakes.parse_answer(200, json.dumps(FIRING).encode())
    assert series[0] == {'labels': {'__name__': 'ALERTS', 'alertname': 'NodeDown', 'alertstate': 'firing',
                                    'instance': 'n9', 'severity': 'critical'}, 'value': '1'}
    assert len(series) == 2
    empty = {'status': 'success', 'data': {'resultType': 'vector', 'result': []}}
    assert brakes.parse_answer(200, json.dumps(empty)) == []
    matrix = {'status': 'success', 'data': {'resultType': 'matrix', 'result': [
        {'metric': {'job': 'x'}, 'values': [[1, '0'], [2, '3']]}]}}
    assert brakes.parse_answer(200, json.dumps(matrix)) == [{'labels': {'job': 'x'}, 'value': '3'}]


@pytest.mark.parametrize('status, body, message', [
    (400, {'status': 'error', 'errorType': 'bad_data', 'error': '1:8: parse error: unexpected "}"'},
     'Prometheus refused the query (HTTP 400, bad_data): 1:8: parse error: unexpected "}"'),
    (503, '<html>Service Unavailable</html>', 'Prometheus answered HTTP 503 without a JSON document: <html>'),
    (200, {'status': 'success', 'data': {'resultType': 'scalar', 'result': [1, '1']}},
     'the query returned a scalar, not a list of series'),
    (502, {'status': 'success', 'data': {}}, 'Prometheus answered HTTP 502'),
])
def test_parse_answer_says_what_went_wrong(status, body, message):
    with pytest.raises(MemcgError) as raised:
        brakes.parse_answer(status, body if isinstance(body, str) else json.dumps(body))
    assert str(raised.value).startswith(message)


# ---------------------------------------------------------------- the decision

def test_no_series_releases_the_brake():
    assert brakes.brake_decision([], 'ALERTS') == {'engaged': False, 'message': None, 'alerts': [], 'counted': 0,
                                                   'ignored': []}


def test_firing_alerts_engage_the_brake_naming_each_alert_and_its_labels():
    decision = brakes.brake_decision(brakes.parse_answer(200, json.dumps(FIRING)), 'ALERTS{alertstate="firing"}')
    assert decision['engaged'] is True and decision['alerts'] == ['KubeCPUOvercommit', 'NodeDown']
    assert decision['message'] == (
        'the Prometheus brake is engaged: the query ALERTS{alertstate="firing"} returned 2 series: '
        'KubeCPUOvercommit (severity=warning); NodeDown (instance=n9, severity=critical)')


def test_the_alertname_regex_counts_only_the_alerts_it_matches_whole():
    series = brakes.parse_answer(200, json.dumps(FIRING))
    decision = brakes.brake_decision(series, 'ALERTS', alertname_regex='Node.*')
    assert decision['alerts'] == ['NodeDown'] and decision['ignored'] == ['KubeCPUOvercommit']
    assert "returned 1 series with an alertname matching 'Node.*': NodeDown" in decision['message']
    # anchored at both ends, as PromQL's =~: 'Node' alone matches neither
    assert brakes.brake_decision(series, 'ALERTS', alertname_regex='Node')['engaged'] is False
    assert brakes.brake_decision(series, 'ALERTS', alertname_regex='Down')['engaged'] is False


def test_series_without_alertname_are_named_by_their_labels_and_many_are_counted():
    series = [{'labels': {'job': 'node', 'instance': 'n%d' % i}, 'value': '0'} for i in range(12)]
    decision = brakes.brake_decision(series, 'up == 0')
    assert decision['counted'] == 12
    assert decision['message'].startswith('the Prometheus brake is engaged: the query up == 0 returned 12 series: '
                                          '{instance=n0, job=node}; {instance=n1, job=node}')
    assert decision['message'].endswith('; and 2 more')


def test_an_error_engages_the_brake_fail_safe():
    decision = brakes.brake_decision(None, 'ALERTS', error='could not query Prometheus at http://p:9090: refused')
    assert decision['engaged'] is True
    assert decision['message'] == ('the Prometheus brake cannot be evaluated, so it holds (fail-safe): could not '
                                   'query Prometheus at http://p:9090: refused')


def test_a_bad_alertname_regex_is_named():
    with pytest.raises(MemcgError) as raised:
        brakes.alertname_pattern('Node(')
    assert str(raised.value).startswith("kernel_upgrade_prometheus_alertname_regex is not a valid regular expression")
    assert str(raised.value).endswith("'Node('")


# ---------------------------------------------------------------- the blocking-pod selector

@pytest.mark.parametrize('selector', [
    'app=backup', 'app==backup', 'app!=backup', 'app', '!app', 'app in (backup, restore)', 'tier notin (web)',
    'nodeops.example/no-reboot=true,app=db', ' app = backup , !legacy ', 'example.com/prio>5', 'app=',
])
def test_label_selector_accepts_kubectl_grammar(selector):
    assert brakes.label_selector(selector) == selector.strip()


@pytest.mark.parametrize('selector', ['', '  ', 'app=back up', 'app in (a', 'app in a,b', '=x', 'app=x,',
                                      '--server=http://evil', 'app=' + 'x' * 64, 'a/b/c=d'])
def test_label_selector_refuses_a_bad_one_naming_it(selector):
    with pytest.raises(MemcgError) as raised:
        brakes.label_selector(selector)
    assert str(raised.value).startswith('kernel_upgrade_blocking_pod_selector ')


def test_blocking_pods_keeps_out_the_batch_nodes_running_a_matching_pod():
    nodes = [
        {'name': 'n1', 'pods': [{'namespace': 'db', 'name': 'backup-1', 'phase': 'Running'},
                                {'namespace': 'db', 'name': 'backup-0', 'phase': 'Pending'}]},
        {'name': 'n2', 'pods': [{'namespace': 'db', 'name': 'backup-old', 'phase': 'Succeeded'}]},
        {'name': 'n3', 'pods': [{'namespace': 'db', 'name': 'backup-2', 'phase': 'Running'}]},
        {'name': 'n4'},
    ]
    assert brakes.blocking_pods(nodes, ['n1', 'n2', 'n4']) == {'n1': ['db/backup-0', 'db/backup-1']}
    assert brakes.kept_out_message('n1', ['db/backup-0', 'db/backup-1'], 'app=backup') == (
        "kept out of this run: 2 pod(s) matching kernel_upgrade_blocking_pod_selector 'app=backup' run on n1: "
        'db/backup-0, db/backup-1')


# ---------------------------------------------------------------- every setting at once

GOOD = {'prometheus_url': 'http://127.0.0.1:9090', 'prometheus_query': brakes.DEFAULT_QUERY,
        'prometheus_alertname_regex': '', 'prometheus_timeout': 10, 'prometheus_ca_path': '',
        'blocking_pod_selector': 'app=backup', 'soak_seconds': 0, 'hooks_before_drain': ['/hooks/pre.yml'],
        'hooks_after_ready': [], 'exists': lambda path: path == '/hooks/pre.yml'}


def test_check_settings_passes_good_ones_and_the_defaults():
    assert brakes.check_settings(GOOD) == []
    assert brakes.check_settings({'prometheus_url': '', 'blocking_pod_selector': '', 'soak_seconds': 0,
                                  'hooks_before_drain': [], 'hooks_after_ready': []}) == []


def test_check_settings_names_every_bad_value():
    bad = dict(GOOD, prometheus_url='http://u:pw@prom', prometheus_query=' ', prometheus_alertname_regex='(',
               prometheus_timeout=0, prometheus_ca_path='/no/ca.pem', blocking_pod_selector='app in (x',
               soak_seconds=-5, hooks_before_drain=['hooks/relative.yml', '/hooks/missing.yml'],
               hooks_after_ready='/hooks/pre.yml')
    problems = brakes.check_settings(bad)
    assert [p.split(' ')[0].rstrip(':') for p in problems] == [
        'kernel_upgrade_prometheus_url', 'kernel_upgrade_prometheus_query', 'kernel_upgrade_prometheus_alertname_regex',
        'kernel_upgrade_prometheus_timeout', 'kernel_upgrade_prometheus_ca_path', 'kernel_upgrade_blocking_pod_selector',
        'kernel_upgrade_soak_seconds', 'kernel_upgrade_hooks_before_drain', 'kernel_upgrade_hooks_before_drain',
        'kernel_upgrade_hooks_after_ready']
    assert "'hooks/relative.yml' is not an absolute path" in problems[7]
    assert problems[8] == 'kernel_upgrade_hooks_before_drain: no such file on the controller: /hooks/missing.yml'
    assert 'pw' not in ' '.join(problems)
