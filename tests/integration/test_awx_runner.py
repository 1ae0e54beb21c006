# -*- coding: utf-8 -*-
"""The job templates of awx/configure.yml as AWX runs them: ansible-runner, the survey defaults merged
into the extra vars (the way AWX does for a scheduled, unprompted launch), the template's own extra
vars (the report directory in the job's artifacts), and AWX's awx_job_id.

Checked on the artifacts AWX reads: status, rc, the set_stats data in the playbook_on_stats event
(artifact_data, handed to the next workflow node), and the report files in the artifacts directory.
Only the connection and the fixture roots (and, for the upgrade, the fake Kubernetes API) are test-only.

The sliced templates (detect, mitigate) run as AWX runs a sliced job: one job per slice, at the same
time, each on the inventory AWX cuts for it (awx_slices) with AWX's extra vars for a slice job; their
artifacts combined the way AWX hands a sub-workflow's artifacts to the next workflow node
(awx_combined_artifacts); then the merge template on the whole inventory.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import yaml

from conftest import REPO_ROOT, runner_stats

sys.path.insert(0, os.path.join(REPO_ROOT, 'tests', 'unit'))
from fixtures import memcg_tree  # noqa: E402  pylint: disable=wrong-import-position

pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']

PROCEDURE = os.path.join(REPO_ROOT, 'tests', 'integration', 'tasks', 'fake_node_procedure.yml')
OLD = '3.10.0-1160.el7.x86_64'
NEW = '5.4.225-1.el7.elrepo.x86_64'
JOB_ID = 4242
DROP = 'proc/sys/vm/drop_caches'


class _UnsafeLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    """Reads Ansible's !unsafe tag as the plain string AWX receives."""


_UnsafeLoader.add_constructor('!unsafe', lambda loader, node: loader.construct_scalar(node))


def job_template(name, job_id=JOB_ID, workflow=None):
    """The extra vars AWX gives a launch of job template `name`, survey defaults unanswered: the
    template's own (its Jinja rendered in the job, as AWX allows for template-defined variables), the
    survey defaults, and AWX's meta variables (awx_meta_vars); `workflow` (id, name): the workflow job
    that launched it, for a slice job the sliced job's own workflow, named after the template."""
    with open(os.path.join(REPO_ROOT, 'awx', 'configure.yml')) as handle:
        play_vars = yaml.load(handle, Loader=_UnsafeLoader)[0]['vars']  # noqa: S506 - a SafeLoader subclass
    template = next(t for t in play_vars['nodeops_memcg_awx_job_templates'] if t['name'] == name)
    extra = {key: play_vars['nodeops_memcg_awx_report_dir'] if value == '{{ nodeops_memcg_awx_report_dir }}' else value
             for key, value in template['extra_vars'].items()}
    with open(os.path.join(REPO_ROOT, 'awx', 'surveys', template['survey'] + '.json')) as handle:
        # AWX adds every default that is not null (tests/unit/test_awx_surveys.py: each one is valid)
        extra.update({q['variable']: q['default'] for q in json.load(handle)['spec'] if q.get('default') is not None})
    for prefix in ('awx', 'tower'):
        extra.update({prefix + '_job_id': job_id, prefix + '_job_template_name': name,
                      prefix + '_job_launch_type': 'workflow' if workflow else 'manual'})
        if workflow:
            extra.update({prefix + '_workflow_job_id': workflow[0], prefix + '_workflow_job_name': workflow[1]})
    return template['playbook'], extra


def awx_slices(hosts, count):
    """The hosts of each slice job, cut as AWX's Inventory.get_script_data(slice_number, slice_count)
    does: the enabled hosts ordered by name, slice n gets hosts[n - 1::count]; AWX caps the count at the
    inventory's host count (JobTemplate.get_effective_slice_ct)."""
    count = min(count, len(hosts))
    ordered = sorted(hosts)
    return [ordered[number - 1::count] for number in range(1, count + 1)]


def awx_combined_artifacts(jobs_artifacts):
    """What the node after a sliced job gets as extra vars: WorkflowJob.get_effective_artifacts updates
    one dict with each slice job's artifacts in the order they finished (same key: the last one wins)."""
    combined = {}
    for artifacts in jobs_artifacts:
        combined.update(artifacts)
    return combined


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(text)


def start_job(tmp_path, env, collections_path, ident, launch, inventory, test_vars=None, envvars=None, check=False):
    """Start ansible-runner on `launch` (job_template()'s playbook and extra vars), in a private data
    directory of its own as AWX gives each job; `check`: a job of type check (--check)."""
    playbook, extra = launch
    extra = dict(extra, **(test_vars or {}))
    data = str(tmp_path / ('runner-' + ident))
    # the SCM project is this repository; the collection comes from the collections path (the EE)
    os.makedirs(data)
    os.symlink(os.path.join(collections_path, 'ansible_collections', 'nodeops', 'memcg'), os.path.join(data, 'project'))
    write(os.path.join(data, 'inventory', 'hosts'), inventory)
    write(os.path.join(data, 'env', 'extravars'), json.dumps(extra))
    write(os.path.join(data, 'env', 'envvars'), json.dumps(dict(envvars or {}, ANSIBLE_COLLECTIONS_PATH=collections_path)))
    command = ['ansible-runner', 'run', data, '-p', playbook, '--ident', ident] + (['--cmdline=--check'] if check else [])
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL), os.path.join(data, 'artifacts', ident)


def finish_job(job):
    """Wait for a started job; returns (artifacts dir, status, rc, artifact_data)."""
    process, artifacts = job
    process.wait(timeout=600)
    with open(os.path.join(artifacts, 'status')) as status, open(os.path.join(artifacts, 'rc')) as rc:
        result = (status.read(), int(rc.read()))
    return artifacts, result[0], result[1], runner_stats(artifacts).get('artifact_data', {})


def run_job(tmp_path, env, collections_path, ident, name, inventory, test_vars=None, envvars=None):
    """ansible-runner run of job template `name`; returns (artifacts dir, status, rc, artifact_data)."""
    return finish_job(start_job(tmp_path, env, collections_path, ident, job_template(name), inventory, test_vars, envvars))


def stdout(artifacts):
    with open(os.path.join(artifacts, 'stdout')) as handle:
        return handle.read()


def report(artifacts, name):
    """The report files land in the job's artifacts directory (AWX_ISOLATED_DATA_DIR), as docs/awx.md says."""
    directory = os.path.join(artifacts, 'nodeops-memcg-report')
    with open(os.path.join(directory, name + '.json')) as handle:
        doc = json.load(handle)
    with open(os.path.join(directory, name + '.md')) as handle:
        markdown = handle.read()
    return doc, markdown


def fixture_inventory(tmp_path, counts, root_var, hosts=None):
    """Inventory of fixture nodes (memory cgroup counts by name) and their roots; `hosts`: only those."""
    lines = ['[all:vars]', 'ansible_connection=local', 'ansible_python_interpreter=%s' % sys.executable, '[all]']
    roots = {}
    for name, count in sorted(counts.items()):
        roots[name] = str(tmp_path / 'nodes' / name)
        if not os.path.exists(roots[name]):
            memcg_tree.build_node(roots[name], memory_num_cgroups=count, release='5.4.0-150-generic', kubelet=None)
            memcg_tree.write(roots[name], '/' + DROP, '')
        if hosts is None or name in hosts:
            lines.append('%s %s=%s' % (name, root_var, roots[name]))
    return '\n'.join(lines) + '\n', roots


def test_mitigate_template_with_survey_defaults(ansible_env, collections_path, tmp_path):
    # n1: 6,000 memcgs, over the default warn_dying; n2: 50, under it
    inventory, roots = fixture_inventory(tmp_path, {'n1': 6000, 'n2': 50}, 'mitigate_root')
    artifacts, status, rc, data = run_job(tmp_path, ansible_env, collections_path, 'mitigate1', 'nodeops.memcg mitigate',
                                          inventory)
    assert (status, rc) == ('successful', 0), stdout(artifacts)
    # the template names its report after the job: a slice of one when AWX does not cut the inventory
    assert list(data) == ['mitigate_slice_%d' % JOB_ID]
    summary = data['mitigate_slice_%d' % JOB_ID]['summary']
    assert summary['hosts'] == 2 and summary['not_needed'] == 1
    # a fixture's figures do not move after the drop: n1 dropped at the survey's level 2, did not improve
    assert summary['not_improved'] == 1 and summary['failed'] == 0
    assert open(os.path.join(roots['n1'], DROP)).read() == '2'
    assert open(os.path.join(roots['n2'], DROP)).read() == ''
    doc, markdown = report(artifacts, 'mitigate-slice-%d' % JOB_ID)
    assert doc['summary'] == summary and doc['slice'] == {'name': str(JOB_ID), 'hosts': 2}
    assert {row['host']: row['status'] for row in doc['nodes']} == {'n1': 'not_improved', 'n2': 'not_needed'}
    assert 'n1' in markdown and 'n2' in markdown


# n2 over the default warn_dying, the others under it; listed out of order, as an inventory may be
SLICED = {'n4': 50, 'n2': 6000, 'n5': 50, 'n1': 50, 'n3': 50}
SLICE_COUNT = 2


def run_slices(tmp_path, env, collections_path, name, root_var, first_job_id, check=False):
    """The slice jobs of sliced template `name` over SLICED, started together as AWX queues them; returns
    {job id: (hosts, artifacts dir, status, rc, artifact_data)}."""
    slices = awx_slices(list(SLICED), SLICE_COUNT)
    assert slices == [['n1', 'n3', 'n5'], ['n2', 'n4']]
    started = {}
    for number, hosts in enumerate(slices):
        job_id = first_job_id + 1 + number
        launch = job_template(name, job_id, workflow=(first_job_id, name))
        inventory = fixture_inventory(tmp_path, SLICED, root_var, hosts)[0]
        started[job_id] = (hosts, start_job(tmp_path, env, collections_path, 'job%d' % job_id, launch, inventory,
                                            check=check))
    return {job_id: (hosts,) + finish_job(job) for job_id, (hosts, job) in started.items()}


def merge_job(tmp_path, env, collections_path, name, job_id, artifacts, node_extra=None):
    """The merge template as the workflow node after the sliced job launches it: its extra vars, the
    node's extra_data, then the artifacts handed over (AWX: artifacts override the node's extra_data).
    Its hosts are SSH hosts on a port that refuses connections: the merge must never connect to them."""
    playbook, extra = job_template(name, job_id, workflow=(900, 'nodeops.memcg remediation'))
    extra.update(node_extra or {})
    extra.update(artifacts)
    with socket.socket() as closed:
        closed.bind(('127.0.0.1', 0))  # bound, never listening: a connection is refused
        inventory = '[all:vars]\nansible_connection=ssh\nansible_host=127.0.0.1\nansible_port=%d\n[all]\n%s\n' % (
            closed.getsockname()[1], '\n'.join(SLICED))
        result = finish_job(start_job(tmp_path, env, collections_path, 'job%d' % job_id, (playbook, extra), inventory))
    assert not runner_stats(result[0]).get('dark'), stdout(result[0])  # no host was connected to
    return result


def test_sliced_detect_and_its_merge_in_the_workflow(ansible_env, collections_path, tmp_path):
    """Detect sliced in two, then the workflow's detect-merge node (extra_data detect_fail_on=warn): one
    fleet report with every host once, its summary handed over, and the warn node failing the merge,
    which is what starts the mitigate node."""
    slices = run_slices(tmp_path, ansible_env, collections_path, 'nodeops.memcg detect', 'detect_root', 500)
    for job_id, (hosts, artifacts, status, rc, data) in slices.items():
        # each slice: its own hosts, its own artifact key and files; no fleet summary of its part
        assert (status, rc) == ('successful', 0), stdout(artifacts)
        assert list(data) == ['detect_slice_%d' % job_id]
        part = data['detect_slice_%d' % job_id]
        assert [row['host'] for row in part['nodes']] == hosts
        assert part['slice'] == {'name': str(job_id), 'hosts': len(hosts)}
        assert report(artifacts, 'detect-slice-%d' % job_id)[0] == part

    # the slices finish in any order; the last one's keys would win, and there is one key per slice
    combined = awx_combined_artifacts(slices[job_id][4] for job_id in sorted(slices, reverse=True))

    # a slice whose report never came (a slice job in error hands over no artifacts): named, and no report
    artifacts, status, rc, data = merge_job(tmp_path, ansible_env, collections_path, 'nodeops.memcg detect merge',
                                            511, {'detect_slice_501': combined['detect_slice_501']})
    assert (status, rc) == ('failed', 2)
    assert 'no detect slice report covers 2 of 5 hosts: n2, n4 (slices merged: 501)' in stdout(artifacts)
    assert data == {} and not os.path.exists(os.path.join(artifacts, 'nodeops-memcg-report', 'detect.json'))

    artifacts, status, rc, data = merge_job(tmp_path, ansible_env, collections_path, 'nodeops.memcg detect merge',
                                            512, combined, {'detect_fail_on': 'warn'})
    assert (status, rc) == ('failed', 2), stdout(artifacts)
    assert 'detect_fail_on is warn' in stdout(artifacts)
    summary = data['detect_summary']
    assert summary == {'hosts': 5, 'probed': 5, 'unreachable': 0, 'failed': 0, 'ok': 4, 'warn': 1, 'critical': 0,
                       'kernels_to_upgrade': 0}
    assert data['detect_report_location'].endswith('/artifacts/job512/nodeops-memcg-report')
    doc, markdown = report(artifacts, 'detect')
    assert doc['summary'] == summary
    assert [row['host'] for row in doc['nodes']] == sorted(SLICED)
    assert {row['host']: row['verdict'] for row in doc['nodes']} == {host: 'warn' if host == 'n2' else 'ok' for host in SLICED}
    assert [(entry['name'], entry['hosts']) for entry in doc['slices']] == [('501', 3), ('502', 2)]
    assert '5 hosts: 4 ok, 1 warn' in markdown


def test_sliced_mitigate_in_check_mode_and_its_merge(ansible_env, collections_path, tmp_path):
    """Mitigate as a check job, sliced in two, then its merge: every host once, counts right, nothing dropped."""
    slices = run_slices(tmp_path, ansible_env, collections_path, 'nodeops.memcg mitigate', 'mitigate_root', 600,
                        check=True)
    for job_id, (hosts, artifacts, status, rc, data) in slices.items():
        assert (status, rc) == ('successful', 0), stdout(artifacts)
        assert [row['host'] for row in data['mitigate_slice_%d' % job_id]['nodes']] == hosts
    combined = awx_combined_artifacts(slices[job_id][4] for job_id in sorted(slices))
    artifacts, status, rc, data = merge_job(tmp_path, ansible_env, collections_path, 'nodeops.memcg mitigate merge',
                                            611, combined)
    assert (status, rc) == ('successful', 0), stdout(artifacts)
    summary = data['mitigate_summary']
    assert summary == {'hosts': 5, 'would_mitigate': 1, 'not_needed': 4, 'mitigated': 0, 'not_improved': 0,
                       'unreachable': 0, 'failed': 0}
    doc = report(artifacts, 'mitigate')[0]
    assert doc['summary'] == summary
    assert {row['host']: row['status'] for row in doc['nodes']} == {
        host: 'would_mitigate' if host == 'n2' else 'not_needed' for host in SLICED}
    assert [(entry['name'], entry['hosts']) for entry in doc['slices']] == [('601', 3), ('602', 2)]
    for host in SLICED:
        assert open(os.path.join(tmp_path, 'nodes', host, DROP)).read() == ''

    # a node whose drop failed in its slice fails the merged run too, as it fails an unsliced one
    part = combined['mitigate_slice_602']
    part['nodes'][0].update(status='failed', error='drop_caches: write error', problem='drop_caches: write error')
    artifacts, status, rc, data = merge_job(tmp_path, ansible_env, collections_path, 'nodeops.memcg mitigate merge',
                                            612, combined)
    assert (status, rc) == ('failed', 2), stdout(artifacts)
    assert 'n2: drop_caches: write error' in stdout(artifacts)
    assert data['mitigate_summary']['failed'] == 1 and data['mitigate_summary']['would_mitigate'] == 0


def test_upgrade_template_with_survey_defaults(ansible_env, collections_path, tmp_path, kube_env, fake_kube,
                                               kubeconfig, kubectl_bin):
    nodes = ['n1', 'n2']
    for name in nodes:
        fake_kube.add_node(name, kernel=OLD)
        fake_kube.add_pod('web-' + name, name, owner='ReplicaSet/web', labels={'app': 'web'})
    fake_kube.add_daemonset('node-exporter', nodes=nodes)
    inventory = ('[workers]\n%s\n[workers:vars]\nansible_connection=local\nansible_python_interpreter=%s\n'
                 % ('\n'.join(nodes), sys.executable))
    kube = {key: kube_env[key] for key in ('KUBECONFIG', 'KUBECACHEDIR', 'NO_PROXY', 'no_proxy') if key in kube_env}
    boot_dir = tmp_path / 'boot'  # the fake node procedure writes each node's boot default here
    boot_dir.mkdir()
    test_vars = {
        # test-only: kubectl and the fake API instead of the EE's kubectl and the kubeconfig credential,
        # the fake node procedure instead of installing and rebooting
        'kernel_upgrade_kubectl': kubectl_bin, 'kernel_upgrade_kubeconfig': kubeconfig,
        'kernel_upgrade_release_source': 'api', 'kernel_upgrade_node_procedure': PROCEDURE,
        'kernel_upgrade_kubelet_service': '', 'fake_kube_url': fake_kube.url, 'fake_target_release': NEW,
        'fake_boot_dir': str(boot_dir),
        # the health gate probes this machine's real kernel, where tests running beside this one may
        # be leaving dying memcgs and slow reads: thresholds it cannot cross keep that out of the result
        'kernel_upgrade_thresholds': {'warn_dying': 10 ** 7, 'warn_dying_ratio_min': 10 ** 7, 'warn_read_ms': 60000,
                                      'critical_dying': 10 ** 8, 'critical_read_ms': 120000,
                                      'warn_kubelet_system_percent': 10000},
    }
    artifacts, status, rc, data = run_job(tmp_path, dict(ansible_env, **kube), collections_path, 'upgrade1',
                                          'nodeops.memcg kernel upgrade', inventory, test_vars, kube)
    assert (status, rc) == ('successful', 0), stdout(artifacts)
    assert data['kernel_upgrade_stopped_at'] is None
    assert data['kernel_upgrade_summary']['upgraded'] == 2
    for name in nodes:
        node = fake_kube.node(name)
        assert node['status']['nodeInfo']['kernelVersion'] == NEW and not node['spec'].get('unschedulable')
    assert fake_kube.max_unschedulable_seen == 1  # the survey's batch of 1
    doc, markdown = report(artifacts, 'upgrade')
    assert doc['run_id'] == 'awx-job-%d' % JOB_ID  # the template's run id, from AWX's job id
    assert doc['summary'] == data['kernel_upgrade_summary']
    assert 'n1' in markdown
