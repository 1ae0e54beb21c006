# -*- coding: utf-8 -*-
"""playbooks/upgrade.yml: the maintenance window and the webhook, against the fake Kubernetes API.

Same harness as test_upgrade_playbook.py (real kubectl, the fake API, every node this machine over
the local connection). The webhook receiver is a stdlib HTTP server on 127.0.0.1 that records the
POSTs. The window that closes between batches is a real one: it ends with the current minute (or
the next), and the first batch's node procedure waits until it has closed; the role has no
test-only clock variable.
"""

from __future__ import annotations

import datetime
import http.server
import json
import socket
import threading
import zoneinfo

import pytest

from test_upgrade_playbook import (NEW, OLD, PROCEDURE, annotations, changes, cluster, lease_holder,
                                   node_patches, report, upgrade)

pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']

SECRET = 'T0KEN-in-the-webhook-path'


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST (path, content type, raw and parsed body)."""

    def __init__(self):
        self.posts = []
        posts = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the stdlib's name)
                raw = self.rfile.read(int(self.headers.get('Content-Length') or 0))
                posts.append({'path': self.path, 'content_type': self.headers.get('Content-Type'),
                              'raw': raw.decode('utf-8'), 'body': json.loads(raw or b'null')})
                self.send_response(200)
                self.send_header('Content-Type', 'text/plain')
                self.send_header('Content-Length', '2')
                self.end_headers()
                self.wfile.write(b'ok')

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d/hooks/%s' % (self.server.server_address[1], SECRET)
        self.thread = threading.Thread(target=self.server.serve_forever, name='webhook-receiver', daemon=True)
        self.thread.start()

    def events(self):
        return [post['body']['event'] for post in self.posts]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def receiver():
    hook = Receiver()
    yield hook
    hook.stop()


@pytest.fixture
def dead_url():
    """A loopback URL nothing listens on: a port the kernel gave out, closed again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return 'http://127.0.0.1:%d/hooks/%s' % (port, SECRET)


@pytest.fixture
def rollout(ansible_env, kube_env, fake_kube, kubeconfig, kubectl_bin, tmp_path):
    def run(nodes, *flags, **extra):
        return upgrade(ansible_env, kube_env, fake_kube, kubeconfig, kubectl_bin, tmp_path, nodes, *flags, **extra)
    return run


def hhmm(moment):
    return moment.strftime('%H:%M')


def assert_no_secret(receiver, kubeconfig, output):
    """Bodies carry neither the kubeconfig (path or token) nor the URL; the job output not the URL."""
    with open(kubeconfig) as handle:
        tokens = [line.split(':', 1)[1].strip() for line in handle if line.strip().startswith('token:')]
    for post in receiver.posts:
        assert kubeconfig not in post['raw'] and SECRET not in post['raw']
        assert all(token not in post['raw'] for token in tokens if token)
    assert SECRET not in output


def test_closed_window_refuses_to_start_with_no_api_write(rollout, fake_kube, receiver, tmp_path):
    nodes = ['n1', 'n2']
    cluster(fake_kube, nodes)
    berlin = zoneinfo.ZoneInfo('Europe/Berlin')
    now = datetime.datetime.now(berlin)
    start, end = now + datetime.timedelta(hours=2), now + datetime.timedelta(hours=3)
    window = dict(kernel_upgrade_window_start=hhmm(start), kernel_upgrade_window_end=hhmm(end),
                  kernel_upgrade_window_timezone='Europe/Berlin', kernel_upgrade_webhook_url=receiver.url)
    opens = start.replace(second=0, microsecond=0).isoformat()

    refused = rollout(nodes, **window)
    assert refused.returncode != 0
    assert 'not starting run' in refused.stdout and '(2 nodes to upgrade)' in refused.stdout
    assert ('outside the maintenance window every day %s-%s Europe/Berlin' % (hhmm(start), hhmm(end))
            in refused.stdout)
    assert 'the window next opens %s' % opens in refused.stdout
    assert fake_kube.mutations == [] and not lease_holder(fake_kube)
    assert receiver.posts == []  # no rollout started: no notification

    # Check mode shows the plan and says a real run would be refused; no write, no notification.
    checked = rollout(nodes, '--check', **window)
    assert checked.returncode == 0, checked.stdout
    assert 'Check mode: a real run would be refused now, outside the maintenance window' in checked.stdout
    assert 'Check mode: a real run would stop before n1' in checked.stdout
    assert changes(fake_kube) == [] and receiver.posts == []

    # Nothing to do: a closed window is no reason to fail.
    for name in nodes:
        fake_kube.set_node_ready(name, True, kernel=NEW)
    idle = rollout(nodes, **window)
    assert idle.returncode == 0, idle.stdout
    assert 'nothing to do' in idle.stdout
    assert changes(fake_kube) == [] and receiver.posts == []


def test_bad_window_values_are_named(rollout, fake_kube):
    # every bad value is named (unit tests); here: the run fails on one, even with nothing to do
    cluster(fake_kube, ['n1'], kernel=NEW)
    result = rollout(['n1'], kernel_upgrade_window_days=['mon', 'Funday'])
    assert result.returncode != 0
    assert "kernel_upgrade_window_days: unknown day 'Funday'" in result.stdout
    assert fake_kube.mutations == []


SLOW_PROCEDURE = """---
# The first batch outlasts the maintenance window: phase boot waits until it has closed.
- name: Wait until the maintenance window has closed
  ansible.builtin.wait_for:
    timeout: "{{ [fake_window_closes | float - now().timestamp() + 1, 1] | max | round(0, 'ceil') | int }}"
  delegate_to: localhost
  when: kernel_upgrade_node_phase == 'boot'

- name: The fake reboot
  ansible.builtin.include_tasks: %s
""" % PROCEDURE


def test_window_closing_between_batches_stops_after_the_first_batch(rollout, fake_kube, receiver, tmp_path, kubeconfig):
    nodes = ['n1', 'n2', 'n3', 'n4']
    cluster(fake_kube, nodes)
    procedure = tmp_path / 'slow_procedure.yml'
    procedure.write_text(SLOW_PROCEDURE)
    # A window in Kolkata (+05:30) whose last minute is this one, or the next when this one is
    # nearly over (the plan and the first batch's start need a few seconds inside it).
    kolkata = zoneinfo.ZoneInfo('Asia/Kolkata')
    now = datetime.datetime.now(kolkata)
    last = now.replace(second=0, microsecond=0)
    if now.second >= 35:
        last += datetime.timedelta(minutes=1)
    closes = last + datetime.timedelta(minutes=1)
    result = rollout(nodes, kernel_upgrade_batch=2, kernel_upgrade_node_procedure=str(procedure),
                     kernel_upgrade_window_days=['Mon', 'TUE', 'wed', 'thu', 'fri', 'sat', 'sun'],
                     kernel_upgrade_window_start=hhmm(last - datetime.timedelta(minutes=10)),
                     kernel_upgrade_window_end=hhmm(last), kernel_upgrade_window_timezone='Asia/Kolkata',
                     kernel_upgrade_webhook_url=receiver.url, fake_window_closes=closes.timestamp())
    assert result.returncode != 0
    assert 'stopped before node n3, step window: outside the maintenance window' in result.stdout, result.stdout
    assert 'none is left cordoned' in result.stdout
    for name in ('n1', 'n2'):
        assert fake_kube.node(name)['status']['nodeInfo']['kernelVersion'] == NEW
    for name in ('n3', 'n4'):
        assert fake_kube.node(name)['status']['nodeInfo']['kernelVersion'] == OLD
        assert node_patches(fake_kube, name) == []
    for name in nodes:
        assert not fake_kube.node(name)['spec'].get('unschedulable'), name
        assert not any(key.startswith('nodeops.memcg/') for key in annotations(fake_kube, name)), name
    assert not lease_holder(fake_kube)

    doc, rows = report(tmp_path)
    assert doc['stopped_at']['node'] == 'n3' and doc['stopped_at']['step'] == 'window'
    assert 'outside the maintenance window' in doc['stopped_at']['error']
    assert [rows[name]['status'] for name in nodes] == ['upgraded', 'upgraded', 'not_started', 'not_started']
    assert doc['summary']['upgraded'] == 2 and doc['summary']['not_started'] == 2

    assert receiver.events() == ['started', 'stopped']
    stopped = receiver.posts[1]['body']
    assert stopped['stopped_at'] == doc['stopped_at'] and stopped['summary'] == doc['summary']
    assert stopped['run_id'] == doc['run_id'] and 'stopped before node n3' in stopped['text']
    assert_no_secret(receiver, kubeconfig, result.stdout)


def test_webhook_started_and_finished_on_success(rollout, fake_kube, receiver, tmp_path, kubeconfig):
    nodes = ['n1', 'n2']
    cluster(fake_kube, nodes)
    result = rollout(nodes, kernel_upgrade_batch=2, kernel_upgrade_webhook_url=receiver.url)
    assert result.returncode == 0, result.stdout
    doc = report(tmp_path)[0]
    assert receiver.events() == ['started', 'finished']
    started, finished = (post['body'] for post in receiver.posts)
    for post in receiver.posts:
        assert post['path'] == '/hooks/' + SECRET and post['content_type'].startswith('application/json')
        assert set(post['body']) == {'event', 'run_id', 'text', 'summary', 'stopped_at'}
        assert post['body']['run_id'] == doc['run_id'] and '\n' not in post['body']['text']
        assert post['body']['stopped_at'] is None
    assert started['summary'] == {'hosts': 2, 'to_upgrade': 2, 'already_fixed': 0, 'nodes': ['n1', 'n2']}
    assert started['text'].startswith('Kernel upgrade %s started: 2 of 2 nodes' % doc['run_id'])
    assert finished['summary'] == doc['summary'] and finished['summary']['upgraded'] == 2
    assert 'finished: 2 of 2 nodes upgraded' in finished['text']
    assert_no_secret(receiver, kubeconfig, result.stdout)


def test_webhook_stopped_on_a_pdb_failure_names_node_and_step(rollout, fake_kube, receiver, tmp_path, kubeconfig):
    nodes = ['n1', 'n2']
    cluster(fake_kube, nodes)
    fake_kube.add_pod('db-0', 'n1', owner='StatefulSet/db', labels={'app': 'db'})
    fake_kube.add_pdb('db', match_labels={'app': 'db'}, min_available=1)
    result = rollout(nodes, kernel_upgrade_drain_timeout=5, kernel_upgrade_webhook_url=receiver.url,
                     kernel_upgrade_preflight_drain='warn')
    assert result.returncode != 0 and 'stopped at node n1, step drain' in result.stdout
    assert receiver.events() == ['started', 'stopped']
    stopped = receiver.posts[1]['body']
    assert stopped['stopped_at']['node'] == 'n1' and stopped['stopped_at']['step'] == 'drain'
    assert 'db-0' in stopped['stopped_at']['error']
    assert stopped['text'].startswith('Kernel upgrade %s stopped at node n1, step drain: ' % stopped['run_id'])
    assert stopped['summary']['failed'] == 1 and stopped['summary']['not_started'] == 1
    assert stopped['stopped_at'] == report(tmp_path)[0]['stopped_at']
    assert_no_secret(receiver, kubeconfig, result.stdout)


def test_dead_webhook_does_not_fail_the_rollout(rollout, fake_kube, dead_url, tmp_path):
    cluster(fake_kube, ['n1'])
    result = rollout(['n1'], kernel_upgrade_webhook_url=dead_url, kernel_upgrade_webhook_timeout=3)
    assert result.returncode == 0, result.stdout
    assert 'WARNING: the webhook was not notified of started' in result.stdout
    assert 'WARNING: the webhook was not notified of finished' in result.stdout
    assert fake_kube.node('n1')['status']['nodeInfo']['kernelVersion'] == NEW
    assert report(tmp_path)[0]['summary']['upgraded'] == 1
    assert SECRET not in result.stdout
