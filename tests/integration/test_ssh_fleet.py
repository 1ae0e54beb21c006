# -*- coding: utf-8 -*-
"""What users run, over real SSH: detect, mitigate (check) and upgrade (check) across a mixed fleet.

22 hosts made by ssh_fleet.SshFleet, each a network namespace with its own sshd: CentOS 7 style
nodes whose Python is CPython 2.7 or 3.6, newer nodes with 3.11, one whose sshd is not running
(unreachable) and one whose sudo asks for a password (none is given). Every playbook runs through
ansible-core 2.16 over the ssh connection with pipelining and --become, like
`ansible-playbook -i inventory --become nodeops.memcg.detect`. Assertions are on the reports (the
JSON file, or the Markdown the run prints in check mode, where no file is written), the PLAY RECAP,
what reached the fake Kubernetes API and what reached each node's drop_caches.
"""

from __future__ import annotations

import concurrent.futures
import glob
import json
import os
import re
import subprocess

import pytest

from conftest import run_playbook
from ssh_fleet import HostSpec, SshFleet

pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']

FORKS = '20'
UNREACHABLE = 'node22'
SUDO_PASSWORD = 'node21'
RUNNING_KERNEL_SEVERE = [{'match': '^' + re.escape(os.uname().release) + '$', 'stream': 'test',
                          'status': 'severe', 'reason': 'marked severe by the test'}]


def python311():
    found = sorted(glob.glob(os.path.expanduser('~/.pyenv/versions/3.11.*/bin/python3.11')))
    if not found:
        pytest.fail('no CPython 3.11 under ~/.pyenv/versions for the fleet test')
    return found[-1]


def fleet_specs(pythons):
    """node01..node22: Pythons 2.7, 3.6, 3.11 in turn; node21 asks for a sudo password, node22 has no sshd."""
    versions = ['2.7', '3.6', '3.11']
    specs = [HostSpec('node%02d' % number, pythons[versions[(number - 1) % 3]]) for number in range(1, 21)]
    specs.append(HostSpec(SUDO_PASSWORD, pythons['3.6'], sudo_password=True))
    specs.append(HostSpec(UNREACHABLE, pythons['2.7'], sshd=False))
    return specs


@pytest.fixture(scope='module')
def fleet(node_pythons, tmp_path_factory):
    pythons = dict(node_pythons, **{'3.11': python311()})
    with SshFleet(fleet_specs(pythons), capture_drop_caches=True) as running:
        running.inventory = running.write_inventory(tmp_path_factory.mktemp('fleet') / 'hosts.ini')
        # The fleet is what it claims: each node's interpreter is the Python its spec names.
        reachable = [host for host in running.hosts if host.spec.sshd]
        with concurrent.futures.ThreadPoolExecutor(len(reachable)) as pool:
            versions = list(pool.map(lambda host: python_version_on(running, host), reachable))
        assert versions == [host.python_version for host in reachable], versions
        yield running
        netns, workdir = [host.netns for host in running.hosts], running.workdir
    left = subprocess.run(['ip', 'netns', 'list'], stdout=subprocess.PIPE, text=True, check=True).stdout
    assert not [name for name in netns if name in left.split()], left
    assert not os.path.exists(workdir)


def python_version_on(fleet, host):
    result = subprocess.run(
        ['ssh', '-i', fleet.private_key, '-o', 'UserKnownHostsFile=' + fleet.known_hosts, '-o', 'IdentitiesOnly=yes',
         '-o', 'BatchMode=yes', '%s@%s' % (fleet.user, host.address),
         host.interpreter + ' -c "import sys; print(\'%d.%d\' % sys.version_info[:2])"'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60, check=False)
    return result.stdout.strip()


@pytest.fixture(scope='module')
def fleet_env(fleet, ansible_216_env):
    return dict(ansible_216_env, **fleet.ansible_env())


def by_version(fleet):
    """{'2.7': [names], ...} of the hosts that should probe (sshd running, sudo without a password)."""
    groups = {}
    for host in fleet.hosts:
        if host.spec.sshd and not host.spec.sudo_password:
            groups.setdefault(host.python_version, []).append(host.spec.name)
    return groups


def recap(output):
    """{host: {ok: n, changed: n, unreachable: n, failed: n, ...}} from the PLAY RECAP."""
    rows = {}
    for host, counts in re.findall(r'^(\S+)\s+:\s+(ok=.*)$', output.split('PLAY RECAP')[-1], re.M):
        rows[host] = {key: int(value) for key, value in re.findall(r'(\w+)=(\d+)', counts)}
    return rows


def printed_rows(output, title):
    """{host: status} from the Markdown table a check-mode run prints after `title`."""
    section = output.split(title)[-1]
    return dict(re.findall(r'"\| (node\d+) \| (\w+) \|', section))


def assert_recap(fleet, output, changed):
    """Every host is in the PLAY RECAP; `changed` counts per host (check mode: what would change);
    the unreachable host is unreachable or ignored as such, the sudo-password host failed, rescued or ignored (detect keeps failed probes as report rows)."""
    rows = recap(output)
    assert sorted(rows) == sorted(host.spec.name for host in fleet.hosts), output
    assert {name: counts['changed'] for name, counts in rows.items()} == changed, rows
    assert rows[UNREACHABLE]['unreachable'] + rows[UNREACHABLE]['ignored'] >= 1, rows[UNREACHABLE]
    assert rows[SUDO_PASSWORD]['failed'] + rows[SUDO_PASSWORD]['rescued'] + rows[SUDO_PASSWORD]['ignored'] >= 1, \
        rows[SUDO_PASSWORD]
    return rows


def test_detect_reports_every_host_with_its_status(fleet, fleet_env, tmp_path):
    report_dir = tmp_path / 'report'
    report_dir.mkdir()  # as on a second run: nothing changes, not even on the controller
    result = run_playbook(fleet_env, 'nodeops.memcg.detect', fleet.inventory,
                          {'detect_report_dir': str(report_dir)}, '--become', '--forks', FORKS)
    report = json.loads((report_dir / 'detect.json').read_text())
    rows = {row['host']: row for row in report['nodes']}
    assert sorted(rows) == sorted(host.spec.name for host in fleet.hosts), result.stdout

    groups = by_version(fleet)
    assert sorted(groups) == ['2.7', '3.11', '3.6'] and all(len(names) >= 6 for names in groups.values())
    for version, names in groups.items():
        for name in names:
            row = rows[name]
            assert row['status'] == 'probed', (version, row)
            assert row['kernel']['release'] == os.uname().release, row
            assert row['memcg']['total'] > 0 and row['memcg']['live'] > 0, row
            assert row['memcg']['dying'] == row['memcg']['total'] - row['memcg']['live'], row
            assert row['read_ms']['root'] is not None and row['read_ms']['root'] >= 0, row
            assert row['verdict'] in ('ok', 'warn', 'critical'), row
    assert rows[UNREACHABLE]['status'] == 'unreachable', rows[UNREACHABLE]
    assert 'Connection refused' in rows[UNREACHABLE]['error'], rows[UNREACHABLE]
    assert rows[SUDO_PASSWORD]['status'] == 'failed', rows[SUDO_PASSWORD]
    assert 'sudo password' in rows[SUDO_PASSWORD]['error'].lower(), rows[SUDO_PASSWORD]
    summary = report['summary']
    assert (summary['hosts'], summary['probed'], summary['unreachable'], summary['failed']) == (22, 20, 1, 1), summary

    markdown = (report_dir / 'detect.md').read_text()
    for name in rows:
        assert '| %s |' % name in markdown, name
    assert_recap(fleet, result.stdout, {host.spec.name: 0 for host in fleet.hosts})
    assert result.returncode == 0, result.stdout  # the report carries the unreachable and failed hosts


def test_mitigate_check_mode_would_drop_and_drops_nothing(fleet, fleet_env, tmp_path):
    # warn_dying 0: every node's verdict opens the gate, so the apply play runs on all of them.
    report_dir = tmp_path / 'report'
    report_dir.mkdir()  # existing: the only change check mode may announce is the drop each node would make
    result = run_playbook(fleet_env, 'nodeops.memcg.mitigate', fleet.inventory, {
        'mitigate_report_dir': str(report_dir), 'mitigate_thresholds': {'warn_dying': 0},
        'mitigate_max_parallel': 10}, '--become', '--forks', FORKS, '--check')
    assert fleet.drops() == {host.spec.name: '' for host in fleet.hosts if host.spec.sshd}, 'check mode dropped caches'
    assert list(report_dir.iterdir()) == [], 'check mode wrote the report'
    rows = printed_rows(result.stdout, 'Memory cgroup mitigation report')
    assert sorted(rows) == sorted(host.spec.name for host in fleet.hosts), result.stdout
    for names in by_version(fleet).values():
        assert {rows[name] for name in names} == {'would_mitigate'}, rows
    assert rows[UNREACHABLE] == 'unreachable' and rows[SUDO_PASSWORD] == 'failed', rows
    assert re.search(r'\| %s \| failed \|.*Missing sudo password' % SUDO_PASSWORD, result.stdout), result.stdout
    assert '20 would mitigate, 0 not needed, 1 unreachable, 1 failed.' in result.stdout, result.stdout
    probed = {name for names in by_version(fleet).values() for name in names}
    # changed in check mode: the drop each probed node would make, nothing else anywhere.
    assert_recap(fleet, result.stdout, {host.spec.name: int(host.spec.name in probed) for host in fleet.hosts})
    assert 'node21: Missing sudo password' in result.stdout  # the run fails that node, by name
    assert result.returncode != 0


def test_upgrade_check_mode_plans_and_changes_nothing(
        fleet, fleet_env, fake_kube, kube_env, kubeconfig, kubectl_bin, tmp_path):
    names = [host.spec.name for host in fleet.hosts]
    for name in names:
        fake_kube.add_node(name, kernel=os.uname().release)
        fake_kube.add_pod('web-' + name, name, owner='ReplicaSet/web', labels={'app': 'web'})
    fake_kube.add_daemonset('node-exporter', nodes=names)
    env = dict(fleet_env, **{key: kube_env[key] for key in ('KUBECONFIG', 'KUBECACHEDIR', 'NO_PROXY', 'no_proxy')
                             if key in kube_env})
    result = run_playbook(env, 'nodeops.memcg.upgrade', fleet.inventory, {
        'kernel_upgrade_kubectl': kubectl_bin, 'kernel_upgrade_kubeconfig': kubeconfig,
        'kernel_upgrade_policy_overrides': RUNNING_KERNEL_SEVERE, 'kernel_upgrade_batch': 10,
        'kernel_upgrade_report_dir': str(tmp_path / 'report')}, '--become', '--forks', FORKS, '--check')
    planned = sorted(name for names in by_version(fleet).values() for name in names)
    assert [m for m in fake_kube.mutations if not m.dry_run] == [], fake_kube.mutations
    assert all(not fake_kube.node(name)['spec'].get('unschedulable') for name in names)
    # The dry runs reached the API for the planned nodes only (cordon: a server-side dry-run PATCH).
    dry_cordons = {m.path.rsplit('/', 1)[-1] for m in fake_kube.mutations if m.method == 'PATCH' and m.dry_run}
    assert dry_cordons == set(planned), dry_cordons
    assert not os.path.exists(tmp_path / 'report')
    assert '20 of 22 nodes need a fixed kernel' in result.stdout, result.stdout
    assert 'Batches of 10, in order: [%r, %r]' % (planned[:10], planned[10:]) in result.stdout, result.stdout

    rows = printed_rows(result.stdout, 'Kernel upgrade report')
    assert sorted(rows) == sorted(names), result.stdout
    assert {rows[name] for name in planned} == {'planned'}, rows
    assert rows[UNREACHABLE] == 'unreachable' and rows[SUDO_PASSWORD] == 'not_started', rows
    assert re.search(r'\| %s \| not_started \|.*Missing sudo password' % SUDO_PASSWORD, result.stdout), result.stdout
    # Not planned, the others went on; then the run fails the two nodes by name.
    assert '%s was not upgraded: not_started, Missing sudo password' % SUDO_PASSWORD in result.stdout
    assert '%s was not upgraded: unreachable' % UNREACHABLE in result.stdout
    assert result.returncode != 0
    recap_rows = recap(result.stdout)
    assert sorted(recap_rows) == sorted(names), result.stdout
    assert recap_rows[UNREACHABLE]['ignored'] >= 1 and recap_rows[SUDO_PASSWORD]['rescued'] >= 1, recap_rows
    assert all(recap_rows[name]['failed'] == 0 for name in planned), recap_rows
