# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""prometheus_brake against a small HTTP server on 127.0.0.1 that answers as Prometheus does (or fails)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import socket
import threading
import time

from unittest import mock

import pytest
import yaml

from ansible.module_utils import basic

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ansible_collections.nodeops.memcg.plugins.modules import prometheus_brake
from ansible_collections.nodeops.memcg.tests.unit.utils.module_harness import run_module

TOKEN = 'tok-0123456789abcdef'
FIRING = {'status': 'success', 'data': {'resultType': 'vector', 'result': [
    {'metric': {'__name__': 'ALERTS', 'alertname': 'NodeDown', 'alertstate': 'firing', 'instance': 'n9'},
     'value': [1700000000.0, '1']}]}}
NONE = {'status': 'success', 'data': {'resultType': 'vector', 'result': []}}


class Prometheus(BaseHTTPRequestHandler):
    answers = {}
    seen = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.seen.append((self.path, dict(self.headers)))
        status, body, delay, headers = self.answers.get(self.path.split('?')[0], (404, {'status': 'error'}, 0, {}))
        time.sleep(delay)
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def prometheus():
    Prometheus.answers, Prometheus.seen = {}, []
    server = ThreadingHTTPServer(('127.0.0.1', 0), Prometheus)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%d' % server.server_address[1], Prometheus
    server.shutdown()
    server.server_close()


def ask(args):
    return run_module(prometheus_brake.main, args)


def test_no_series_lets_the_rollout_go_on(prometheus):
    url, handler = prometheus
    handler.answers['/api/v1/query'] = (200, NONE, 0, {})
    result, failed = ask({'url': url + '/'})
    assert not failed, result
    assert (result['engaged'], result['message'], result['error'], result['counted']) == (False, None, None, 0)
    assert result['changed'] is False and result['url'] == url + '/'
    path, headers = handler.seen[0]
    assert path == '/api/v1/query?query=ALERTS%7Balertstate%3D%22firing%22%2Calertname%21~%22Watchdog%7CInfoInhibitor%22%7D'
    assert 'Authorization' not in headers
    assert set(result) - {'changed'} <= set(yaml.safe_load(prometheus_brake.RETURN))


def test_a_firing_alert_engages_the_brake_and_the_token_goes_in_the_header_only(prometheus):
    url, handler = prometheus
    handler.answers['/prom/api/v1/query'] = (200, FIRING, 0, {})
    result, failed = ask({'url': url + '/prom', 'query': 'ALERTS', 'bearer_token': TOKEN})
    assert not failed, result
    assert result['engaged'] is True and result['alerts'] == ['NodeDown']
    assert result['message'] == ('the Prometheus brake is engaged: the query ALERTS returned 1 series: '
                                 'NodeDown (instance=n9)')
    assert handler.seen[0][1]['Authorization'] == 'Bearer ' + TOKEN
    assert TOKEN not in json.dumps(result)


def test_the_token_option_is_no_log():
    specs = []
    real = basic.AnsibleModule.__init__

    def init(self, argument_spec, **kwargs):
        specs.append(argument_spec)
        real(self, argument_spec=argument_spec, **kwargs)
    with mock.patch.object(basic.AnsibleModule, '__init__', init):
        ask({'url': 'http://127.0.0.1:9', 'timeout': 0})
    assert specs[0]['bearer_token'] == {'type': 'str', 'no_log': True}


def test_the_alertname_regex_filters_the_series(prometheus):
    url, handler = prometheus
    handler.answers['/api/v1/query'] = (200, FIRING, 0, {})
    result, failed = ask({'url': url, 'alertname_regex': 'Kube.*'})
    assert not failed and result['engaged'] is False and result['ignored'] == ['NodeDown']


@pytest.mark.parametrize('answer, error', [
    ((400, {'status': 'error', 'errorType': 'bad_data', 'error': 'parse error'}, 0, {}),
     'Prometheus refused the query (HTTP 400, bad_data): parse error'),
    ((503, b'upstream connect error', 0, {}), 'Prometheus answered HTTP 503 without a JSON document'),
    ((302, NONE, 0, {'Location': 'http://u:pw@elsewhere:9090/api/v1/query?x=1'}),
     'Prometheus redirected the query (HTTP 302 to http://elsewhere:9090/api/v1/query); set the URL it redirects to'),
    ((200, NONE, 2, {}), 'no answer within 1s'),
])
def test_a_prometheus_that_cannot_be_asked_engages_the_brake(prometheus, answer, error):
    url, handler = prometheus
    handler.answers['/api/v1/query'] = answer
    result, failed = ask({'url': url, 'timeout': 1, 'bearer_token': TOKEN})
    assert not failed, result
    assert result['engaged'] is True
    assert result['error'].startswith('could not query Prometheus at %s: %s' % (url, error)), result['error']
    assert result['message'].startswith('the Prometheus brake cannot be evaluated, so it holds (fail-safe): ')
    assert len(handler.seen) == 1 and 'pw' not in result['error']


def test_nothing_listening_engages_the_brake():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    result, failed = ask({'url': 'http://127.0.0.1:%d' % port, 'timeout': 2})
    assert not failed and result['engaged'] is True
    assert 'ConnectionRefusedError' in result['error']


@pytest.mark.parametrize('args, message', [
    ({'url': 'http://admin:s3cret@127.0.0.1:9'}, 'url must not carry credentials'),
    ({'url': 'http://127.0.0.1:9', 'ca_path': '/etc/ssl/certs/ca.pem'}, 'ca_path is for an https:// URL'),
    ({'url': 'http://127.0.0.1:9', 'timeout': 0}, 'timeout must be between 1 and 300 seconds, got 0'),
    ({'url': 'http://127.0.0.1:9', 'query': ' '}, "query must be a PromQL query, got ' '"),
    ({'url': 'http://127.0.0.1:9', 'alertname_regex': '['}, 'alertname_regex is not a valid regular expression'),
])
def test_bad_options_fail_before_any_request(args, message):
    result, failed = ask(args)
    assert failed and result['msg'].startswith(message), result['msg']
    assert 's3cret' not in result['msg']
