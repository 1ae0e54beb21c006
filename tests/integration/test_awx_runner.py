# -*- coding: utf-8 -*-
"""The job templates of awx/configure.yml as AWX runs them: ansible-runner, the survey defaults merged
into the extra vars (the way AWX does for a scheduled, unprompted launch), the template's own extra
vars (the report directory in the job's artifacts), and AWX's awx_job_id.

Checked on the artifacts AWX reads: status, rc, the set_stats data in the playbook_on_stats event
(artifact_data, handed to the next workflow node), and the report files in the artifacts directory.
Only the connection and the fixture roots (and, for the upgrade, the fake Kubernetes API) are test-only.
"""

from __future__ import annotations

import json
import os
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


def job_template(survey):
    """The extra vars AWX gives a launch of the job template with this survey, defaults unanswered."""
    with open(os.path.join(REPO_ROOT, 'awx', 'configure.yml')) as handle:
        play_vars = yaml.load(handle, Loader=_UnsafeLoader)[0]['vars']  # noqa: S506 - a SafeLoader subclass
    template = next(t for t in play_vars['nodeops_memcg_awx_job_templates'] if t['survey'] == survey)
    extra = {key: play_vars['nodeops_memcg_awx_report_dir'] if value == '{{ nodeops_memcg_awx_report_dir }}' else value
             for key, value in template['extra_vars'].items()}
    with open(os.path.join(REPO_ROOT, 'awx', 'surveys', survey + '.json')) as handle:
        # AWX adds every default that is not null (tests/unit/test_awx_surveys.py: each one is valid)
        extra.update({q['variable']: q['default'] for q in json.load(handle)['spec'] if q.get('default') is not None})
    extra['awx_job_id'] = JOB_ID
    return template['playbook'], extra


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(text)


def run_job(tmp_path, env, collections_path, ident, survey, inventory, test_vars=None, envvars=None):
    """ansible-runner run of the template's playbook; returns (artifacts dir, status, rc, artifact_data)."""
    playbook, extra = job_template(survey)
    extra.update(test_vars or {})
    data = str(tmp_path / 'runner')
    project = os.path.join(data, 'project')
    if not os.path.exists(project):
        # the SCM project is this repository; the collection comes from the collections path (the EE)
        os.makedirs(data, exist_ok=True)
        os.symlink(os.path.join(collections_path, 'ansible_collections', 'nodeops', 'memcg'), project)
    write(os.path.join(data, 'inventory', 'hosts'), inventory)
    write(os.path.join(data, 'env', 'extravars'), json.dumps(extra))
    write(os.path.join(data, 'env', 'envvars'), json.dumps(dict(envvars or {}, ANSIBLE_COLLECTIONS_PATH=collections_path)))
    subprocess.run(['ansible-runner', 'run', data, '-p', playbook, '--ident', ident],
                   env=env, stdout=subprocess.DEVNULL, timeout=600, check=False)
    artifacts = os.path.join(data, 'artifacts', ident)
    with open(os.path.join(artifacts, 'status')) as status, open(os.path.join(artifacts, 'rc')) as rc:
        result = (status.read(), int(rc.read()))
    return artifacts, result[0], result[1], runner_stats(artifacts).get('artifact_data', {})


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


def fixture_inventory(tmp_path, counts, root_var):
    lines = ['[all:vars]', 'ansible_connection=local', 'ansible_python_interpreter=%s' % sys.executable, '[all]']
    roots = {}
    for name, count in sorted(counts.items()):
        roots[name] = memcg_tree.build_node(tmp_path / 'nodes' / name, memory_num_cgroups=count,
                                            release='5.4.0-150-generic', kubelet=None)
        memcg_tree.write(roots[name], '/' + DROP, '')
        lines.append('%s %s=%s' % (name, root_var, roots[name]))
    return '\n'.join(lines) + '\n', roots


def test_mitigate_template_with_survey_defaults(ansible_env, collections_path, tmp_path):
    # n1: 6,000 memcgs, over the default warn_dying; n2: 50, under it
    inventory, roots = fixture_inventory(tmp_path, {'n1': 6000, 'n2': 50}, 'mitigate_root')
    artifacts, status, rc, data = run_job(tmp_path, ansible_env, collections_path, 'mitigate1', 'mitigate', inventory)
    assert (status, rc) == ('successful', 0), stdout(artifacts)
    summary = data['mitigate_summary']
    assert summary['hosts'] == 2 and summary['not_needed'] == 1
    # a fixture's figures do not move after the drop: n1 dropped at the survey's level 2, did not improve
    assert summary['not_improved'] == 1 and summary['failed'] == 0
    assert open(os.path.join(roots['n1'], DROP)).read() == '2'
    assert open(os.path.join(roots['n2'], DROP)).read() == ''
    doc, markdown = report(artifacts, 'mitigate')
    assert doc['summary'] == summary
    assert {row['host']: row['status'] for row in doc['nodes']} == {'n1': 'not_improved', 'n2': 'not_needed'}
    assert 'n1' in markdown and 'n2' in markdown


def test_detect_fails_on_warn_in_the_workflow_and_still_hands_over_its_summary(ansible_env, collections_path, tmp_path):
    """The workflow's detect node (extra_data detect_fail_on=warn): a warn node fails the job, which is
    what starts the mitigate node; the summary and the report are there all the same."""
    inventory = fixture_inventory(tmp_path, {'n1': 6000, 'n2': 50}, 'detect_root')[0]
    artifacts, status, rc, data = run_job(tmp_path, ansible_env, collections_path, 'detect1', 'detect', inventory,
                                          {'detect_fail_on': 'warn'})
    assert (status, rc) == ('failed', 2), stdout(artifacts)
    assert "detect_fail_on is warn" in stdout(artifacts)
    summary = data['detect_summary']
    assert summary['hosts'] == 2 and summary['warn'] == 1 and summary['ok'] == 1
    assert data['detect_report_location'].endswith('/artifacts/detect1/nodeops-memcg-report')
    doc = report(artifacts, 'detect')[0]
    assert {row['host']: row['verdict'] for row in doc['nodes']} == {'n1': 'warn', 'n2': 'ok'}


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
    test_vars = {
        # test-only: kubectl and the fake API instead of the EE's kubectl and the kubeconfig credential,
        # the fake node procedure instead of installing and rebooting
        'kernel_upgrade_kubectl': kubectl_bin, 'kernel_upgrade_kubeconfig': kubeconfig,
        'kernel_upgrade_release_source': 'api', 'kernel_upgrade_node_procedure': PROCEDURE,
        'kernel_upgrade_kubelet_service': '', 'fake_kube_url': fake_kube.url, 'fake_target_release': NEW,
        # the health gate probes this machine's real kernel, where tests running beside this one may
        # be leaving dying memcgs and slow reads: thresholds it cannot cross keep that out of the result
        'kernel_upgrade_thresholds': {'warn_dying': 10 ** 7, 'warn_dying_ratio_min': 10 ** 7, 'warn_read_ms': 60000,
                                      'critical_dying': 10 ** 8, 'critical_read_ms': 120000,
                                      'warn_kubelet_system_percent': 10000},
    }
    artifacts, status, rc, data = run_job(tmp_path, dict(ansible_env, **kube), collections_path, 'upgrade1', 'upgrade',
                                          inventory, test_vars, kube)
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
