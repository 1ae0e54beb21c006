# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils import kernel_policy
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.kernel_inventory import (
    parse_dpkg_kernels,
    parse_grubby_default,
    parse_grubenv,
    parse_rpm_kernels,
    saved_entry_release,
)
from ansible_collections.nodeops.memcg.plugins.module_utils.kernel_policy import (
    DEFAULT_POLICY,
    RECOMMENDATION_KEYS,
    classify,
    validate_policy,
)

# Real `uname -r` strings: (release, stream, status).
CORPUS = [
    # RHEL/CentOS 7: no fix
    ('3.10.0-1160.el7.x86_64', 'el7', 'severe'),
    ('3.10.0-1160.119.1.el7.x86_64', 'el7', 'severe'),
    ('3.10.0-957.27.2.el7.x86_64', 'el7', 'severe'),
    ('3.10.0-1062.18.1.el7.x86_64', 'el7', 'severe'),
    ('3.10.0-693.el7.x86_64', 'el7', 'severe'),
    ('3.10.0-1160.rt56.1131.el7.x86_64', 'el7', 'severe'),
    # ELRepo kernel-lt / kernel-ml: upstream rule
    ('4.4.227-1.el7.elrepo.x86_64', 'elrepo', 'severe'),
    ('4.15.9-1.el7.elrepo.x86_64', 'elrepo', 'severe'),
    ('4.19.113-1.el7.elrepo.x86_64', 'elrepo', 'degraded'),
    ('5.1.15-1.el7.elrepo.x86_64', 'elrepo', 'degraded'),
    ('5.4.225-1.el7.elrepo.x86_64', 'elrepo', 'fixed'),
    ('5.4.278-1.el8.elrepo.x86_64', 'elrepo', 'fixed'),
    ('6.9.7-1.el8.elrepo.x86_64', 'elrepo', 'fixed'),
    ('6.6.8-1.el9.elrepo.x86_64', 'elrepo', 'fixed'),
    # RHEL 8 family: rpm order of the release part, fixed from 176
    ('4.18.0-80.el8.x86_64', 'el8', 'degraded'),
    ('4.18.0-147.el8.x86_64', 'el8', 'degraded'),
    ('4.18.0-147.5.1.el8_1.x86_64', 'el8', 'degraded'),
    ('4.18.0-176.el8.x86_64', 'el8', 'fixed'),
    ('4.18.0-193.el8.x86_64', 'el8', 'fixed'),
    ('4.18.0-193.28.1.rt13.77.el8_2.x86_64', 'el8', 'fixed'),
    ('4.18.0-305.3.1.el8_4.x86_64', 'el8', 'fixed'),
    ('4.18.0-348.7.1.el8_5.aarch64', 'el8', 'fixed'),
    ('4.18.0-553.5.1.el8_10.x86_64', 'el8', 'fixed'),
    # Ubuntu
    ('4.4.0-210-generic', 'ubuntu', 'severe'),
    ('4.15.0-213-generic', 'ubuntu', 'severe'),
    ('4.15.0-1162-aws', 'ubuntu', 'severe'),
    ('4.15.0-1098-gcp', 'ubuntu', 'severe'),
    ('5.4.0-150-generic', 'ubuntu', 'fixed'),
    ('5.4.0-1103-aws', 'ubuntu', 'fixed'),
    ('5.4.0-1049-gke', 'ubuntu', 'fixed'),
    ('5.13.0-52-generic', 'ubuntu', 'fixed'),
    ('5.15.0-91-generic', 'ubuntu', 'fixed'),
    ('5.15.0-1057-azure', 'ubuntu', 'fixed'),
    ('5.15.0-1049-raspi', 'ubuntu', 'fixed'),
    ('6.8.0-31-generic', 'ubuntu', 'fixed'),
    # Debian
    ('4.9.0-19-amd64', 'debian', 'severe'),
    ('4.16.0-1-amd64', 'debian', 'degraded'),
    ('4.19.0-26-amd64', 'debian', 'degraded'),
    ('4.19.0-27-cloud-amd64', 'debian', 'degraded'),
    ('4.19.0-0.bpo.9-amd64', 'debian', 'degraded'),
    ('5.2.0-3-amd64', 'debian', 'fixed'),
    ('5.10.0-28-cloud-amd64', 'debian', 'fixed'),
    ('5.10.0-0.deb10.16-amd64', 'debian', 'fixed'),
    ('6.1.0-18-cloud-amd64', 'debian', 'fixed'),
    ('6.1.0-18-arm64', 'debian', 'fixed'),
    ('6.12.41+deb13-amd64', 'debian', 'fixed'),
    # Amazon Linux 2
    ('4.14.173-137.229.amzn2.x86_64', 'amzn2', 'severe'),
    ('4.14.336-257.562.amzn2.x86_64', 'amzn2', 'severe'),
    ('4.14.336-257.562.amzn2.aarch64', 'amzn2', 'severe'),
    ('5.4.247-162.350.amzn2.x86_64', 'amzn2', 'fixed'),
    ('5.10.210-201.852.amzn2.x86_64', 'amzn2', 'fixed'),
    ('5.15.148-97.158.amzn2.x86_64', 'amzn2', 'fixed'),
    # Oracle UEK
    ('4.1.12-124.48.6.el7uek.x86_64', 'uek', 'severe'),
    ('4.14.35-2047.527.2.el7uek.x86_64', 'uek', 'severe'),
    ('5.4.17-2102.201.3.el7uek.x86_64', 'uek', 'fixed'),
    ('5.4.17-2136.330.7.5.el8uek.x86_64', 'uek', 'fixed'),
    ('5.15.0-200.131.27.el8uek.x86_64', 'uek', 'fixed'),
    ('5.15.0-206.153.7.el9uek.x86_64', 'uek', 'fixed'),
    # Alibaba Cloud Linux
    ('4.19.91-26.al7.x86_64', 'alinux', 'degraded'),
    ('4.19.91-27.al7.x86_64', 'alinux', 'degraded'),
    ('5.10.134-16.al8.x86_64', 'alinux', 'fixed'),
    # anything else with major.minor: upstream rule
    ('2.6.32-754.35.1.el6.x86_64', 'upstream', 'severe'),
    ('4.14.355-196.647.amzn1.x86_64', 'upstream', 'severe'),
    ('4.15.18-30-pve', 'upstream', 'severe'),
    ('5.1.15-arch1-1-ARCH', 'upstream', 'degraded'),
    ('5.10.16.3-microsoft-standard-WSL2', 'upstream', 'fixed'),
    ('5.14.0-362.8.1.el9_3.x86_64', 'upstream', 'fixed'),
    ('6.1.79-99.164.amzn2023.x86_64', 'upstream', 'fixed'),
    ('6.6.16-linuxkit', 'upstream', 'fixed'),
    ('6.8.12-4-pve', 'upstream', 'fixed'),
    ('6.18.44-fc-v657', 'upstream', 'fixed'),
    # unparseable
    ('garbage', 'unknown', 'unknown'),
    ('Linux', 'unknown', 'unknown'),
    ('v5.4', 'unknown', 'unknown'),
    ('', 'unknown', 'unknown'),
]

RESULT_KEYS = {'release', 'stream', 'status', 'reason', 'source', 'upgrade_needed', 'recommendation'}


@pytest.mark.parametrize('release, stream, status', CORPUS)
def test_corpus(release, stream, status):
    result = classify(release)
    assert (result['stream'], result['status']) == (stream, status)
    assert set(result) == RESULT_KEYS
    assert result['release'] == release
    assert result['upgrade_needed'] is (status in ('severe', 'degraded'))
    assert sorted(result['recommendation']) == sorted(RECOMMENDATION_KEYS)
    assert bool(result['recommendation']['summary']) is result['upgrade_needed']
    assert result['reason']


def test_default_policy_is_valid_and_complete():
    assert validate_policy(DEFAULT_POLICY) is DEFAULT_POLICY
    for entry in DEFAULT_POLICY:
        assert entry['stream'] and entry['source'] and entry['reason']
        assert sorted(entry['recommendation']) == sorted(RECOMMENDATION_KEYS)
    assert DEFAULT_POLICY[-1]['stream'] == 'upstream'


@pytest.mark.parametrize('release, package, minimum, source', [
    ('3.10.0-1160.el7.x86_64', 'kernel-lt', '5.4', '42a300353577'),
    ('4.18.0-147.5.1.el8_1.x86_64', 'kernel', '4.18.0-176', '1795049'),
    ('4.15.0-213-generic', 'linux-generic-hwe-18.04', '5.4', '42a300353577'),
    ('4.19.0-26-amd64', 'linux-image-amd64', '5.10', '205b20cc5a99'),
    ('4.14.336-257.562.amzn2.x86_64', 'kernel', '5.10', 'a983b5ebee57'),
    ('4.14.35-2047.527.2.el7uek.x86_64', 'kernel-uek', '5.4.17', '42a300353577'),
    ('4.19.91-27.al7.x86_64', 'kernel', '5.10', '2d146aa3aa84'),
])
def test_recommendations(release, package, minimum, source):
    result = classify(release)
    assert result['recommendation']['package'] == package
    assert result['recommendation']['minimum'] == minimum
    assert source in result['source']


def test_el7_points_at_elrepo_and_alinux_at_memcg_reaper():
    assert 'elrepo-kernel' == classify('3.10.0-1160.el7.x86_64')['recommendation']['repository']
    alinux = classify('4.19.91-27.al7.x86_64')
    assert 'memcg_reaper' in alinux['recommendation']['summary']
    assert 'memcg_reaper' in alinux['reason']


def test_release_is_stripped():
    assert classify(' 5.4.0-150-generic\n')['release'] == '5.4.0-150-generic'


# Overrides


def test_vendor_backport_override_marks_release_fixed():
    overrides = [{'match': r'^4\.18\.0-147\.5\.1\.el8_1', 'stream': 'el8', 'status': 'fixed',
                  'reason': 'vendor backport'}]
    result = classify('4.18.0-147.5.1.el8_1.x86_64', overrides)
    assert result == {
        'release': '4.18.0-147.5.1.el8_1.x86_64',
        'stream': 'el8',
        'status': 'fixed',
        'reason': 'vendor backport',
        'source': 'policy_overrides[0]',
        'upgrade_needed': False,
        'recommendation': {'summary': '', 'package': '', 'repository': '', 'minimum': ''},
    }
    # other el8 releases still follow the table
    assert classify('4.18.0-147.el8.x86_64', overrides)['status'] == 'degraded'


def test_minimal_override_keeps_stream_and_upgrade_path_of_the_table():
    result = classify('5.4.0-150-generic', [{'match': '-generic$', 'status': 'degraded'}])
    assert result['stream'] == 'ubuntu'
    assert result['status'] == 'degraded'
    assert result['upgrade_needed'] is True
    assert result['recommendation']['package'] == 'linux-generic-hwe-18.04'
    assert result['reason'] == 'set by policy_overrides[0]'


def test_override_of_an_unknown_release():
    result = classify('custom-build', [{'match': '^custom', 'status': 'fixed', 'source': 'our CI'}])
    assert (result['stream'], result['status'], result['source']) == ('override', 'fixed', 'our CI')


def test_override_with_upstream_thresholds():
    overrides = [{'match': r'^\d+\.\d+', 'stream': 'upstream', 'degraded_from': '4.16',
                  'fixed_from': '5.13', 'reason': {'degraded': 'want rstat', 'fixed': 'rstat'},
                  'recommendation': {'summary': 'install 5.13+', 'minimum': '5.13'}}]
    result = classify('5.10.0-28-cloud-amd64', overrides)
    assert (result['stream'], result['status'], result['reason']) == ('upstream', 'degraded', 'want rstat')
    assert result['recommendation'] == {'summary': 'install 5.13+', 'package': '',
                                        'repository': '', 'minimum': '5.13'}
    assert classify('5.15.0-91-generic', overrides)['status'] == 'fixed'
    assert classify('4.15.0-213-generic', overrides)['status'] == 'severe'


def test_override_with_rpm_ordering():
    overrides = [{'match': r'\.el8', 'ordering': 'rpm', 'version_pattern': r'^4\.18\.0-([\d.]+)\.el8',
                  'fixed_from': '193.28.1', 'status': 'degraded'}]
    assert classify('4.18.0-193.el8.x86_64', overrides)['status'] == 'degraded'
    assert classify('4.18.0-193.28.1.el8_2.x86_64', overrides)['status'] == 'fixed'
    assert classify('4.18.0-1160.el8.x86_64', overrides)['status'] == 'fixed'


def test_override_with_dpkg_ordering():
    overrides = [{'match': '-generic$', 'ordering': 'dpkg', 'version_pattern': r'^(\d+\.\d+\.\d+-\d+)',
                  'fixed_from': '4.15.0-200', 'status': 'severe'}]
    assert classify('4.15.0-213-generic', overrides)['status'] == 'fixed'
    assert classify('4.15.0-20-generic', overrides)['status'] == 'severe'


def test_rpm_threshold_may_be_an_int():
    overrides = [{'match': r'\.el8', 'ordering': 'rpm', 'version_pattern': r'^4\.18\.0-(\d+)',
                  'fixed_from': 200, 'status': 'degraded'}]
    assert classify('4.18.0-193.el8.x86_64', overrides)['status'] == 'degraded'


def test_first_override_wins_and_overrides_are_not_modified():
    overrides = [{'match': 'el7', 'status': 'degraded'}, {'match': 'el7', 'status': 'fixed'}]
    before = copy.deepcopy(overrides)
    assert classify('3.10.0-1160.el7.x86_64', overrides)['status'] == 'degraded'
    assert overrides == before


def test_version_that_cannot_be_derived_is_unknown():
    result = classify('custom-kernel', [{'match': 'custom', 'fixed_from': '5.2'}])
    assert result['status'] == 'unknown'
    assert "'custom-kernel'" in result['reason']
    assert result['upgrade_needed'] is False


@pytest.mark.parametrize('entry, words', [
    ({'match': '(unclosed', 'status': 'fixed'}, ['policy_overrides[1]', "'(unclosed'"]),
    ({'match': 'el7', 'status': 'sever'}, ['policy_overrides[1]', "'sever'"]),
    ({'status': 'fixed'}, ['policy_overrides[1]', 'match']),
    ({'match': '', 'status': 'fixed'}, ['policy_overrides[1]', 'match']),
    ({'match': 'el7', 'ordering': 'semver', 'fixed_from': '1'}, ['policy_overrides[1]', "'semver'"]),
    ({'match': 'el7', 'version_pattern': '[', 'fixed_from': '5.2'}, ['policy_overrides[1]', "'['"]),
    ({'match': 'el7', 'fixed_from': 5.1}, ['policy_overrides[1]', '5.1', 'quote']),
    ({'match': 'el7', 'fixed_from': 'five'}, ['policy_overrides[1]', "'five'"]),
    ({'match': 'el7', 'ordering': 'dpkg', 'fixed_from': 'x:1'}, ['policy_overrides[1]', "'x:1'"]),
    ({'match': 'el7', 'fixed_form': '5.2'}, ['policy_overrides[1]', 'fixed_form']),
    ({'match': 'el7', 'recommendation': {'pkg': 'kernel'}}, ['policy_overrides[1]', "'pkg'"]),
    ({'match': 'el7', 'recommendation': 'kernel-lt'}, ['policy_overrides[1]', "'kernel-lt'"]),
    ({'match': 'el7', 'reason': {'broken': 'x'}}, ['policy_overrides[1]', "'broken'"]),
    ({'match': 'el7', 'reason': 42}, ['policy_overrides[1]', '42']),
    ({'match': 'el7', 'stream': ['el7']}, ['policy_overrides[1]', "['el7']"]),
    ('el7', ['policy_overrides[1]', "'el7'"]),
    # the version group must take part in every match (was: 'NoneType' object has no attribute 'strip')
    ({'match': 'el7', 'version_pattern': r'^(\d+)?', 'fixed_from': '5.2'},
     ['policy_overrides[1]', 'version_pattern', "'^(\\\\d+)?'", 'optional']),
    ({'match': 'el7', 'version_pattern': r'^(?:(\d+\.\d+)|x)', 'fixed_from': '5.2'}, ['policy_overrides[1]', 'optional']),
    ({'match': 'el7', 'version_pattern': r'^(\d+)*', 'fixed_from': '5.2'}, ['policy_overrides[1]', 'optional']),
    ({'match': 'el7', 'version_pattern': r'(?!(\d+))', 'fixed_from': '5.2'}, ['policy_overrides[1]', 'optional']),
    ({'match': 'el7', 'version_pattern': r'^((\d+)\.(\d+))?', 'fixed_from': '5.2'}, ['policy_overrides[1]', 'optional']),
    ({'match': 'el7', 'fixed_from': ''}, ['policy_overrides[1]', 'fixed_from', "''"]),
    ({'match': 'el7', 'degraded_from': '5.x.y'}, ['policy_overrides[1]', 'degraded_from', "'5.x.y'"]),
])
def test_bad_override_names_entry_and_value(entry, words):
    overrides = [{'match': 'never-matches', 'status': 'fixed'}, entry]
    with pytest.raises(MemcgError) as err:
        classify('3.10.0-1160.el7.x86_64', overrides)
    for word in words:
        assert word in str(err.value)


def test_overrides_must_be_a_list():
    with pytest.raises(MemcgError, match='policy must be a list'):
        validate_policy({'match': 'el7'})


# Inventory parsing

RPM_OUTPUT = """kernel 3.10.0 1160.el7 x86_64
kernel 3.10.0 1160.119.1.el7 x86_64
kernel-lt 5.4.225 1.el7.elrepo x86_64
package kernel-ml is not installed
package kernel-uek is not installed
"""

RPM_OUTPUT_UEK = """kernel 4.18.0 553.5.1.el8_10 x86_64
package kernel-lt is not installed
package kernel-ml is not installed
kernel-uek 5.4.17 2136.330.7.5.el8uek x86_64
"""

DPKG_OUTPUT_DEBIAN = (
    # db:Status-Abbrev is three characters: want, status, error flag (a space)
    'linux-image-4.19.0-26-amd64 4.19.304-1 rc \n'
    'linux-image-5.10.0-28-amd64 5.10.209-2 ii \n'
    'linux-image-5.10.0-28-amd64-dbg 5.10.209-2 ii \n'
    'linux-image-5.10.0-28-cloud-amd64 5.10.209-2 hi \n'
    'linux-image-6.1.0-18-amd64-unsigned 6.1.76-1 ii \n'
    'linux-image-amd64 5.10.209-2 ii \n'
    'linux-image-cloud-amd64 5.10.209-2 un \n'
)

DPKG_OUTPUT_UBUNTU = (
    # db:Status-Abbrev is three characters: want, status, error flag (a space)
    'linux-image-4.15.0-213-generic 4.15.0-213.224 ii \n'
    'linux-image-5.4.0-150-generic 5.4.0-150.167~18.04.1 ii \n'
    'linux-image-generic 4.15.0.213.196 ii \n'
    'linux-image-generic-hwe-18.04 5.4.0.150.167~18.04.121 ii \n'
    'linux-image-unsigned-5.4.0-149-generic 5.4.0-149.166~18.04.1 iU \n'
    'linux-image-unsigned-5.4.0-150-lowlatency 5.4.0-150.167~18.04.1 ii \n'
)


def test_parse_rpm_kernels():
    assert parse_rpm_kernels(RPM_OUTPUT) == [
        {'package': 'kernel', 'version': '3.10.0-1160.el7', 'release': '3.10.0-1160.el7.x86_64'},
        {'package': 'kernel', 'version': '3.10.0-1160.119.1.el7', 'release': '3.10.0-1160.119.1.el7.x86_64'},
        {'package': 'kernel-lt', 'version': '5.4.225-1.el7.elrepo', 'release': '5.4.225-1.el7.elrepo.x86_64'},
    ]
    assert [k['release'] for k in parse_rpm_kernels(RPM_OUTPUT_UEK)] == [
        '4.18.0-553.5.1.el8_10.x86_64', '5.4.17-2136.330.7.5.el8uek.x86_64']
    assert parse_rpm_kernels('package kernel is not installed\n') == []
    assert parse_rpm_kernels('') == []


def test_parse_dpkg_kernels_debian():
    assert parse_dpkg_kernels(DPKG_OUTPUT_DEBIAN) == [
        {'package': 'linux-image-5.10.0-28-amd64', 'version': '5.10.209-2', 'release': '5.10.0-28-amd64'},
        {'package': 'linux-image-5.10.0-28-cloud-amd64', 'version': '5.10.209-2',
         'release': '5.10.0-28-cloud-amd64'},
        {'package': 'linux-image-6.1.0-18-amd64-unsigned', 'version': '6.1.76-1', 'release': '6.1.0-18-amd64'},
    ]


def test_parse_dpkg_kernels_ubuntu():
    assert [k['release'] for k in parse_dpkg_kernels(DPKG_OUTPUT_UBUNTU)] == [
        '4.15.0-213-generic', '5.4.0-150-generic', '5.4.0-150-lowlatency']
    assert parse_dpkg_kernels('dpkg-query: no packages found matching linux-image-*\n') == []


@pytest.mark.parametrize('output, expected', [
    ('/boot/vmlinuz-4.18.0-193.el8.x86_64\n', '4.18.0-193.el8.x86_64'),
    ('/boot/vmlinuz-5.4.225-1.el7.elrepo.x86_64\n', '5.4.225-1.el7.elrepo.x86_64'),
    ('', None),
    ('/boot/custom-image\n', '/boot/custom-image'),
])
def test_parse_grubby_default(output, expected):
    assert parse_grubby_default(output) == expected


DEBIAN_GRUBENV = (
    '# GRUB Environment Block\n'
    'saved_entry=gnulinux-advanced-0f5d7c1e-8e0a-4b62-9d3c-2c1f4b7a9e11>'
    'gnulinux-5.10.0-28-amd64-advanced-0f5d7c1e-8e0a-4b62-9d3c-2c1f4b7a9e11\n'
    + '#' * 200
)


def test_parse_grubenv():
    assert parse_grubenv(DEBIAN_GRUBENV) == {
        'saved_entry': 'gnulinux-advanced-0f5d7c1e-8e0a-4b62-9d3c-2c1f4b7a9e11>'
                       'gnulinux-5.10.0-28-amd64-advanced-0f5d7c1e-8e0a-4b62-9d3c-2c1f4b7a9e11'}
    listed = 'saved_entry=ffffffffffffffffffffffffffffffff-4.18.0-193.el8.x86_64\nboot_success=0\n' \
             'kernelopts=root=/dev/mapper/rhel-root ro crashkernel=auto\n'
    assert parse_grubenv(listed)['kernelopts'] == 'root=/dev/mapper/rhel-root ro crashkernel=auto'


@pytest.mark.parametrize('entry, expected', [
    (parse_grubenv(DEBIAN_GRUBENV)['saved_entry'], '5.10.0-28-amd64'),
    ('gnulinux-4.19.0-26-amd64-recovery-0f5d7c1e-8e0a-4b62-9d3c-2c1f4b7a9e11', '4.19.0-26-amd64'),
    ('Advanced options for Ubuntu>Ubuntu, with Linux 5.4.0-150-generic', '5.4.0-150-generic'),
    ('Advanced options for Ubuntu>Ubuntu, with Linux 4.15.0-213-generic (recovery mode)', '4.15.0-213-generic'),
    ('CentOS Linux (3.10.0-1160.el7.x86_64) 7 (Core)', '3.10.0-1160.el7.x86_64'),
    ('CentOS Linux (5.4.225-1.el7.elrepo.x86_64) 7 (Core)', '5.4.225-1.el7.elrepo.x86_64'),
    ('2b0a4a3c8f1e4d6a9c7b5e3f1a2d4c6e-4.18.0-193.el8.x86_64', '4.18.0-193.el8.x86_64'),
    ('0', '0'),
    ('1>2', '1>2'),
    ('', None),
    (None, None),
])
def test_saved_entry_release(entry, expected):
    assert saved_entry_release(entry) == expected


def test_boot_findings_warn_only_when_the_next_boot_leaves_a_fixed_kernel():
    from ansible_collections.nodeops.memcg.plugins.module_utils.kernel_policy import boot_findings
    fixed, severe = classify('5.4.225-1.el7.elrepo.x86_64'), classify('3.10.0-1160.el7.x86_64')
    assert [f['code'] for f in boot_findings(fixed, severe)] == ['boot_default_unfixed']
    assert boot_findings(fixed, fixed) == [] and boot_findings(fixed, None) == []
    assert boot_findings(severe, severe) == []  # the running kernel's own status already says it


@pytest.mark.parametrize('pattern', [r'^(\d+\.\d+)', r'^(?:x-)?(\d+\.\d+)', r'(\d+\.\d+)+', r'^\d+\.\d+',
                                     r'(?=(\d+\.\d+))'])
def test_version_patterns_whose_group_always_takes_part_are_accepted(pattern):
    entry = {'match': 'el7', 'version_pattern': pattern, 'fixed_from': '5.2'}
    assert kernel_policy.validate_policy([entry], 'policy_overrides') == [entry]
    assert classify('5.4.0-1.el7', [entry])['status'] == 'fixed'
