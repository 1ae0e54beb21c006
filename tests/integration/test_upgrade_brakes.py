# -*- coding: utf-8 -*-
"""playbooks/upgrade.yml with its brakes, against the fake Kubernetes API with real kubectl.

Each scenario asserts the API writes it made (the fake's records), not only the exit code, and runs
as few playbook runs as is honest, on 2-3 nodes with short timeouts:

- a real Prometheus (Debian's binary, on loopback, its own data directory, stopped by pid) whose rule
  file keeps Watchdog firing (the default query skips it) and, once the first batch has passed its
  brake, an alert the test adds: the second batch does not start. The same run keeps a node that runs
  a blocking pod out of its batch (the batch goes on with the other node), runs the hooks before the
  drain and after Ready at those moments, and warns at planning that the blocking pod's requests fit
  nowhere. Check mode first says what the run would do with the alert firing;
- one batch where a node goes NotReady during the soak (it stays cordoned, failed at step soak, its
  default not committed) and a hook before the drain fails on the other (cordoned, failed at the
  hook, never drained);
- a run whose lock another holder takes during a reboot: no API write after the loss;
- bad brake settings, named before any API call.
"""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest
import yaml

from test_prometheus_scrape import Daemon, Prometheus, binary, free_port, wait_for
from test_upgrade_playbook import (  # pylint: disable=unused-import
    CORDONED_BY, FAILURE, NEW, OLD, annotations, changes, cluster, lease_holder, node_patches, report,
    rollout)  # noqa: F401 (rollout is a fixture)
from test_upgrade_resume import STEP, boot_default, evictions, ours

pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']

DEFAULT_QUERY = 'ALERTS{alertstate="firing",alertname!~"Watchdog|InfoInhibitor"}'
SHOWN_QUERY = json.dumps(DEFAULT_QUERY)[1:-1]  # as the job output shows it, in a JSON string
WATCHDOG = {'alert': 'Watchdog', 'expr': 'vector(1)', 'labels': {'severity': 'none'}}
BACKUP_FULL = {'alert': 'BackupVolumeFull', 'expr': 'vector(1)', 'labels': {'severity': 'critical'}}
HOOK = '''
- name: Record when the hook ran, and where
  ansible.builtin.copy:
    content: "{{ now().timestamp() }}\\n"
    dest: "{{ hook_dir }}/{{ kernel_upgrade_node_name }}.{{ kernel_upgrade_hook_point }}"
    mode: "0644"

- name: Refuse the nodes the test names
  ansible.builtin.fail:
    msg: "{{ kernel_upgrade_node_name }} is not ready for its upgrade (the test says so)"
  when: kernel_upgrade_node_name in hook_fail | default([])
'''


def rules(path, *alerts):
    path.write_text(yaml.safe_dump({'groups': [{'name': 'brakes', 'rules': list(alerts)}]}))


@pytest.fixture
def prometheus(tmp_path):
    """Prometheus on a loopback port evaluating tmp_path/rules.yml every second; reload() after rewriting it."""
    port = free_port()
    (tmp_path / 'prometheus.yml').write_text(yaml.safe_dump({
        'global': {'scrape_interval': '1s', 'evaluation_interval': '1s'},
        'rule_files': [str(tmp_path / 'rules.yml')]}))
    rules(tmp_path / 'rules.yml', WATCHDOG)
    daemon = Daemon([binary('prometheus'), '--config.file=%s' % (tmp_path / 'prometheus.yml'),
                     '--storage.tsdb.path=%s' % (tmp_path / 'prometheus-data'),
                     '--web.listen-address=127.0.0.1:%d' % port], str(tmp_path / 'prometheus.log'))
    client = Prometheus('http://127.0.0.1:%d' % port)
    try:
        wait_for('Watchdog fires', lambda: daemon.check() or client.query('ALERTS{alertname="Watchdog"}'))

        def reload(*alerts):
            rules(tmp_path / 'rules.yml', WATCHDOG, *alerts)
            os.kill(daemon.process.pid, signal.SIGHUP)
        client.reload = reload
        yield client
    finally:
        daemon.stop()


def firing(client, name):
    return client.query('ALERTS{alertname="%s",alertstate="firing"}' % name)


def hook_file(tmp_path):
    path = tmp_path / 'hook.yml'
    path.write_text(HOOK)
    (tmp_path / 'hooks').mkdir()
    return str(path)


def hook_time(tmp_path, node, point):
    path = tmp_path / 'hooks' / ('%s.%s' % (node, point))
    return float(path.read_text()) if path.exists() else None


def in_background(target):
    """Run target(stop) in a thread while the playbook runs; join() tells it to stop and re-raises what it raised."""
    stop = threading.Event()
    failure = []

    def run():
        try:
            target(stop)
        except BaseException as exc:  # pylint: disable=broad-except
            failure.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join():
        stop.set()
        thread.join(60)
        if failure:
            raise failure[0]
    return join


def writes(fake, name):
    """The node's persisted writes, as (what) in order: cordon, step=..., failure, uncordon."""
    done = []
    for mutation in node_patches(fake, name):
        body = mutation.body or {}
        marks = (body.get('metadata') or {}).get('annotations') or {}
        if (body.get('spec') or {}).get('unschedulable') is True:
            done.append('cordon')
        elif 'spec' in body:
            done.append('uncordon')
        elif FAILURE in marks:
            done.append('failure')
        elif marks.get(STEP):
            done.append('step=' + marks[STEP])
    return done


def test_alert_brake_stops_the_next_batch_a_blocking_pod_keeps_its_node_out_and_hooks_run(
        rollout, fake_kube, prometheus, tmp_path):
    nodes = ['n1', 'n2', 'n3']
    cluster(fake_kube, nodes)
    # a backup Job's pod on n1: the blocking-pod selector keeps n1 out; its 64 GiB request fits on no other node
    fake_kube.add_pod('backup-0', 'n1', owner='Job/backup', labels={'app': 'backup'}, requests={'memory': '64Gi'})
    hook = hook_file(tmp_path)
    brakes = {'kernel_upgrade_batch': 2, 'kernel_upgrade_prometheus_url': prometheus.url,
              'kernel_upgrade_prometheus_timeout': 5, 'kernel_upgrade_blocking_pod_selector': 'app=backup',
              'kernel_upgrade_hooks_before_drain': [hook], 'kernel_upgrade_hooks_after_ready': [hook],
              'hook_dir': str(tmp_path / 'hooks'), 'kernel_upgrade_run_id': 'run-braked'}

    # Check mode with an alert firing: the plan says a real run would not start, and what it would do.
    prometheus.reload(BACKUP_FULL)
    wait_for('BackupVolumeFull fires', lambda: firing(prometheus, 'BackupVolumeFull'))
    planned = rollout(['n1', 'n2'], '--check', **brakes)  # one batch is enough to see it
    (tmp_path / 'check.log').write_text(planned.stdout)
    assert planned.returncode == 0, planned.stdout[-6000:]
    out = planned.stdout
    assert ('Check mode: a real run would be refused now, the Prometheus brake is engaged: the query %s returned 1 '
            'series: BackupVolumeFull (severity=critical)' % SHOWN_QUERY) in out
    assert ("Check mode: a real run would keep the node out, kept out of this run: 1 pod(s) matching "
            "kernel_upgrade_blocking_pod_selector 'app=backup' run on n1: default/backup-0") in out
    assert 'Check mode: a real run would stop before n2, the Prometheus brake is engaged' in out
    assert 'Check mode: a real run would run %s on n2 before the drain' % hook in out
    assert 'Check mode: a real run would run %s on n2 once it is Ready again' % hook in out
    assert changes(fake_kube) == [] and not list((tmp_path / 'hooks').iterdir())

    # The real run: the alert is resolved; Watchdog keeps firing, the default query skips it.
    prometheus.reload()
    wait_for('BackupVolumeFull resolves', lambda: not firing(prometheus, 'BackupVolumeFull'))

    def alert_after_the_first_batch(stop):
        # n2 passed its brake before the uncordon and is committing its default: an alert starts firing now
        wait_for('n2 commits its default', lambda: stop.is_set() or (tmp_path / 'boot' / 'n2.finalized').exists(),
                 timeout=300)
        if stop.is_set():
            return
        prometheus.reload(BACKUP_FULL)
        try:
            wait_for('BackupVolumeFull fires', lambda: firing(prometheus, 'BackupVolumeFull'))
        finally:
            (tmp_path / 'boot' / 'n2.go').write_text('go\n')
    join = in_background(alert_after_the_first_batch)
    result = rollout(nodes, fake_pause_after_finalize=['n2'], **brakes)
    (tmp_path / 'run.log').write_text(result.stdout)
    join()
    out = result.stdout
    assert result.returncode != 0, out[-6000:]
    assert ('WARNING: not enough allocatable room for the pods the batch n1, n2 would evict: 1 of 3 fit on none of '
            'the 1 node(s) that stay schedulable (n3; 4 CPU and 15.5 GiB memory free in all): default/backup-0 '
            '(cpu 0m, memory 64.0 GiB)') in out
    assert ('rollout run-braked stopped before node n3, step prometheus: the Prometheus brake is engaged: the query '
            '%s returned 1 series: BackupVolumeFull (severity=critical). The nodes of this batch and the ones after '
            'it (1) were not touched' % SHOWN_QUERY) in out

    # n1 kept out: never touched, its pods stay; n2 upgraded, hooks at their moments; n3 (the stopped batch): nothing
    assert node_patches(fake_kube, 'n1') == [] and fake_kube.pod('backup-0')['spec']['nodeName'] == 'n1'
    assert writes(fake_kube, 'n2') == ['cordon', 'step=cordoned', 'step=drained', 'step=booted', 'step=healthy',
                                       'step=committed', 'uncordon']
    assert node_patches(fake_kube, 'n3') == []
    assert evictions(fake_kube) == ['/api/v1/namespaces/default/pods/web-n2/eviction']
    assert boot_default(tmp_path, 'n2') == NEW and boot_default(tmp_path, 'n3') is None
    assert not fake_kube.node('n2')['spec'].get('unschedulable') and ours(fake_kube, 'n2') == {}
    n2 = node_patches(fake_kube, 'n2')
    cordoned, uncordoned = n2[0].time, n2[-1].time
    healthy = [m.time for m in n2 if ((m.body.get('metadata') or {}).get('annotations') or {}).get(STEP) == 'healthy']
    evicted = [m.time for m in changes(fake_kube) if m.path.endswith('/web-n2/eviction')]
    assert cordoned < hook_time(tmp_path, 'n2', 'before_drain') < evicted[0]
    assert healthy[0] < hook_time(tmp_path, 'n2', 'after_ready') < uncordoned
    assert sorted(os.listdir(tmp_path / 'hooks')) == ['n2.after_ready', 'n2.before_drain']
    assert firing(prometheus, 'Watchdog') and not lease_holder(fake_kube)

    doc, rows = report(tmp_path)
    assert doc['stopped_at'] == {'node': 'n3', 'step': 'prometheus', 'error': (
        'the Prometheus brake is engaged: the query %s returned 1 series: BackupVolumeFull (severity=critical)'
        % DEFAULT_QUERY)}
    assert (rows['n1']['status'], rows['n2']['status'], rows['n3']['status']) == ('blocked', 'upgraded', 'not_started')
    assert rows['n1']['error'] == ("kept out of this run: 1 pod(s) matching kernel_upgrade_blocking_pod_selector "
                                   "'app=backup' run on n1: default/backup-0")
    assert [step['step'] for step in rows['n2']['timeline']] == [
        'cordon', 'hook_before_drain', 'drain', 'boot', 'ready', 'hook_after_ready', 'prometheus', 'finalize',
        'uncordon']


def test_soak_catches_a_node_going_notready_and_a_failing_hook_fails_its_node(rollout, fake_kube, tmp_path):
    nodes = ['n1', 'n2']
    cluster(fake_kube, nodes)
    hook = hook_file(tmp_path)

    def n1_falls_over_after_its_health_gate(stop):
        wait_for('n1 passes its health gate',
                 lambda: stop.is_set() or annotations(fake_kube, 'n1').get(STEP) == 'healthy', timeout=300)
        if not stop.is_set():
            fake_kube.set_node_ready('n1', False)
    join = in_background(n1_falls_over_after_its_health_gate)
    result = rollout(nodes, kernel_upgrade_batch=2, kernel_upgrade_soak_seconds=3,
                     kernel_upgrade_hooks_before_drain=[hook], hook_dir=str(tmp_path / 'hooks'), hook_fail=['n2'],
                     kernel_upgrade_run_id='run-soaked')
    (tmp_path / 'run.log').write_text(result.stdout)
    join()
    out = result.stdout
    assert result.returncode != 0, out[-6000:]
    assert ('rollout run-soaked stopped at node n1, step soak: node n1 did not stay Ready during the soak: its Ready '
            'condition was False') in out

    # n1 broke during the soak: never committed nor uncordoned, its failure on the node for the next run
    assert writes(fake_kube, 'n1') == ['cordon', 'step=cordoned', 'step=drained', 'step=booted', 'step=healthy',
                                       'failure']
    left = ours(fake_kube, 'n1')
    assert left[CORDONED_BY] == 'run-soaked' and left[STEP] == 'healthy'
    assert left[FAILURE].startswith('soak: node n1 did not stay Ready during the soak: its Ready condition was False')
    assert fake_kube.node('n1')['spec']['unschedulable'] is True and boot_default(tmp_path, 'n1') is None
    # n2's hook failed before its drain: cordoned, failed at the hook, its pod never evicted
    assert writes(fake_kube, 'n2') == ['cordon', 'step=cordoned', 'failure']
    assert ours(fake_kube, 'n2')[FAILURE] == ('hook_before_drain: hook %s failed: n2 is not ready for its upgrade (the '
                                              'test says so)' % hook)
    assert fake_kube.pod('web-n2')['spec']['nodeName'] == 'n2'
    assert evictions(fake_kube) == ['/api/v1/namespaces/default/pods/web-n1/eviction']
    assert all(hook_time(tmp_path, name, 'before_drain') for name in nodes) and not lease_holder(fake_kube)

    doc, rows = report(tmp_path)
    assert doc['stopped_at']['node'] == 'n1' and doc['stopped_at']['step'] == 'soak'
    assert (rows['n1']['failed_step'], rows['n2']['failed_step']) == ('soak', 'hook_before_drain')
    assert rows['n2']['error'].startswith('hook %s failed: n2 is not ready' % hook)


def test_a_run_that_lost_its_lock_stops_before_its_next_write(rollout, fake_kube, tmp_path):
    nodes = ['n1', 'n2']
    cluster(fake_kube, nodes)
    result = rollout(nodes, kernel_upgrade_run_id='run-robbed', fake_steal_lock_after_boot={'n1': 'run-thief'})
    out = result.stdout
    assert result.returncode != 0, out[-6000:]
    assert ('rollout run-robbed stopped at node n1, step boot: lock kube-system/nodeops-memcg-kernel-upgrade is held '
            'by run-thief') in out
    assert 'This run lost its lock: it changed nothing more' in out
    written = changes(fake_kube)
    taken = [index for index, m in enumerate(written) if m.method == 'PATCH' and '/leases/' in m.path]
    assert len(taken) == 1 and written[taken[0]].body == {'spec': {'holderIdentity': 'run-thief'}}
    assert written[taken[0] + 1:] == []  # nothing after the loss: no step, no failure, no release
    assert lease_holder(fake_kube) == 'run-thief'
    assert ours(fake_kube, 'n1') == {CORDONED_BY: 'run-robbed', STEP: 'drained'}  # the step it reached
    assert fake_kube.node('n1')['spec']['unschedulable'] is True and node_patches(fake_kube, 'n2') == []
    doc, rows = report(tmp_path)
    assert doc['stopped_at']['node'] == 'n1' and doc['stopped_at']['step'] == 'boot'
    assert 'held by run-thief' in doc['stopped_at']['error'] and rows['n2']['status'] == 'not_started'


def test_bad_brake_settings_are_named_before_any_api_call(rollout, fake_kube, tmp_path):
    cluster(fake_kube, ['n1'])
    result = rollout(['n1'], kernel_upgrade_prometheus_url='http://admin:hunter2@prometheus:9090',
                     kernel_upgrade_prometheus_alertname_regex='Node(', kernel_upgrade_blocking_pod_selector='app in (a',
                     kernel_upgrade_hooks_after_ready=[str(tmp_path / 'missing.yml')], kernel_upgrade_soak_seconds=-1)
    out = result.stdout
    assert result.returncode != 0
    for problem in ('kernel_upgrade_prometheus_url must not carry credentials',
                    "kernel_upgrade_prometheus_alertname_regex is not a valid regular expression",
                    "kernel_upgrade_blocking_pod_selector has unbalanced parentheses: 'app in (a'",
                    'kernel_upgrade_soak_seconds must be a whole number of seconds, 0 or more, got -1',
                    'kernel_upgrade_hooks_after_ready: no such file on the controller: %s' % (tmp_path / 'missing.yml')):
        assert problem in out, problem
    assert 'hunter2' not in out
    assert fake_kube.requests == []
