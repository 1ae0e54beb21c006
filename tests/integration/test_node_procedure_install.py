# -*- coding: utf-8 -*-
"""The install step of the default node procedure, per OS family, in check mode (docs/node-procedure.md).

One ansible-playbook run (tests/integration/playbooks/install_step.yml) over one local host per family,
each holding the facts a node of that family gives (tests/unit/fixtures/node_facts.py). The package
managers the procedure calls through ansible.builtin.package (`use: yum|dnf|apt`, which resolves
ansible.legacy.<manager> and so ANSIBLE_LIBRARY first) are stand-ins that record the call: the test
asserts the exact module and arguments the role would hand each node's package manager.
amazon-linux-extras is a stand-in on PATH that prints what Amazon Linux 2 prints. The controller is
ansible-core 2.16, the one that manages CentOS 7 and Amazon Linux 2 (its pkg_mgr is the facts' yum;
newer releases dropped the yum module along with those nodes' Pythons).
"""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from conftest import REPO_ROOT, run_playbook
from ansible_collections.nodeops.memcg.tests.unit.fixtures.node_facts import NODE_FACTS

PLAYBOOK = os.path.join(REPO_ROOT, 'tests', 'integration', 'playbooks', 'install_step.yml')
DEB = 'linux-image-6.1.0-18-cloud-amd64_6.1.76-1_amd64.deb'
RPM = 'kernel-lt-5.4.278-1.el7.elrepo.x86_64.rpm'

# A package manager module that records its call (the node procedure runs in check mode: it must
# not reach the real one, which this machine does not have for yum and dnf).
STAND_IN = '''#!/usr/bin/python
import json
import os
from ansible.module_utils.basic import AnsibleModule, _load_params

args = dict((k, v) for k, v in _load_params().items() if not k.startswith('_ansible_'))
module = AnsibleModule(argument_spec=dict((k, dict(type='raw')) for k in args), supports_check_mode=True)
call = {'module': %(name)r, 'args': args, 'check_mode': module.check_mode,
        'DEBIAN_FRONTEND': os.environ.get('DEBIAN_FRONTEND')}
path = os.path.join(os.environ['NODEOPS_MEMCG_CALLS'], os.environ['NODEOPS_MEMCG_TEST_HOST'] + '.json')
with open(path, 'w') as handle:
    json.dump(call, handle)
module.exit_json(changed=True, msg='recorded')
'''

# amazon-linux-extras list on Amazon Linux 2 (topics abridged), kernel-5.10 not enabled yet.
EXTRAS = '''#!/bin/sh
echo "$*" >> "$NODEOPS_MEMCG_CALLS/amazon-linux-extras.args"
if [ "$1" = list ]; then
cat <<'OUT'
  0  ansible2                 available    \\
        [ =2.4.2  =2.4.6  =2.8  =stable ]
  2  httpd_modules            available    [ =1.0  =stable ]
 55  kernel-5.4               available    [ =stable ]
 58  selinux-ng               available    [ =stable ]
 62  kernel-5.10              available    [ =stable ]
 63  redis6                   available    [ =stable ]
OUT
fi
'''

# host -> (facts, role variables)
HOSTS = {
    'centos7': ('centos7', {}),
    'rocky8': ('rocky8', {}),
    'amazon2': ('amazon2', {}),
    'ubuntu1804': ('ubuntu1804', {}),
    'debian10': ('debian10', {'kernel_upgrade_apt_default_release': 'buster-backports'}),
    'debian12-local': ('debian12', {}),
    'centos7-local': ('centos7', {}),
}

EXPECTED = {
    'centos7': {'module': 'yum', 'args': {'name': 'kernel-lt', 'state': 'latest', 'enablerepo': 'elrepo-kernel'}},
    'rocky8': {'module': 'dnf', 'args': {'name': 'kernel', 'state': 'latest'}},
    'amazon2': {'module': 'yum', 'args': {'name': 'kernel', 'state': 'latest'}},
    'ubuntu1804': {'module': 'apt', 'args': {'name': 'linux-generic-hwe-18.04', 'state': 'latest',
                                             'update_cache': True, 'cache_valid_time': 3600}},
    # the package kernel_check recommends for the running kernel (made Debian 10's by a policy override)
    'debian10': {'module': 'apt', 'args': {'name': 'linux-image-amd64', 'state': 'latest', 'update_cache': True,
                                           'cache_valid_time': 3600, 'default_release': 'buster-backports'}},
}


@pytest.fixture(scope='module')
def install_step(ansible_216_env, tmp_path_factory):
    """Run the playbook once: (the recorded calls per host, the amazon-linux-extras calls, output, dirs)."""
    work = tmp_path_factory.mktemp('install-step')
    library, bin_dir, calls = work / 'library', work / 'bin', work / 'calls'
    for directory in (library, bin_dir, calls):
        directory.mkdir()
    for name in ('yum', 'dnf', 'apt'):
        (library / (name + '.py')).write_text(STAND_IN % {'name': name})
    extras = bin_dir / 'amazon-linux-extras'
    extras.write_text(EXTRAS)
    extras.chmod(extras.stat().st_mode | stat.S_IXUSR)
    # local packages: the files are on the controller; the .deb was copied to its node directory by an
    # earlier run (so check mode installs it), the .rpm was not (so check mode stops after the copy)
    packages, deb_dir, rpm_dir = work / 'packages', work / 'node-deb', work / 'node-rpm'
    packages.mkdir()
    deb_dir.mkdir()
    (packages / DEB).write_text('a kernel package')
    (packages / RPM).write_text('a kernel package')
    (deb_dir / DEB).write_text('a kernel package')
    (deb_dir / DEB).chmod(0o600)
    running = os.uname().release
    local = {
        'debian12-local': {'kernel_upgrade_local_package': str(packages / DEB), 'kernel_upgrade_local_package_dir': str(deb_dir)},
        'centos7-local': {'kernel_upgrade_local_package': str(packages / RPM), 'kernel_upgrade_local_package_dir': str(rpm_dir)},
    }
    hosts = {}
    for host, (facts, variables) in HOSTS.items():
        hosts[host] = dict(variables, node_facts=NODE_FACTS[facts], ansible_python_interpreter=sys.executable,
                           **local.get(host, {}))
    # the running kernel of this machine is fixed; on "debian10" it plays Debian 10's 4.19 (degraded),
    # for which kernel_check recommends linux-image-amd64 from buster-backports
    hosts['debian10']['kernel_upgrade_policy_overrides'] = [{
        'match': '^' + running.replace('.', '[.]').replace('+', '[+]') + '$', 'status': 'degraded',
        'recommendation': {'package': 'linux-image-amd64', 'repository': 'buster-backports', 'minimum': '5.10'}}]
    inventory = work / 'inventory.yml'
    inventory.write_text(json.dumps({'all': {'vars': {'ansible_connection': 'local'}, 'hosts': hosts}}))
    env = dict(ansible_216_env, ANSIBLE_LIBRARY=str(library), NODEOPS_MEMCG_CALLS=str(calls),
               PATH=str(bin_dir) + os.pathsep + ansible_216_env['PATH'])
    env.pop('DEBIAN_FRONTEND', None)  # the apt call's must come from the role
    result = run_playbook(env, PLAYBOOK, str(inventory), {'running_release': running},
                          '--check', '--skip-tags', 'kernel_upgrade_repository')
    assert result.returncode == 0, result.stdout
    recorded = {}
    for name in os.listdir(str(calls)):
        if name.endswith('.json'):
            with open(str(calls / name)) as handle:
                recorded[name[:-len('.json')]] = json.load(handle)
    extras_calls = (calls / 'amazon-linux-extras.args').read_text().splitlines() \
        if (calls / 'amazon-linux-extras.args').exists() else []
    return recorded, extras_calls, result.stdout, {'deb': str(deb_dir), 'rpm': str(rpm_dir)}


def typed(args):
    """The arguments as the package manager module reads them: ansible-core 2.16 templates numbers to strings,
    which the module's int options convert back."""
    return dict((key, int(value) if isinstance(value, str) and value.isdigit() else value)
                for key, value in args.items())


@pytest.mark.parametrize('host', sorted(EXPECTED))
def test_each_family_gets_its_package_manager_call(install_step, host):
    recorded = install_step[0]
    call = recorded[host]
    assert {'module': call['module'], 'args': typed(call['args'])} == EXPECTED[host]
    assert call['check_mode'] is True
    assert call['DEBIAN_FRONTEND'] == ('noninteractive' if call['module'] == 'apt' else None)


def test_amazon_linux_2_lists_the_topics_and_would_enable_kernel_5_10(install_step):
    dummy, extras_calls, output, dummy = install_step
    # check mode runs the read-only list and would run the enable (the command module skips it)
    assert extras_calls == ['list']
    assert 'Enable the kernel topic' in output


def test_local_deb_already_on_the_node_is_installed_with_apt(install_step):
    recorded, dummy, output, dirs = install_step
    assert recorded['debian12-local']['module'] == 'apt'
    assert recorded['debian12-local']['args'] == {'deb': os.path.join(dirs['deb'], DEB)}
    assert 'would install %s (local), then boot' % DEB in output


def test_local_rpm_not_copied_yet_is_not_installed_in_check_mode(install_step):
    recorded, dummy, output, dirs = install_step
    assert 'centos7-local' not in recorded
    assert not os.path.exists(dirs['rpm'])  # check mode made nothing
    assert 'would install %s (local), then boot' % RPM in output


def test_no_other_host_called_a_package_manager(install_step):
    assert sorted(install_step[0]) == sorted(set(EXPECTED) | {'debian12-local'})
