# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kernel_boot against fixture trees (`root`) with fake GRUB tools on PATH.

The fakes are small scripts that append their argv to calls.log and do what the real tool does
to the fixture: grub-reboot/grub-set-default (and the grub2-* twins) write next_entry/saved_entry
into <--boot-directory>/grub{,2}/grubenv, and chroot <root> update-grub regenerates grub.cfg
the way grub-mkconfig does for GRUB_DEFAULT (the one line that differs, see tests/unit/fixtures/boot_menus.py).
A fake refuses to run without --boot-directory, so nothing can touch this machine's /boot.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import stat
import sys

import pytest

from ansible_collections.nodeops.memcg.plugins.modules import kernel_boot
from ansible_collections.nodeops.memcg.tests.unit.fixtures.boot_menus import (
    BOOKWORM_GRUB_CFG,
    BOOKWORM_NEW,
    BOOKWORM_NEW_ID,
    BOOKWORM_OLD,
    BOOKWORM_OLD_ID,
    DEBIAN_DEFAULT_GRUB,
    EL7_DEFAULT_GRUB,
    EL7_GRUB_CFG,
    EL7_NEW,
    EL7_NEW_TITLE,
    EL7_OLD,
    EL7_OLD_TITLE,
    EL8_BLS,
    EL8_DEFAULT_GRUB,
    EL8_GRUB_CFG,
    EL8_NEW,
    EL8_NEW_ID,
    EL8_OLD,
    EL8_OLD_ID,
    grubenv_block,
)
from ansible_collections.nodeops.memcg.tests.unit.utils.module_harness import run_module

GRUB_TOOL = r'''#!{python}
import json, os, sys
LOG, VARIABLE, GRUB_DIR = {log!r}, {variable!r}, {grub_dir!r}
args = sys.argv[1:]
with open(LOG, 'a') as log:
    log.write(json.dumps([os.path.basename(sys.argv[0])] + args) + '\n')
boot = [a.split('=', 1)[1] for a in args if a.startswith('--boot-directory=')]
if not boot:
    sys.stderr.write('fake: refusing to touch the real /boot\n')
    sys.exit(2)
entry = [a for a in args if not a.startswith('--')][-1]
path = os.path.join(boot[0], GRUB_DIR, 'grubenv')
variables = []
if os.path.exists(path):
    with open(path) as handle:
        variables = [l.rstrip('\n').split('=', 1) for l in handle if '=' in l and not l.startswith('#')]
variables = [kv for kv in variables if kv[0] != VARIABLE] + [[VARIABLE, entry]]
text = '# GRUB Environment Block\n' + ''.join('%s=%s\n' % tuple(kv) for kv in variables)
with open(path, 'w') as handle:
    handle.write(text + '#' * (1024 - len(text)))
'''

# chroot <root> update-grub | grub2-mkconfig -o <cfg>: write grub.cfg's default as grub-mkconfig would
CHROOT = r'''#!{python}
import glob, json, os, re, sys
LOG = {log!r}
with open(LOG, 'a') as log:
    log.write(json.dumps(['chroot'] + sys.argv[1:]) + '\n')
root, command = sys.argv[1], sys.argv[2:]
cfg = command[2] if command[0] == 'grub2-mkconfig' else '/boot/grub/grub.cfg'
value = '0'
for path in [os.path.join(root, 'etc/default/grub')] + sorted(glob.glob(os.path.join(root, 'etc/default/grub.d/*.cfg'))):
    with open(path) as handle:
        for line in handle:
            match = re.match(r'\s*GRUB_DEFAULT=["\']?([^"\'\s]*)', line)
            if match:
                value = match.group(1)
default = '${{saved_entry}}' if value == 'saved' else value
path = os.path.join(root, cfg.lstrip('/'))
with open(path) as handle:
    text = handle.read()
text = re.sub(r'(?m)^(else\n   set default=)".*"$', lambda m: m.group(1) + '"%s"' % default, text)
with open(path, 'w') as handle:
    handle.write(text)
'''


class Node(object):
    """A fixture tree, the fake tools and what they were asked to do."""

    def __init__(self, tmp_path, monkeypatch, family):
        self.root = tmp_path / 'root'
        self.bin = tmp_path / 'bin'
        self.log = tmp_path / 'calls.log'
        self.family = family
        self.bin.mkdir()
        self.log.write_text(u'')
        grub_dir = 'grub2' if family == 'el' else 'grub'
        prefix = 'grub2-' if family == 'el' else 'grub-'
        for name, variable in (('reboot', 'next_entry'), ('set-default', 'saved_entry')):
            self.tool(prefix + name, GRUB_TOOL.format(python=sys.executable, log=str(self.log),
                                                      variable=variable, grub_dir=grub_dir))
        self.tool('chroot', CHROOT.format(python=sys.executable, log=str(self.log)))
        monkeypatch.setenv('PATH', '%s%s%s' % (self.bin, os.pathsep, os.environ.get('PATH', '')))

    def tool(self, name, text):
        path = self.bin / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)

    def write(self, relative, text):
        path = self.root / relative
        if not path.parent.exists():
            path.parent.mkdir(parents=True)
        path.write_text(text)

    def read(self, relative):
        return (self.root / relative).read_text()

    def calls(self):
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def grubenv(self):
        grub_dir = 'grub2' if self.family == 'el' else 'grub'
        lines = self.read('boot/%s/grubenv' % grub_dir).splitlines()
        return dict(line.split('=', 1) for line in lines if '=' in line and not line.startswith('#'))

    def snapshot(self):
        files = {}
        for directory, dummy, names in os.walk(str(self.root)):
            for name in names:
                path = os.path.join(directory, name)
                with open(path, 'rb') as handle:
                    files[path] = (handle.read(), os.stat(path).st_mtime)
        return files

    def run(self, check_mode=False, **args):
        args.setdefault('root', str(self.root))
        return run_module(kernel_boot.main, args, check_mode=check_mode)


@pytest.fixture
def debian(tmp_path, monkeypatch):
    """Debian bookworm running 6.1.0-17, with 6.1.0-18 just installed: stock GRUB_DEFAULT=0."""
    node = Node(tmp_path, monkeypatch, 'debian')
    for release in (BOOKWORM_OLD, BOOKWORM_NEW):
        node.write('boot/vmlinuz-%s' % release, u'kernel')
        node.write('boot/initrd.img-%s' % release, u'initrd')
    node.write('boot/grub/grub.cfg', BOOKWORM_GRUB_CFG)
    node.write('boot/grub/grubenv', grubenv_block())
    node.write('etc/default/grub', DEBIAN_DEFAULT_GRUB)
    node.write('etc/debian_version', u'12.5\n')
    node.write('proc/sys/kernel/osrelease', u'%s\n' % BOOKWORM_OLD)
    return node


def boot_dir(node):
    return '--boot-directory=%s' % (node.root / 'boot')


def test_check_mode_runs_nothing_and_changes_no_file(debian):
    before = debian.snapshot()
    result, failed = debian.run(check_mode=True, release=BOOKWORM_NEW, state='once', _ansible_diff=True)
    assert not failed, result
    assert result['changed'] is True
    assert debian.calls() == []
    assert debian.snapshot() == before
    assert [os.path.basename(c[0]) for c in result['commands']] == ['chroot', 'grub-set-default', 'grub-reboot']
    assert result['commands'][0][1:] == [str(debian.root), 'update-grub']
    assert result['commands'][2][1:] == [boot_dir(debian), BOOKWORM_NEW_ID]
    assert result['grub_default'] == {'path': '/etc/default/grub', 'previous': '0', 'changed': True,
                                      'regenerated': True}
    assert (result['saved_entry'], result['next_entry']) == (BOOKWORM_OLD_ID, BOOKWORM_NEW_ID)
    assert result['previous_saved_entry'] is None and result['previous_next_entry'] is None
    defaults_diff, env_diff = result['diff']
    assert 'GRUB_DEFAULT=0\n' in defaults_diff['before'] and 'GRUB_DEFAULT=saved\n' in defaults_diff['after']
    assert env_diff['after'] == 'saved_entry=%s\nnext_entry=%s\n' % (BOOKWORM_OLD_ID, BOOKWORM_NEW_ID)


def test_once_boots_the_entry_id_and_pins_the_running_kernel(debian):
    result, failed = debian.run(release=BOOKWORM_NEW, state='once')
    assert not failed, result
    assert result['changed'] is True
    assert debian.calls() == [
        ['chroot', str(debian.root), 'update-grub'],
        ['grub-set-default', boot_dir(debian), BOOKWORM_OLD_ID],
        ['grub-reboot', boot_dir(debian), BOOKWORM_NEW_ID],
    ]
    assert debian.grubenv() == {'saved_entry': BOOKWORM_OLD_ID, 'next_entry': BOOKWORM_NEW_ID}
    assert debian.read('etc/default/grub') == DEBIAN_DEFAULT_GRUB.replace('\nGRUB_DEFAULT=0\n', '\nGRUB_DEFAULT=saved\n')
    assert '   set default="${saved_entry}"\n' in debian.read('boot/grub/grub.cfg')
    assert result['entry_id'] == BOOKWORM_NEW_ID
    assert result['entry'] == {
        'title': 'Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux %s' % BOOKWORM_NEW,
        'id': BOOKWORM_NEW_ID, 'index': '1>0', 'kernel': '/boot/vmlinuz-%s' % BOOKWORM_NEW, 'source': 'grub.cfg'}
    assert (result['fallback_release'], result['fallback_entry_id']) == (BOOKWORM_OLD, BOOKWORM_OLD_ID)
    assert (result['saved_entry'], result['next_entry']) == (BOOKWORM_OLD_ID, BOOKWORM_NEW_ID)
    assert result['files'] == ['/boot/vmlinuz-%s' % BOOKWORM_NEW, '/boot/initrd.img-%s' % BOOKWORM_NEW]
    assert result['grub_cfg'] == '/boot/grub/grub.cfg'
    assert result['family'] == 'debian'


def test_second_run_changes_nothing(debian):
    first, failed = debian.run(release=BOOKWORM_NEW, state='once')
    assert not failed and first['changed']
    calls = debian.calls()
    second, failed = debian.run(release=BOOKWORM_NEW, state='once')
    assert not failed, second
    assert second['changed'] is False
    assert second['commands'] == []
    assert second['grub_default'] == {'path': '/etc/default/grub', 'previous': 'saved', 'changed': False,
                                      'regenerated': False}
    assert debian.calls() == calls
    # check mode agrees
    checked, failed = debian.run(check_mode=True, release=BOOKWORM_NEW, state='once')
    assert not failed and checked['changed'] is False


def test_grub_default_is_set_once_across_states(debian):
    debian.run(release=BOOKWORM_NEW, state='once')
    result, failed = debian.run(release=BOOKWORM_NEW, state='default')
    assert not failed, result
    regenerations = [c for c in debian.calls() if c[0] == 'chroot']
    assert len(regenerations) == 1
    assert result['grub_default']['changed'] is False


def test_missing_initramfs_fails_before_anything_runs(debian):
    (debian.root / 'boot' / ('initrd.img-%s' % BOOKWORM_NEW)).unlink()
    before = debian.snapshot()
    result, failed = debian.run(release=BOOKWORM_NEW, state='once')
    assert failed
    assert '/boot/initrd.img-%s' % BOOKWORM_NEW in result['msg']
    assert 'GRUB was not touched' in result['msg']
    assert debian.calls() == []
    assert debian.snapshot() == before


def test_release_without_boot_entry_fails_before_anything_runs(debian):
    debian.write('boot/vmlinuz-6.1.0-21-cloud-amd64', u'kernel')
    debian.write('boot/initrd.img-6.1.0-21-cloud-amd64', u'initrd')
    result, failed = debian.run(release='6.1.0-21-cloud-amd64', state='once')
    assert failed
    assert 'no boot entry for kernel release 6.1.0-21-cloud-amd64 in /boot/grub/grub.cfg' in result['msg']
    assert debian.calls() == []
    assert debian.read('etc/default/grub') == DEBIAN_DEFAULT_GRUB


def test_default_sets_the_saved_entry(debian):
    debian.run(release=BOOKWORM_NEW, state='once')
    # the node rebooted: GRUB consumed next_entry, the new kernel runs
    debian.write('boot/grub/grubenv', grubenv_block(saved_entry=BOOKWORM_OLD_ID))
    debian.write('proc/sys/kernel/osrelease', u'%s\n' % BOOKWORM_NEW)
    start = len(debian.calls())
    result, failed = debian.run(release=BOOKWORM_NEW, state='default')
    assert not failed, result
    assert result['changed'] is True
    assert debian.calls()[start:] == [['grub-set-default', boot_dir(debian), BOOKWORM_NEW_ID]]
    assert debian.grubenv() == {'saved_entry': BOOKWORM_NEW_ID}
    assert (result['previous_saved_entry'], result['saved_entry']) == (BOOKWORM_OLD_ID, BOOKWORM_NEW_ID)
    assert result['fallback_release'] is None
    again, failed = debian.run(release=BOOKWORM_NEW, state='default')
    assert not failed and again['changed'] is False
    assert len(debian.calls()) == start + 1


def test_grub_d_assignment_is_the_one_changed(debian):
    debian.write('etc/default/grub.d/50-pin.cfg', u'GRUB_DEFAULT="1>2"\n')
    result, failed = debian.run(release=BOOKWORM_NEW, state='default')
    assert not failed, result
    assert result['grub_default'] == {'path': '/etc/default/grub.d/50-pin.cfg', 'previous': '1>2',
                                      'changed': True, 'regenerated': True}
    assert debian.read('etc/default/grub.d/50-pin.cfg') == 'GRUB_DEFAULT=saved\n'
    assert debian.read('etc/default/grub') == DEBIAN_DEFAULT_GRUB
    assert '   set default="${saved_entry}"\n' in debian.read('boot/grub/grub.cfg')


def test_failed_regeneration_is_reported(debian):
    debian.tool('chroot', '#!/bin/sh\necho "grub-probe: error: failed to get canonical path" >&2\nexit 1\n')
    result, failed = debian.run(release=BOOKWORM_NEW, state='once')
    assert failed
    assert 'update-grub failed with exit code 1' in result['msg']
    assert 'canonical path' in result['msg']


def test_a_grub_tool_that_does_not_record_the_entry_fails_the_run(debian):
    debian.write('etc/default/grub', DEBIAN_DEFAULT_GRUB.replace('GRUB_DEFAULT=0', 'GRUB_DEFAULT=saved'))
    debian.write('boot/grub/grub.cfg', BOOKWORM_GRUB_CFG.replace('   set default="0"', '   set default="${saved_entry}"'))
    debian.write('boot/grub/grubenv', grubenv_block(saved_entry=BOOKWORM_OLD_ID))
    debian.tool('grub-reboot', '#!/bin/sh\necho "WARNING: Detected GRUB environment block on lvm device"\n')
    result, failed = debian.run(release=BOOKWORM_NEW, state='once')
    assert failed
    assert "next_entry in /boot/grub/grubenv is None instead of '%s'" % BOOKWORM_NEW_ID in result['msg']


def test_explicit_fallback_release_and_missing_fallback_entry(debian):
    result, failed = debian.run(check_mode=True, release=BOOKWORM_NEW, fallback_release=BOOKWORM_NEW)
    assert not failed
    assert result['fallback_entry_id'] is None
    assert [os.path.basename(c[0]) for c in result['commands']] == ['chroot', 'grub-reboot']
    result, failed = debian.run(check_mode=True, release=BOOKWORM_NEW, fallback_release='6.1.0-9-cloud-amd64')
    assert failed
    assert 'no boot entry for kernel release 6.1.0-9-cloud-amd64' in result['msg']


def test_family_cannot_be_told(tmp_path, monkeypatch):
    node = Node(tmp_path, monkeypatch, 'debian')
    node.write('proc/sys/kernel/osrelease', u'%s\n' % BOOKWORM_OLD)
    result, failed = node.run(release=BOOKWORM_NEW)
    assert failed
    assert 'cannot tell the family' in result['msg']


@pytest.fixture
def el8(tmp_path, monkeypatch):
    """CentOS 8 running 4.18.0-147 after 4.18.0-193 was installed (and made the default)."""
    node = Node(tmp_path, monkeypatch, 'el')
    for release in (EL8_OLD, EL8_NEW):
        node.write('boot/vmlinuz-%s' % release, u'kernel')
        node.write('boot/initramfs-%s.img' % release, u'initramfs')
    for name, text in EL8_BLS.items():
        node.write('boot/loader/entries/%s' % name, text)
    node.write('boot/grub2/grub.cfg', EL8_GRUB_CFG)
    node.write('boot/grub2/grubenv', grubenv_block(saved_entry=EL8_NEW_ID, kernelopts='root=/dev/mapper/cl-root ro'))
    node.write('etc/default/grub', EL8_DEFAULT_GRUB)
    node.write('etc/redhat-release', u'CentOS Linux release 8.2.2004 (Core)\n')
    node.write('proc/sys/kernel/osrelease', u'%s\n' % EL8_OLD)
    return node


def test_el8_bls_once_then_default(el8):
    result, failed = el8.run(release=EL8_NEW, state='once')
    assert not failed, result
    assert result['family'] == 'el'
    assert result['entry']['source'] == 'bls:%s.conf' % EL8_NEW_ID
    # GRUB_DEFAULT=saved and grub.cfg already boots saved_entry: no regeneration
    assert el8.calls() == [
        ['grub2-set-default', boot_dir(el8), EL8_OLD_ID],
        ['grub2-reboot', boot_dir(el8), EL8_NEW_ID],
    ]
    assert el8.grubenv() == {'saved_entry': EL8_OLD_ID, 'next_entry': EL8_NEW_ID,
                             'kernelopts': 'root=/dev/mapper/cl-root ro'}
    assert result['previous_saved_entry'] == EL8_NEW_ID
    # root is not /: grubby is not used, grub2-set-default writes the BLS id
    result, failed = el8.run(release=EL8_NEW, state='default')
    assert not failed, result
    assert el8.calls()[-1] == ['grub2-set-default', boot_dir(el8), EL8_NEW_ID]
    assert el8.grubenv()['saved_entry'] == EL8_NEW_ID


def test_el7_grub_cfg_entries_are_named_by_title(tmp_path, monkeypatch):
    node = Node(tmp_path, monkeypatch, 'el')
    for release in (EL7_OLD, EL7_NEW):
        node.write('boot/vmlinuz-%s' % release, u'kernel')
        node.write('boot/initramfs-%s.img' % release, u'initramfs')
    node.write('boot/grub2/grub.cfg', EL7_GRUB_CFG)
    node.write('boot/grub2/grubenv', grubenv_block(saved_entry=EL7_NEW_TITLE))
    node.write('etc/default/grub', EL7_DEFAULT_GRUB)
    node.write('etc/redhat-release', u'CentOS Linux release 7.9.2009 (Core)\n')
    node.write('proc/sys/kernel/osrelease', u'%s\n' % EL7_OLD)
    result, failed = node.run(release=EL7_NEW, state='once')
    assert not failed, result
    assert node.calls() == [
        ['grub2-set-default', boot_dir(node), EL7_OLD_TITLE],
        ['grub2-reboot', boot_dir(node), EL7_NEW_TITLE],
    ]
    assert result['files'] == ['/boot/vmlinuz-%s' % EL7_NEW, '/boot/initramfs-%s.img' % EL7_NEW]
    assert result['grub_cfg'] == '/boot/grub2/grub.cfg'


def test_el_grub_default_change_regenerates_with_grub2_mkconfig(el8):
    el8.write('etc/default/grub', EL8_DEFAULT_GRUB.replace('GRUB_DEFAULT=saved', 'GRUB_DEFAULT=0'))
    el8.write('boot/grub2/grub.cfg', EL8_GRUB_CFG.replace('   set default="${saved_entry}"', '   set default="0"'))
    result, failed = el8.run(release=EL8_NEW, state='default')
    assert not failed, result
    assert el8.calls()[0] == ['chroot', str(el8.root), 'grub2-mkconfig', '-o', '/boot/grub2/grub.cfg']
    assert '   set default="${saved_entry}"\n' in el8.read('boot/grub2/grub.cfg')
    assert 'GRUB_DEFAULT=saved\n' in el8.read('etc/default/grub')


def test_grub_tool_warnings_are_passed_on(debian):
    os.rename(str(debian.bin / 'grub-reboot'), str(debian.bin / 'real-grub-reboot'))
    debian.tool('grub-reboot', '#!/bin/sh\necho\necho "WARNING: Detected GRUB environment block on lvm device"\n'
                               'exec "%s" "$@"\n' % (debian.bin / 'real-grub-reboot'))
    result, failed = debian.run(release=BOOKWORM_NEW, state='once')
    assert not failed, result
    assert 'grub-reboot: WARNING: Detected GRUB environment block on lvm device' in result['warnings']


@pytest.mark.parametrize('args, message', [
    ({'root': ''}, "root must not be empty, got ''; leave it out for the default"),
    ({'fallback_release': ' '}, "fallback_release must not be empty, got ' '"),
    ({'grub_cfg': ''}, "grub_cfg must not be empty"),
])
def test_empty_strings_are_refused_not_read_as_the_default(debian, args, message):
    before = debian.snapshot()
    result, failed = debian.run(release=BOOKWORM_NEW, state='once', **args)
    assert failed and message in result['msg']
    assert debian.calls() == []
    assert debian.snapshot() == before
