# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node procedure's install plan and target release (plugins/plugin_utils/kernel_install.py).

One case per row of docs/node-procedure.md's table, with the facts a node of that family gives
(tests/unit/fixtures/node_facts.py) and the kernel_check result of its running kernel.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.kernel_policy import classify
from ansible_collections.nodeops.memcg.plugins.plugin_utils import kernel_install as ki
from ansible_collections.nodeops.memcg.tests.unit.fixtures.node_facts import NODE_FACTS, RUNNING

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
ELREPO_FINGERPRINT = '96C0 104F 6315 4731 1E0B B1AE 309B C305 BAAD AE52'


def running(node):
    """kernel_check's result for the node's running kernel (the keys the plan reads)."""
    return classify(RUNNING[node])


def plan_for(node, **options):
    return ki.install_plan(NODE_FACTS[node], running=running(node), **options)


# ---------------------------------------------------------------- install_plan, per family

def test_centos7_installs_kernel_lt_from_elrepo_with_yum():
    plan = plan_for('centos7')
    assert (plan['family'], plan['method'], plan['manager']) == ('el', 'elrepo', 'yum')
    assert (plan['package'], plan['spec'], plan['state']) == ('kernel-lt', 'kernel-lt', 'latest')
    assert plan['repository'] == {
        'name': 'elrepo-kernel',
        'description': 'ELRepo.org Community Enterprise Linux Kernel Repository - el7',
        'baseurl': 'https://elrepo.org/linux/kernel/el7/$basearch/',
        'gpgkey': 'https://www.elrepo.org/RPM-GPG-KEY-elrepo.org',
        'fingerprint': ELREPO_FINGERPRINT,
        'gpgcheck': True,
        # only the install enables it
        'enabled': False,
    }
    assert plan['install'] == {'name': 'kernel-lt', 'state': 'latest', 'enablerepo': 'elrepo-kernel'}
    assert (plan['extras_topic'], plan['local_file'], plan['environment']) == (None, None, {})


def test_elrepo_internal_mirror_kernel_ml_pinned():
    plan = plan_for('centos7', package='kernel-ml', version='5.10.2-1.el7.elrepo',
                    elrepo_baseurl='https://mirror.example.internal/elrepo/kernel/el7/$basearch/',
                    elrepo_gpgkey='file:///etc/pki/rpm-gpg/RPM-GPG-KEY-elrepo.org', elrepo_gpgkey_fingerprint='')
    assert plan['spec'] == 'kernel-ml-5.10.2-1.el7.elrepo'
    assert plan['install'] == {'name': 'kernel-ml-5.10.2-1.el7.elrepo', 'state': 'present', 'enablerepo': 'elrepo-kernel'}
    repository = plan['repository']
    assert repository['baseurl'] == 'https://mirror.example.internal/elrepo/kernel/el7/$basearch/'
    assert repository['gpgkey'] == 'file:///etc/pki/rpm-gpg/RPM-GPG-KEY-elrepo.org'
    # an empty fingerprint checks none; null (the role's default) is ELRepo's
    assert repository['fingerprint'] == ''


@pytest.mark.parametrize('major, manager, gpgkey, fingerprint', [
    (7, 'yum', 'https://www.elrepo.org/RPM-GPG-KEY-elrepo.org', ELREPO_FINGERPRINT),
    (8, 'dnf', 'https://www.elrepo.org/RPM-GPG-KEY-elrepo.org', ELREPO_FINGERPRINT),
    (9, 'dnf', 'https://www.elrepo.org/RPM-GPG-KEY-v2-elrepo.org', ''),
])
def test_elrepo_per_el_major_version(major, manager, gpgkey, fingerprint):
    facts = dict(NODE_FACTS['rocky8'], distribution_major_version=str(major), distribution_version='%d.0' % major,
                 pkg_mgr=manager)
    plan = ki.install_plan(facts, method='elrepo')
    assert plan['manager'] == manager
    assert plan['repository']['baseurl'] == 'https://elrepo.org/linux/kernel/el%d/$basearch/' % major
    assert (plan['repository']['gpgkey'], plan['repository']['fingerprint']) == (gpgkey, fingerprint)


@pytest.mark.parametrize('version, install', [
    ('', {'name': 'kernel', 'state': 'latest'}),
    ('4.18.0-193.el8', {'name': 'kernel-4.18.0-193.el8', 'state': 'present'}),
    ('4.18.0-240.1.1.el8_3', {'name': 'kernel-4.18.0-240.1.1.el8_3', 'state': 'present'}),
])
def test_rocky8_updates_the_distribution_kernel_with_dnf(version, install):
    plan = plan_for('rocky8', version=version)
    assert (plan['family'], plan['method'], plan['manager'], plan['package']) == ('el', 'dnf', 'dnf', 'kernel')
    assert plan['install'] == install
    assert plan['repository'] is None


def test_dnf5_node_keeps_its_package_manager():
    plan = ki.install_plan(dict(NODE_FACTS['rocky8'], pkg_mgr='dnf5'))
    assert plan['manager'] == 'dnf5'


def test_amazon_linux_2_installs_the_kernel_of_the_extras_topic():
    plan = plan_for('amazon2')
    assert (plan['family'], plan['method'], plan['manager'], plan['package']) == ('el', 'extras', 'yum', 'kernel')
    assert plan['extras_topic'] == 'kernel-5.10'
    assert plan['install'] == {'name': 'kernel', 'state': 'latest'}
    assert plan_for('amazon2', extras_topic='kernel-5.15')['extras_topic'] == 'kernel-5.15'


# `amazon-linux-extras list` on Amazon Linux 2 (abridged): a wrapped row, a retired topic (_), and
# kernel-5.4 enabled with a version pinned.
EXTRAS_LIST = """  0  ansible2                 available    \\
        [ =2.4.2  =2.4.6  =2.8  =stable ]
  _  kernel-ng                available    [ =stable ]
 55  kernel-5.4=latest        enabled      [ =stable ]
 62  kernel-5.10              available    [ =stable ]
"""


def test_extras_topic_enabled_reads_the_state_column_of_the_topic_row():
    assert ki.extras_topic_enabled(EXTRAS_LIST, 'kernel-5.4') is True
    assert ki.extras_topic_enabled(EXTRAS_LIST, 'kernel-5.10') is False
    assert ki.extras_topic_enabled(EXTRAS_LIST.replace('kernel-5.10              available',
                                                       'kernel-5.10=latest       enabled'), 'kernel-5.10') is True


def test_extras_topic_the_node_does_not_list_is_refused_by_name():
    with pytest.raises(MemcgError, match="lists no topic 'kernel-5.1' on this node"):
        ki.extras_topic_enabled(EXTRAS_LIST, 'kernel-5.1')
    # a prefix of a listed topic, or a value of its versions column, is not the topic
    with pytest.raises(MemcgError, match="no topic '=stable'"):
        ki.extras_topic_enabled(EXTRAS_LIST, '=stable')


def test_ubuntu_1804_installs_the_hwe_kernel():
    plan = plan_for('ubuntu1804')
    assert (plan['family'], plan['method'], plan['manager']) == ('debian', 'apt', 'apt')
    assert plan['install'] == {'name': 'linux-generic-hwe-18.04', 'state': 'latest', 'update_cache': True,
                               'cache_valid_time': 3600}
    assert plan['environment'] == {'DEBIAN_FRONTEND': 'noninteractive'}


def test_debian_10_installs_what_kernel_check_recommends_from_backports():
    plan = plan_for('debian10', apt_default_release='buster-backports')
    assert plan['package'] == 'linux-image-amd64'  # kernel_check's recommendation for 4.19
    assert plan['install'] == {'name': 'linux-image-amd64', 'state': 'latest', 'update_cache': True,
                               'cache_valid_time': 3600, 'default_release': 'buster-backports'}


@pytest.mark.parametrize('node, options, install', [
    # a named package wins over the HWE default
    ('ubuntu1804', {'package': 'linux-image-generic-hwe-18.04'},
     {'name': 'linux-image-generic-hwe-18.04', 'state': 'latest', 'update_cache': True, 'cache_valid_time': 3600}),
    ('debian12', {'package': 'linux-image-6.1.0-18-cloud-amd64', 'version': '6.1.76-1'},
     {'name': 'linux-image-6.1.0-18-cloud-amd64=6.1.76-1', 'state': 'present', 'update_cache': True,
      'cache_valid_time': 3600}),
])
def test_debian_named_package(node, options, install):
    assert plan_for(node, **options)['install'] == install


@pytest.mark.parametrize('node, path, install', [
    ('centos7', '/srv/kernels/kernel-lt-5.4.278-1.el7.elrepo.x86_64.rpm',
     {'name': '/var/tmp/nodeops-memcg-kernel/kernel-lt-5.4.278-1.el7.elrepo.x86_64.rpm', 'state': 'present'}),
    ('rocky8', 'kernel-core-4.18.0-193.el8.x86_64.rpm',
     {'name': '/var/tmp/nodeops-memcg-kernel/kernel-core-4.18.0-193.el8.x86_64.rpm', 'state': 'present'}),
    ('debian12', '/srv/kernels/linux-image-6.1.0-18-cloud-amd64_6.1.76-1_amd64.deb',
     {'deb': '/var/tmp/nodeops-memcg-kernel/linux-image-6.1.0-18-cloud-amd64_6.1.76-1_amd64.deb'}),
])
def test_local_package_file_selects_method_local(node, path, install):
    plan = plan_for(node, local_package=path)
    assert (plan['method'], plan['state'], plan['repository'], plan['package']) == ('local', 'present', None, '')
    assert plan['spec'] == path.rsplit('/', 1)[-1]
    assert plan['local_file'] == {'src': path, 'dest': install.get('deb') or install['name'],
                                  'dir': '/var/tmp/nodeops-memcg-kernel'}
    assert plan['install'] == install


def test_local_package_dir_is_where_the_file_goes():
    plan = plan_for('debian12', local_package='/srv/k.deb', local_package_dir='/opt/kernels/')
    assert plan['local_file'] == {'src': '/srv/k.deb', 'dest': '/opt/kernels/k.deb', 'dir': '/opt/kernels'}


@pytest.mark.parametrize('node, options, words', [
    # a pinned version the policy table calls degraded or severe
    ('rocky8', {'version': '4.18.0-147.5.1.el8_1'}, ['kernel_upgrade_version 4.18.0-147.5.1.el8_1', 'degraded',
                                                     '4.18.0-176 or later']),
    ('centos7', {'version': '4.4.227-1.el7.elrepo'}, ['4.4.227-1.el7.elrepo', 'severe', '5.4 or later']),
    ('debian10', {'package': 'linux-image-amd64', 'version': '4.19+105+deb10u21'}, ['4.19+105+deb10u21', 'degraded']),
    ('centos7', {'method': 'dnf'}, ['dnf does not apply to CentOS 7.9', 'elrepo']),
    ('amazon2', {'method': 'dnf'}, ['dnf does not apply to Amazon 2', 'extras']),
    ('centos7', {'method': 'apt'}, ['apt does not apply to CentOS 7.9']),
    ('debian12', {'method': 'elrepo'}, ['elrepo does not apply to Debian 12.11', 'use apt or local']),
    # no package: the running kernel is fixed, so kernel_check recommends none
    ('debian12', {}, ['no kernel package to install on Debian 12.11', '6.1.0-18-amd64, fixed',
                      'set kernel_upgrade_package']),
    ('debian12', {'method': 'local'}, ["kernel_upgrade_local_package, a .deb file", "(got '')"]),
    ('debian12', {'local_package': '/tmp/kernel.rpm'}, ['.deb', '/tmp/kernel.rpm']),
    ('centos7', {'local_package': '/tmp/linux-image.deb'}, ['.rpm', '/tmp/linux-image.deb']),
    ('centos7', {'method': 'zypper'}, ["unknown kernel_upgrade_method 'zypper'"]),
])
def test_install_plan_refusals(node, options, words):
    with pytest.raises(MemcgError) as caught:
        plan_for(node, **options)
    for word in words:
        assert word in str(caught.value)


def test_pinned_version_follows_the_policy_overrides():
    override = [{'match': r'^4\.18\.0-147\.', 'status': 'fixed', 'reason': 'backported here'}]
    assert plan_for('rocky8', version='4.18.0-147.5.1.el8_1', policy_overrides=override)['state'] == 'present'


def test_other_os_families_need_their_own_procedure():
    with pytest.raises(MemcgError) as caught:
        ki.install_plan({'os_family': 'Suse', 'distribution': 'SLES'})
    assert 'not Suse: plug in your own with kernel_upgrade_node_procedure' in str(caught.value)


def test_elrepo_needs_the_major_version():
    with pytest.raises(MemcgError) as caught:
        ki.install_plan(dict(NODE_FACTS['centos7'], distribution_major_version=''), method='elrepo')
    assert 'EL major version' in str(caught.value)


# ---------------------------------------------------------------- target_release

def kernels(*items):
    return {'installed_kernels': [{'package': package, 'version': '', 'release': release}
                                  for package, release in items]}


EL7_OLD = '3.10.0-1160.el7.x86_64'


def test_el7_boots_the_highest_fixed_kernel_lt():
    plan = plan_for('centos7')
    after = kernels(('kernel', EL7_OLD), ('kernel-lt', '5.4.99-1.el7.elrepo.x86_64'),
                    ('kernel-lt', '5.4.278-1.el7.elrepo.x86_64'), ('kernel-ml', '6.9.7-1.el7.elrepo.x86_64'))
    chosen = ki.target_release(plan, running('centos7'), after)
    # kernel-ml is another package; 5.4.278 > 5.4.99 as numbers
    assert chosen['release'] == '5.4.278-1.el7.elrepo.x86_64'
    assert chosen['candidates'] == ['5.4.278-1.el7.elrepo.x86_64', '5.4.99-1.el7.elrepo.x86_64']
    assert chosen['message'] == ('would install kernel-lt (elrepo), then boot 5.4.278-1.el7.elrepo.x86_64 once; '
                                 'the running 3.10.0-1160.el7.x86_64 (severe) stays the default')


def test_el8_z_stream_builds_are_ordered_by_rpm():
    # the regex ranking this replaces tied -240.el8 with -240.el8_2
    plan = plan_for('rocky8')
    before = classify('4.18.0-147.el8.x86_64')
    after = kernels(('kernel', '4.18.0-147.el8.x86_64'), ('kernel', '4.18.0-240.el8.x86_64'),
                    ('kernel', '4.18.0-240.el8_2.x86_64'))
    assert ki.target_release(plan, before, after)['release'] == '4.18.0-240.el8_2.x86_64'
    after['installed_kernels'].append({'package': 'kernel', 'version': '', 'release': '4.18.0-240.1.1.el8_3.x86_64'})
    assert ki.target_release(plan, before, after)['release'] == '4.18.0-240.1.1.el8_3.x86_64'


def test_debian_meta_package_takes_any_linux_image():
    plan = plan_for('debian10', apt_default_release='buster-backports')
    after = kernels(('linux-image-4.19.0-26-amd64', '4.19.0-26-amd64'),
                    ('linux-image-5.10.0-0.deb10.27-amd64', '5.10.0-0.deb10.27-amd64'),
                    ('linux-image-5.10.0-0.deb10.28-amd64', '5.10.0-0.deb10.28-amd64'))
    assert ki.target_release(plan, running('debian10'), after)['release'] == '5.10.0-0.deb10.28-amd64'


def test_two_flavours_of_one_build_ask_for_the_release():
    plan = plan_for('ubuntu1804')
    after = kernels(('linux-image-4.15.0-213-generic', '4.15.0-213-generic'),
                    ('linux-image-5.4.0-150-generic', '5.4.0-150-generic'),
                    ('linux-image-5.4.0-150-lowlatency', '5.4.0-150-lowlatency'))
    with pytest.raises(MemcgError) as caught:
        ki.target_release(plan, running('ubuntu1804'), after)
    assert str(caught.value) == ('5.4.0-150-generic and 5.4.0-150-lowlatency rank the same: set '
                                 'kernel_upgrade_target_release to one of them')
    chosen = ki.target_release(plan, running('ubuntu1804'), after, pinned='5.4.0-150-lowlatency')
    assert (chosen['release'], chosen['candidates']) == ('5.4.0-150-lowlatency', [])


def test_fixed_running_kernel_stays_unless_a_higher_fixed_one_is_installed():
    plan = plan_for('debian12', package='linux-image-amd64')
    before = classify('6.1.0-18-amd64')
    after = kernels(('linux-image-6.1.0-17-amd64', '6.1.0-17-amd64'), ('linux-image-6.1.0-18-amd64', '6.1.0-18-amd64'))
    chosen = ki.target_release(plan, before, after)
    assert chosen['release'] == '6.1.0-18-amd64'
    assert chosen['message'].endswith('then boot the highest fixed release installed by then once if it is newer '
                                      'than the running 6.1.0-18-amd64 (fixed), which stays the default '
                                      '(otherwise no reboot)')
    after['installed_kernels'].append({'package': 'linux-image-6.1.0-21-amd64', 'version': '',
                                       'release': '6.1.0-21-amd64'})
    assert ki.target_release(plan, before, after)['release'] == '6.1.0-21-amd64'


def test_policy_overrides_decide_what_is_fixed():
    plan = plan_for('centos7')
    after = kernels(('kernel', EL7_OLD), ('kernel-lt', '5.4.278-1.el7.elrepo.x86_64'))
    override = [{'match': r'^5\.4\.278-1\.el7', 'status': 'severe'}]
    with pytest.raises(MemcgError) as caught:
        ki.target_release(plan, running('centos7'), after, policy_overrides=override)
    assert str(caught.value) == (
        'no installed kernel of kernel-lt classifies as fixed (installed: 3.10.0-1160.el7.x86_64, '
        '5.4.278-1.el7.elrepo.x86_64; running 3.10.0-1160.el7.x86_64, severe): check the repository, or set '
        'kernel_upgrade_target_release')


def test_pinned_target_must_be_installed():
    plan = plan_for('centos7')
    after = kernels(('kernel', EL7_OLD))
    with pytest.raises(MemcgError) as caught:
        ki.target_release(plan, running('centos7'), after, pinned='5.4.278-1.el7.elrepo.x86_64')
    assert str(caught.value) == ('kernel_upgrade_target_release 5.4.278-1.el7.elrepo.x86_64 is not installed '
                                 '(installed: 3.10.0-1160.el7.x86_64)')
    # the running kernel needs no install; check mode installed nothing yet
    assert ki.target_release(plan, running('centos7'), after, pinned=EL7_OLD)['release'] == EL7_OLD
    chosen = ki.target_release(plan, running('centos7'), after, pinned='5.4.278-1.el7.elrepo.x86_64', check_mode=True)
    assert chosen['release'] == '5.4.278-1.el7.elrepo.x86_64'


def test_check_mode_accepts_no_target_yet():
    plan = plan_for('centos7')
    chosen = ki.target_release(plan, running('centos7'), kernels(('kernel', EL7_OLD)), check_mode=True)
    assert chosen['release'] == ''
    assert chosen['message'].startswith('would install kernel-lt (elrepo), then boot the highest fixed release')


# ---------------------------------------------------------------- the role's defaults say nothing twice

def test_role_defaults_leave_the_repository_to_the_plan():
    yaml = pytest.importorskip('yaml')
    with open(os.path.join(REPO_ROOT, 'roles', 'kernel_upgrade', 'defaults', 'main.yml')) as handle:
        defaults = yaml.safe_load(handle)
    for name in ('kernel_upgrade_elrepo_baseurl', 'kernel_upgrade_elrepo_gpgkey',
                 'kernel_upgrade_elrepo_gpgkey_fingerprint', 'kernel_upgrade_extras_topic'):
        assert defaults[name] is None, name
