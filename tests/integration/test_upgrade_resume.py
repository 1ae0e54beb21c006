# -*- coding: utf-8 -*-
"""playbooks/upgrade.yml interrupted and run again, against the fake Kubernetes API with real kubectl.

The faults of issue 11, each asserted on what reached the API (the fake's records and objects), the
report and the nodes' boot defaults (fake_boot_dir/<node>, written by the fake node procedure's
finalize phase the way kernel_boot writes the GRUB default): a run killed after a node's reboot, an
API that hangs in the health gate, a blip during the Ready wait, a report that cannot be written, a
lock TTL too short for the longest step, and nodes whose state cannot be reconciled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from test_upgrade_playbook import (  # pylint: disable=unused-import
    CORDONED_BY, FAILURE, NEW, OLD, PLAYBOOK, PROCEDURE, QUIET_THRESHOLDS, annotations, changes, cluster, inventory,
    lease_holder, node_patches, report, rollout)  # noqa: F401 (rollout is a fixture)

pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']

STEP = 'nodeops.memcg/step'
TARGET = 'nodeops.memcg/target'
OURS = (CORDONED_BY, FAILURE, 'nodeops.memcg/failure-run', STEP, TARGET)


def boot_default(tmp_path, name):
    path = tmp_path / 'boot' / name
    return path.read_text().strip() if path.exists() else None


def ours(fake, name):
    return {k: v for k, v in annotations(fake, name).items() if k in OURS}


def evictions(fake, since=0):
    return [m.path for m in changes(fake)[since:] if m.path.endswith('/eviction')]


def test_run_killed_after_a_reboot_is_resumed_by_the_next_run(ansible_env, kube_env, fake_kube, kubeconfig,
                                                              kubectl_bin, kubectl, tmp_path, rollout):
    nodes = ['n1', 'n2', 'n3']
    cluster(fake_kube, nodes)
    (tmp_path / 'boot').mkdir()
    variables = {
        'kernel_upgrade_hosts': 'workers', 'kernel_upgrade_kubectl': kubectl_bin, 'kernel_upgrade_kubeconfig': kubeconfig,
        'kernel_upgrade_release_source': 'api', 'kernel_upgrade_node_procedure': PROCEDURE,
        'kernel_upgrade_kubelet_service': '', 'kernel_upgrade_ready_timeout': 10,
        'kernel_upgrade_daemonsets_timeout': 10, 'kernel_upgrade_drain_timeout': 12,
        'kernel_upgrade_report_dir': str(tmp_path / 'report'), 'kernel_upgrade_thresholds': QUIET_THRESHOLDS,
        'kernel_upgrade_run_id': 'run-killed', 'fake_kube_url': fake_kube.url, 'fake_target_release': NEW,
        'fake_boot_dir': str(tmp_path / 'boot'), 'fake_kill_after_boot': ['n2'],
    }
    env = dict(ansible_env, **{k: kube_env[k] for k in ('KUBECONFIG', 'KUBECACHEDIR', 'NO_PROXY', 'no_proxy')
                               if k in kube_env})
    log = open(tmp_path / 'killed.log', 'w')
    first = subprocess.Popen(['ansible-playbook', '-i', inventory(tmp_path, nodes), PLAYBOOK, '-e', json.dumps(variables)],
                             env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 400
        while not (tmp_path / 'boot' / 'n2.booted').exists():
            assert first.poll() is None, (tmp_path / 'killed.log').read_text()
            assert time.monotonic() < deadline, (tmp_path / 'killed.log').read_text()
            time.sleep(0.5)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the controller dies: no rescue, no report, no release
        first.wait()
        log.close()
    # What the killed run left: n1 done, n2 rebooted into NEW but cordoned, its default never committed.
    assert boot_default(tmp_path, 'n1') == NEW and ours(fake_kube, 'n1') == {}
    assert fake_kube.node('n2')['status']['nodeInfo']['kernelVersion'] == NEW
    assert fake_kube.node('n2')['spec'].get('unschedulable') is True
    assert ours(fake_kube, 'n2') == {CORDONED_BY: 'run-killed', STEP: 'drained'}
    assert boot_default(tmp_path, 'n2') is None
    assert node_patches(fake_kube, 'n3') == [] and lease_holder(fake_kube) == 'run-killed'

    # The killed run's lock expires (an hour later, here by its renewTime); a new run takes over.
    expired = kubectl('patch', 'lease', 'nodeops-memcg-kernel-upgrade', '--namespace', 'kube-system', '--type', 'merge',
                      '--patch', '{"spec":{"renewTime":"2020-01-01T00:00:00.000000Z"}}')
    assert expired.returncode == 0, expired.stderr
    before = len(changes(fake_kube))
    result = rollout(nodes, kernel_upgrade_run_id='run-again')
    assert result.returncode == 0, result.stdout
    assert "Resumed: {'n2': 'left by run run-killed at step drained; it runs the fixed %s (fixed)" % NEW in result.stdout
    for name in nodes:
        assert not fake_kube.node(name)['spec'].get('unschedulable'), name
        assert ours(fake_kube, name) == {}, name
        assert boot_default(tmp_path, name) == NEW, name
    # n2 was taken over (cordoned-by run-again), gated and committed, never drained or rebooted again
    n2_writes = [m.body for m in node_patches(fake_kube, 'n2') if m.time >= changes(fake_kube)[before].time]
    assert n2_writes[0]['metadata']['annotations'][CORDONED_BY] == 'run-again'
    assert [w['metadata']['annotations'].get(STEP) for w in n2_writes[1:-1]] == ['booted', 'healthy', 'committed']
    assert n2_writes[-1]['spec'] == {'unschedulable': None}
    assert all('/pods/web-n2' not in path for path in evictions(fake_kube, before))
    assert not lease_holder(fake_kube)
    doc, rows = report(tmp_path)
    assert (rows['n1']['status'], rows['n2']['status'], rows['n3']['status']) == ('already_fixed', 'resumed', 'upgraded')
    assert rows['n2']['resumed'].startswith('left by run run-killed at step drained')
    assert doc['summary']['resumed'] == 1 and doc['summary']['upgraded'] == 1


def test_api_hang_in_the_health_gate_then_a_rerun_finishes_the_node(rollout, fake_kube, tmp_path):
    nodes = ['n1', 'n2']
    cluster(fake_kube, nodes)
    result = rollout(nodes, fake_hang_after_boot=['n1'], kernel_upgrade_run_id='run-hung')
    assert result.returncode != 0
    assert 'stopped at node n1, step ready' in result.stdout, result.stdout[-6000:]
    left = ours(fake_kube, 'n1')
    assert left[CORDONED_BY] == 'run-hung' and left[STEP] == 'booted' and left[TARGET] == NEW
    assert left[FAILURE].startswith('ready: timed out after 10s waiting for ready on 1 node(s): node -: the API did '
                                    'not answer')
    assert fake_kube.node('n1')['spec'].get('unschedulable') is True and boot_default(tmp_path, 'n1') is None
    assert node_patches(fake_kube, 'n2') == [] and not lease_holder(fake_kube)

    fake_kube.unhang()
    again = rollout(nodes)
    assert again.returncode == 0, again.stdout
    for name in nodes:
        assert not fake_kube.node(name)['spec'].get('unschedulable') and ours(fake_kube, name) == {}, name
        assert boot_default(tmp_path, name) == NEW, name
    rows = report(tmp_path)[1]
    assert rows['n1']['status'] == 'resumed' and rows['n2']['status'] == 'upgraded'
    assert 'left by run run-hung at step booted' in rows['n1']['resumed']


def test_blip_during_the_ready_wait_is_ridden_out(rollout, fake_kube, tmp_path):
    cluster(fake_kube, ['n1'])
    # the blip starts while the node reboots and outlasts the steps before the Ready wait on a loaded machine
    result = rollout(['n1'], fake_blip_after_boot=['n1'], kernel_upgrade_ready_timeout=150,
                     fake_blip={'pattern': '^/api/v1/nodes$', 'status': 503, 'seconds': 60})
    assert result.returncode == 0, result.stdout[-6000:]
    blipped = [r for r in fake_kube.requests if r.path == '/api/v1/nodes' and r.status == 503]
    assert blipped, 'the Ready wait never met the blip'
    assert not fake_kube.node('n1')['spec'].get('unschedulable') and boot_default(tmp_path, 'n1') == NEW
    assert report(tmp_path)[1]['n1']['status'] == 'upgraded'


def test_report_write_failure_still_releases_the_lock_and_fails_the_run(rollout, fake_kube, tmp_path):
    cluster(fake_kube, ['n1'])
    (tmp_path / 'not-a-dir').write_text('a file where the report directory should go\n')
    result = rollout(['n1'], kernel_upgrade_report_dir=str(tmp_path / 'not-a-dir' / 'report'))
    assert result.returncode != 0
    assert ('writing the report failed: cannot write the report files in %s: Not a directory'
            % (tmp_path / 'not-a-dir' / 'report')) in result.stdout, result.stdout[-6000:]
    assert not lease_holder(fake_kube)
    releases = [m for m in changes(fake_kube) if m.method == 'PUT' and m.path.endswith('/nodeops-memcg-kernel-upgrade')]
    assert 'holderIdentity' not in releases[-1].body['spec']
    assert not fake_kube.node('n1')['spec'].get('unschedulable') and boot_default(tmp_path, 'n1') == NEW


def test_lock_ttl_shorter_than_the_longest_step_is_refused_at_planning(rollout, fake_kube):
    cluster(fake_kube, ['n1'])
    result = rollout(['n1'], kernel_upgrade_lock_ttl=600, kernel_upgrade_reboot_timeout=900)
    assert result.returncode != 0
    assert ('kernel_upgrade_lock_ttl 600s is shorter than the longest step between two lock renewals: the reboot '
            '(kernel_upgrade_reboot_timeout) may take 900s, plus 60s for the calls around it = 960s') in result.stdout
    assert changes(fake_kube) == []


def test_missing_and_unreconcilable_node_facts_stop_the_run_naming_each_node(rollout, fake_kube):
    cluster(fake_kube, ['n1'])
    fake_kube.add_node('n2', kernel='')
    fake_kube.add_node('n3', kernel=OLD, unschedulable=True,
                       annotations={CORDONED_BY: 'run-0', STEP: 'booted', TARGET: NEW})
    result = rollout(['n1', 'n2', 'n3'])
    assert result.returncode != 0
    assert 'node n2: no running kernel release (an empty or absent kernelVersion)' in result.stdout
    assert ('node n3: left by run run-0 at step booted (target %s), but it runs %s (severe), neither the target '
            'nor a fixed kernel' % (NEW, OLD)) in result.stdout
    assert changes(fake_kube) == []


def test_a_node_going_notready_mid_rollout_stops_it_before_the_next_batch(rollout, fake_kube, tmp_path):
    nodes = ['n1', 'n2', 'n3']
    cluster(fake_kube, nodes)
    fake_kube.add_node('n9', kernel=NEW)  # not in the rollout; it goes down while n1 reboots
    result = rollout(nodes, fake_takes_down={'n1': 'n9'})
    assert result.returncode != 0, result.stdout[-6000:]
    assert ('stopped before node n2, step capacity: the batch n2 would make 2 nodes unavailable at once, over '
            "kernel_upgrade_max_unavailable '' (the batch size) (1 of 4 workers): already NotReady or "
            'unschedulable: n9') in result.stdout
    assert boot_default(tmp_path, 'n1') == NEW and not fake_kube.node('n1')['spec'].get('unschedulable')
    assert node_patches(fake_kube, 'n2') == [] and node_patches(fake_kube, 'n3') == []
    assert not lease_holder(fake_kube)
    doc, rows = report(tmp_path)
    assert doc['stopped_at']['step'] == 'capacity' and doc['stopped_at']['node'] == 'n2'
    assert (rows['n1']['status'], rows['n2']['status']) == ('upgraded', 'not_started')


def test_a_pdb_found_at_preflight_cordons_nothing_or_leaves_its_node_out(rollout, fake_kube, tmp_path):
    nodes = ['n1', 'n2', 'n3']
    cluster(fake_kube, nodes)
    fake_kube.add_pod('db-0', 'n2', owner='StatefulSet/db', labels={'app': 'db'})
    fake_kube.add_pdb('db', match_labels={'app': 'db'}, min_available=1)
    refused = rollout(nodes)  # kernel_upgrade_preflight_drain: fail
    assert refused.returncode != 0, refused.stdout[-6000:]
    assert 'the preflight dry-run drain would be refused on 1 node(s): drain of node n2 would fail' in refused.stdout
    assert 'default/db-0: blocked by PodDisruptionBudget db' in refused.stdout and 'Nothing was cordoned' in refused.stdout
    assert changes(fake_kube) == []  # no cordon, no eviction, no lock
    dry = [m for m in fake_kube.mutations if m.path.endswith('/eviction')]
    assert dry and all(m.dry_run for m in dry)  # the evictions were tried, server-side, as dry runs

    result = rollout(nodes, kernel_upgrade_preflight_drain='skip')
    assert result.returncode == 0, result.stdout[-6000:]
    assert node_patches(fake_kube, 'n2') == [] and fake_kube.pod('db-0')['spec']['nodeName'] == 'n2'
    assert boot_default(tmp_path, 'n1') == NEW and boot_default(tmp_path, 'n3') == NEW
    doc, rows = report(tmp_path)
    assert rows['n2']['status'] == 'blocked' and 'db-0' in rows['n2']['error']
    assert doc['summary']['blocked'] == 1 and doc['summary']['upgraded'] == 2
