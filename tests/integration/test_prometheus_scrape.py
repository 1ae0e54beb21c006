# -*- coding: utf-8 -*-
"""A real scrape, end to end: Debian's node_exporter (textfile collector only) and Prometheus, both
started by the test on loopback ports and stopped by pid, with the collection's own rules loaded.

One Prometheus run, asserted many ways: the detect playbook writes the textfile and its metrics
arrive with the node's labels; the monitor-only node job (installed by the mitigate role under a
temporary prefix) writes it from a sick fixture root, an alert fires for the node, then from a
healthy one and the alert resolves; every panel query of the Grafana dashboard returns data.
The rules are the shipped ones with every `for:` cut to 0 s and 1 s evaluation, so the run takes
seconds, not the quarter hours the rules wait in production.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from conftest import REPO_ROOT, localhost_inventory, run_playbook
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree

RULES = os.path.join(REPO_ROOT, 'monitoring', 'prometheus', 'nodeops-memcg.rules.yml')
DASHBOARD = os.path.join(REPO_ROOT, 'monitoring', 'grafana', 'nodeops-memcg.json')
DETECT = os.path.join(REPO_ROOT, 'playbooks', 'detect.yml')
TIMER = os.path.join(REPO_ROOT, 'tests', 'integration', 'playbooks', 'heal_timer.yml')
NODE = socket.gethostname()
WAIT = 30


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def binary(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail('%s is missing: install the Debian packages prometheus and prometheus-node-exporter '
                    '(tests/install-system-packages.sh)' % name)
    return path


def get(url, **params):
    if params:
        url += '?' + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def wait_for(what, probe, timeout=WAIT):
    """Call probe() until it returns something true; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except OSError as exc:  # not listening yet
            last = exc
        else:
            if last:
                return last
        time.sleep(0.5)
    raise AssertionError('%s: not within %d s (last: %r)' % (what, timeout, last))


class Daemon:
    """A process started by the test, stopped by its pid."""

    def __init__(self, command, log_path):
        self.log_path = log_path
        self.log = open(log_path, 'w')
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)

    def check(self):
        if self.process.poll() is not None:
            with open(self.log_path) as handle:
                tail = handle.read()[-3000:]
            raise AssertionError('%s exited with %s:\n%s' % (self.process.args[0], self.process.returncode, tail))

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, 15)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, 9)
                self.process.wait()
        self.log.close()


class Prometheus:
    def __init__(self, url):
        self.url = url

    def query(self, expr):
        answer = get(self.url + '/api/v1/query', query=expr)
        assert answer['status'] == 'success', answer
        return answer['data']['result']

    def alerts(self, name):
        return [alert for alert in get(self.url + '/api/v1/alerts')['data']['alerts']
                if alert['labels']['alertname'] == name]


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    """node_exporter reading a textfile directory, Prometheus scraping it every second."""
    work = tmp_path_factory.mktemp('scrape')
    textfile_dir = work / 'textfile'
    textfile_dir.mkdir()
    with open(RULES) as handle:
        rules = yaml.safe_load(handle)
    for group in rules['groups']:
        for rule in group['rules']:
            if 'for' in rule:
                rule['for'] = '0s'
    (work / 'rules.yml').write_text(yaml.safe_dump(rules))
    exporter_port, prometheus_port = free_port(), free_port()
    (work / 'prometheus.yml').write_text(yaml.safe_dump({
        'global': {'scrape_interval': '1s', 'evaluation_interval': '1s'},
        'rule_files': [str(work / 'rules.yml')],
        'scrape_configs': [{
            'job_name': 'node',
            'static_configs': [{'targets': ['127.0.0.1:%d' % exporter_port], 'labels': {'node': NODE}}],
            # instance names the node, as kube-prometheus' node-exporter ServiceMonitor does
            'relabel_configs': [{'target_label': 'instance', 'replacement': NODE}],
        }],
    }))
    daemons = []
    try:
        daemons.append(Daemon([binary('prometheus-node-exporter'), '--web.listen-address=127.0.0.1:%d' % exporter_port,
                               '--collector.disable-defaults', '--collector.textfile',
                               '--collector.textfile.directory=%s' % textfile_dir], str(work / 'node_exporter.log')))
        daemons.append(Daemon([binary('prometheus'), '--config.file=%s' % (work / 'prometheus.yml'),
                               '--storage.tsdb.path=%s' % (work / 'data'),
                               '--web.listen-address=127.0.0.1:%d' % prometheus_port],
                              str(work / 'prometheus.log')))
        prometheus = Prometheus('http://127.0.0.1:%d' % prometheus_port)
        wait_for('Prometheus scrapes node_exporter',
                 lambda: [daemon.check() for daemon in daemons] and prometheus.query('up{job="node"} == 1'))
        yield {'prometheus': prometheus, 'textfile_dir': textfile_dir, 'work': work, 'daemons': daemons}
    finally:
        for daemon in daemons:
            daemon.stop()


def scraped(prometheus, expr, predicate=bool):
    return wait_for('%s scraped' % expr, lambda: predicate(prometheus.query(expr)) and prometheus.query(expr))


@pytest.mark.usefixtures('require_root_v1')
def test_detect_and_the_node_job_are_scraped_alert_fires_and_resolves_dashboard_has_data(ansible_env, stack):
    prometheus, textfile_dir, work = stack['prometheus'], stack['textfile_dir'], stack['work']
    inventory = localhost_inventory(str(work))

    # 1. the detect playbook on this machine's real kernel writes the textfile
    result = run_playbook(ansible_env, DETECT, inventory, {
        'detect_textfile_dir': str(textfile_dir), 'detect_report_dir': str(work / 'report'),
        'detect_cpu_interval': 0.2, 'detect_print_report': False})
    assert result.returncode == 0, result.stdout
    written = float(re.search(r'^nodeops_memcg_probe_timestamp_seconds (\S+)$',
                              (textfile_dir / 'nodeops_memcg.prom').read_text(), re.MULTILINE).group(1))
    stamp = scraped(prometheus, 'nodeops_memcg_probe_timestamp_seconds',
                    lambda found: found and abs(float(found[0]['value'][1]) - written) < 0.01)
    assert stamp[0]['metric'] == {'__name__': 'nodeops_memcg_probe_timestamp_seconds', 'instance': NODE,
                                  'job': 'node', 'node': NODE}
    with open(work / 'report' / 'detect.json') as handle:
        node = json.load(handle)['nodes'][0]
    for expr, value in (('nodeops_memcg_dying', node['memcg']['dying']), ('nodeops_memcg_live', node['memcg']['live']),
                        ('nodeops_memcg_total', node['memcg']['total']),
                        ('nodeops_memcg_verdict', {'ok': 0, 'warn': 1, 'critical': 2}[node['verdict']])):
        found = prometheus.query('%s{instance="%s",node="%s",job="node"}' % (expr, NODE, NODE))
        assert [float(sample['value'][1]) for sample in found] == [value], (expr, found)
    assert prometheus.query('node_textfile_scrape_error')[0]['value'][1] == '0'
    assert {sample['metric']['cgroup'] for sample in prometheus.query('nodeops_memcg_memory_stat_read_seconds')} \
        >= {'root'}

    # 2. the monitor-only node job, installed by the mitigate role under a temporary prefix
    prefix = work / 'prefix'
    prefix.mkdir()
    result = run_playbook(ansible_env, TIMER, inventory, {
        'mitigate_timer': 'present', 'mitigate_timer_mode': 'monitor', 'mitigate_timer_prefix': str(prefix),
        'mitigate_timer_scheduler': 'cron', 'mitigate_textfile_dir': str(textfile_dir)})
    assert result.returncode == 0, result.stdout
    cron_line = [line for line in (prefix / 'etc/cron.d/nodeops-memcg-heal').read_text().splitlines()
                 if ' root ' in line][0]
    command = shlex.split(cron_line.split(' root ', 1)[1])
    job = command[command.index('-t') + 1:command.index('--splay')]

    def run_job(root):
        done = subprocess.run(job + ['--root', root], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return float(re.search(r'^nodeops_memcg_heal_last_run_timestamp_seconds (\S+)$',
                               (textfile_dir / 'nodeops_memcg_heal.prom').read_text(), re.MULTILINE).group(1))

    # a node made critical: a CentOS 7 fixture root with 68,692 dying memcgs
    sick = tree.build_node(work / 'sick', memory_num_cgroups=68700)
    tree.write(sick, '/proc/sys/vm/drop_caches', '0\n')
    ran = run_job(sick)
    assert open(os.path.join(sick, 'proc/sys/vm/drop_caches')).read() == '0\n', 'the monitor job dropped caches'
    scraped(prometheus, 'nodeops_memcg_heal_last_run_timestamp_seconds',
            lambda found: found and abs(float(found[0]['value'][1]) - ran) < 0.01)
    firing = wait_for('NodeopsMemcgDyingCritical fires', lambda: [
        alert for alert in prometheus.alerts('NodeopsMemcgDyingCritical') if alert['state'] == 'firing'])
    assert firing[0]['labels'] == {'alertname': 'NodeopsMemcgDyingCritical', 'instance': NODE, 'job': 'node',
                                   'node': NODE, 'severity': 'critical'}
    assert firing[0]['annotations']['description'] == (
        '%s keeps 68692 dying memory cgroups on a kernel that is not fixed (critical above 20000).' % NODE)
    assert prometheus.query('nodeops_memcg_heal_dropped')[0]['value'][1] == '0'

    # the same node healthy again: a fixed kernel with a handful of memcgs; the alert resolves
    healthy = tree.build_node(work / 'healthy', memory_num_cgroups=10, release='6.1.0-25-amd64', cmdline='ro quiet\0')
    run_job(healthy)
    wait_for('NodeopsMemcgDyingCritical resolves', lambda: not prometheus.alerts('NodeopsMemcgDyingCritical'))
    assert prometheus.query('nodeops_memcg_verdict')[0]['value'][1] == '0'

    # 3. every dashboard query returns data from this Prometheus
    with open(DASHBOARD) as handle:
        dashboard = json.load(handle)
    node_regex = re.escape(NODE).replace('\\', '\\\\')
    variable = [var for var in dashboard['templating']['list'] if var['name'] == 'instance'][0]
    metric = re.match(r'label_values\((\w+), instance\)$', variable['query']['query']).group(1)
    assert NODE in get(prometheus.url + '/api/v1/label/instance/values', **{'match[]': metric})['data']
    for panel in dashboard['panels']:
        for target in panel.get('targets', []):
            expr = target['expr'].replace('$instance', node_regex)
            assert prometheus.query(expr), 'panel %r query %s returned no data' % (panel['title'], expr)
