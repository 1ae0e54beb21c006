# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from unittest import mock

import shutil

import pytest

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeops.memcg.plugins.modules import kernel_check
from ansible_collections.nodeops.memcg.tests.unit.utils.module_harness import run_module

CLASSIFY_KEYS = ('release', 'stream', 'status', 'reason', 'source', 'upgrade_needed', 'recommendation')

RPM_OUTPUT = (
    'kernel 3.10.0 1160.el7 x86_64\n'
    'kernel-lt 5.4.225 1.el7.elrepo x86_64\n'
    'package kernel-ml is not installed\n'
    'package kernel-uek is not installed\n'
)
DPKG_OUTPUT = (
    'linux-image-4.19.0-26-amd64 4.19.304-1 ii \n'
    'linux-image-5.10.0-0.deb10.16-amd64 5.10.127-2~bpo10+1 ii \n'
    'linux-image-amd64 4.19+105+deb10u21 ii \n'
)
_GRUBENV_VARS = (
    '# GRUB Environment Block\n'
    'saved_entry=Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 5.10.0-0.deb10.16-amd64\n'
)
# a real block is 1024 bytes padded with '#', so grub-editenv accepts it too
DEBIAN_GRUBENV = _GRUBENV_VARS + '#' * (1024 - len(_GRUBENV_VARS))
DPKG_STATUS = '''Package: linux-image-4.19.0-26-amd64
Status: install ok installed
Maintainer: Debian Kernel Team <debian-kernel@lists.debian.org>
Architecture: amd64
Version: 4.19.304-1
Description: Linux 4.19 for 64-bit PCs (signed)

Package: linux-image-4.19.0-25-amd64
Status: deinstall ok config-files
Maintainer: Debian Kernel Team <debian-kernel@lists.debian.org>
Architecture: amd64
Version: 4.19.289-2
Description: Linux 4.19 for 64-bit PCs (signed)

Package: linux-image-amd64
Status: install ok installed
Maintainer: Debian Kernel Team <debian-kernel@lists.debian.org>
Architecture: amd64
Version: 4.19+105+deb10u21
Description: Linux for 64-bit PCs (meta-package)
'''


@pytest.fixture
def root(tmp_path):
    """A fixture tree: running kernel 4.19.0-26-amd64 and a GRUB environment block."""
    (tmp_path / 'proc/sys/kernel').mkdir(parents=True)
    (tmp_path / 'proc/sys/kernel/osrelease').write_text(u'4.19.0-26-amd64\n')
    (tmp_path / 'boot/grub').mkdir(parents=True)
    (tmp_path / 'boot/grub/grubenv').write_text(DEBIAN_GRUBENV)
    return tmp_path


class FakeTools(object):
    """Stands in for get_bin_path and run_command: the tools named in `outputs` exist."""

    def __init__(self, outputs):
        self.outputs = outputs
        self.calls = []

    def get_bin_path(self, name, *args, **kwargs):
        return '/usr/bin/%s' % name if name in self.outputs else None

    def run_command(self, args, **kwargs):
        self.calls.append((args, kwargs))
        return self.outputs[args[0].rsplit('/', 1)[-1]]

    def patch(self):
        # bound methods are no descriptors: the module instance is not passed to them
        return mock.patch.multiple(AnsibleModule, get_bin_path=self.get_bin_path,
                                   run_command=self.run_command)


def no_tools():
    return FakeTools({}).patch()


def test_release_option_is_classified():
    with no_tools():
        result, failed = run_module(kernel_check.main, {'release': '3.10.0-1160.el7.x86_64'})
    assert not failed
    assert result['changed'] is False
    assert result['kernel']['status'] == 'severe'
    assert result['kernel']['stream'] == 'el7'
    for key in CLASSIFY_KEYS:
        assert result[key] == result['kernel'][key]
    assert result['upgrade_needed'] is True
    assert result['recommendation']['package'] == 'kernel-lt'
    assert result['installed_kernels'] == []
    assert result['boot_default'] is None


def test_running_release_is_read_under_root(root):
    with no_tools():
        result, failed = run_module(kernel_check.main, {'root': str(root), 'list_installed': False})
    assert not failed
    assert (result['release'], result['stream'], result['status']) == ('4.19.0-26-amd64', 'debian', 'degraded')
    assert result['recommendation']['repository'] == 'buster-backports'


def test_release_option_wins_over_root(root):
    with no_tools():
        result, failed = run_module(kernel_check.main, {'root': str(root), 'release': '6.1.0-18-cloud-amd64'})
    assert not failed
    assert result['status'] == 'fixed'
    assert result['recommendation'] == {'summary': '', 'package': '', 'repository': '', 'minimum': ''}


def test_no_tools_still_reads_grubenv(root):
    with no_tools():
        result, failed = run_module(kernel_check.main, {'root': str(root)})
    assert not failed
    assert result['installed_kernels'] == []
    assert result['boot_default'] == '5.10.0-0.deb10.16-amd64'


@pytest.mark.parametrize('check_mode', [False, True])
def test_inventory_under_root(root, check_mode):
    tools = FakeTools({
        'rpm': (0, '', ''),
        'dpkg-query': (0, DPKG_OUTPUT, ''),
        'grubby': (0, '/boot/vmlinuz-should-not-be-used\n', ''),
        'grub-editenv': (0, 'saved_entry=Advanced options for Debian GNU/Linux>'
                            'Debian GNU/Linux, with Linux 5.10.0-0.deb10.16-amd64\n', ''),
    })
    with tools.patch():
        result, failed = run_module(kernel_check.main, {'root': str(root)}, check_mode=check_mode)
    assert not failed
    assert result['changed'] is False
    assert result['installed_kernels'] == [
        {'package': 'linux-image-4.19.0-26-amd64', 'version': '4.19.304-1', 'release': '4.19.0-26-amd64'},
        {'package': 'linux-image-5.10.0-0.deb10.16-amd64', 'version': '5.10.127-2~bpo10+1',
         'release': '5.10.0-0.deb10.16-amd64'},
    ]
    assert result['boot_default'] == '5.10.0-0.deb10.16-amd64'
    commands = [args for args, dummy in tools.calls]
    assert commands == [
        ['/usr/bin/rpm', '--root', str(root), '-q', '--qf', '%{NAME} %{VERSION} %{RELEASE} %{ARCH}\\n',
         'kernel', 'kernel-lt', 'kernel-ml', 'kernel-uek'],
        ['/usr/bin/dpkg-query', '--admindir', str(root / 'var/lib/dpkg'), '-W', '-f',
         '${Package} ${Version} ${db:Status-Abbrev}\\n', 'linux-image-*'],
        ['/usr/bin/grub-editenv', str(root / 'boot/grub/grubenv'), 'list'],
    ]
    for dummy, kwargs in tools.calls:
        assert kwargs['environ_update'] == {'LANG': 'C', 'LC_ALL': 'C'}


def test_el_inventory_on_the_live_system():
    tools = FakeTools({
        # rpm exits with the number of packages not installed
        'rpm': (2, RPM_OUTPUT, ''),
        'grubby': (0, '/boot/vmlinuz-5.4.225-1.el7.elrepo.x86_64\n', ''),
    })
    with tools.patch():
        result, failed = run_module(kernel_check.main, {'release': '3.10.0-1160.el7.x86_64'})
    assert not failed
    assert [k['release'] for k in result['installed_kernels']] == [
        '3.10.0-1160.el7.x86_64', '5.4.225-1.el7.elrepo.x86_64']
    assert result['boot_default'] == '5.4.225-1.el7.elrepo.x86_64'
    assert [args[0] for args, dummy in tools.calls] == ['/usr/bin/rpm', '/usr/bin/grubby']
    assert tools.calls[0][0][1] == '-q'


@pytest.mark.skipif(not shutil.which('dpkg-query'), reason='needs dpkg-query')
def test_real_dpkg_query_reads_the_fixture_database(root):
    (root / 'var/lib/dpkg').mkdir(parents=True)
    (root / 'var/lib/dpkg/status').write_text(DPKG_STATUS)
    result, failed = run_module(kernel_check.main, {'root': str(root)})
    assert not failed
    assert {'package': 'linux-image-4.19.0-26-amd64', 'version': '4.19.304-1',
            'release': '4.19.0-26-amd64'} in result['installed_kernels']
    assert [k['release'] for k in result['installed_kernels'] if k['package'].startswith('linux-image')] == [
        '4.19.0-26-amd64']
    assert result['boot_default'] == '5.10.0-0.deb10.16-amd64'


def test_failing_tools_do_not_fail_the_module(root):
    tools = FakeTools({
        'rpm': (1, '', 'error: cannot open Packages database'),
        'dpkg-query': (2, '', "dpkg-query: error: cannot access archive 'status'"),
    })
    with tools.patch():
        result, failed = run_module(kernel_check.main, {'root': str(root), 'release': '5.4.0-150-generic'})
    assert not failed
    assert result['installed_kernels'] == []


def test_check_mode_gives_the_same_answer(root):
    with no_tools():
        normal, dummy = run_module(kernel_check.main, {'root': str(root)})
        checked, failed = run_module(kernel_check.main, {'root': str(root)}, check_mode=True)
    assert not failed
    assert checked == normal


def test_vendor_backport_override():
    overrides = [{'match': r'^4\.18\.0-147\.5\.1\.el8_1', 'status': 'fixed', 'reason': 'vendor backport'}]
    with no_tools():
        result, failed = run_module(kernel_check.main, {
            'release': '4.18.0-147.5.1.el8_1.x86_64', 'policy_overrides': overrides, 'list_installed': False})
    assert not failed
    assert (result['stream'], result['status'], result['reason']) == ('el8', 'fixed', 'vendor backport')
    assert result['upgrade_needed'] is False


@pytest.mark.parametrize('override, words', [
    ({'match': 'el7', 'status': 'sever'}, ['policy_overrides[0]', "'sever'"]),
    ({'match': '(el7', 'status': 'fixed'}, ['policy_overrides[0]', "'(el7'"]),
    ({'status': 'fixed'}, ['policy_overrides[0]', 'match']),
])
def test_bad_override_fails_naming_the_value(override, words):
    with no_tools():
        result, failed = run_module(kernel_check.main, {
            'release': '3.10.0-1160.el7.x86_64', 'policy_overrides': [override]})
    assert failed
    for word in words:
        assert word in result['msg']
    assert 'MemcgError' in result['exception']


def test_missing_osrelease_fails_naming_the_path(tmp_path):
    with no_tools():
        result, failed = run_module(kernel_check.main, {'root': str(tmp_path)})
    assert failed
    assert str(tmp_path / 'proc/sys/kernel/osrelease') in result['msg']


def test_boot_default_is_classified_without_finding_when_it_is_fixed(root):
    with no_tools():
        result, failed = run_module(kernel_check.main, {'root': str(root)})
    assert not failed
    assert result['boot_default_kernel']['status'] == 'fixed'
    assert result['findings'] == []


def test_next_boot_on_an_unfixed_kernel_is_a_warning_finding(root):
    # the fixed kernel was booted once and never committed: the default still names the old one
    (root / 'proc/sys/kernel/osrelease').write_text(u'5.10.0-0.deb10.16-amd64\n')
    grubenv = '# GRUB Environment Block\nsaved_entry=gnulinux-advanced-x>gnulinux-4.19.0-26-amd64-advanced-x\n'
    (root / 'boot/grub/grubenv').write_text(grubenv + '#' * (1024 - len(grubenv)))
    with no_tools():
        result, failed = run_module(kernel_check.main, {'root': str(root)})
    assert not failed
    assert result['status'] == 'fixed' and result['boot_default'] == '4.19.0-26-amd64'
    assert result['boot_default_kernel']['status'] == 'degraded'
    assert [(f['severity'], f['code']) for f in result['findings']] == [('warning', 'boot_default_unfixed')]
    assert 'next boot lands on an unfixed kernel' in result['findings'][0]['message']
    assert '4.19.0-26-amd64' in result['findings'][0]['message']


@pytest.mark.parametrize('args, message', [
    ({'release': ''}, "release must not be empty, got ''; leave it out for the default"),
    ({'release': '  '}, "release must not be empty, got '  '"),
    ({'root': ''}, "root must not be empty, got ''"),
    ({'release': '5.4.0-1.el7', 'policy_overrides': [{'match': 'x', 'version_pattern': r'^(\d+)?', 'fixed_from': '5.2'}]},
     'policy_overrides[0]: version_pattern'),
])
def test_empty_strings_and_bad_overrides_are_refused_before_anything_is_read(tmp_path, args, message):
    with no_tools():
        result, failed = run_module(kernel_check.main, dict({'list_installed': True}, **args))
    assert failed and message in result['msg'], result['msg']
