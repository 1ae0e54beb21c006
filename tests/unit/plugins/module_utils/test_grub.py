# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""GRUB_DEFAULT, the GRUB tools and the boot-once and set-default commands (plugins/module_utils/grub.py).

The menus and files are real (tests/unit/fixtures/boot_menus.py).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils import grub
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.tests.unit.fixtures.boot_menus import (
    BOOKWORM_GRUB_CFG_SAVED,
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
    EL8_NEW,
    EL8_NEW_ID,
    EL8_OLD,
    EL8_OLD_ID,
    el8_entries,
    grubenv_block,
)


# ---------------------------------------------------------------- boot once / set default

def test_debian_boot_once_pins_the_running_kernel():
    plan = grub.boot_once_commands('debian', BOOKWORM_NEW, BOOKWORM_GRUB_CFG_SAVED, grubenv=grubenv_block(),
                                   fallback_release=BOOKWORM_OLD)
    assert plan['entry_id'] == BOOKWORM_NEW_ID
    assert plan['fallback_entry_id'] == BOOKWORM_OLD_ID
    assert plan['commands'] == [['grub-set-default', BOOKWORM_OLD_ID], ['grub-reboot', BOOKWORM_NEW_ID]]
    assert (plan['saved_entry'], plan['next_entry']) == (BOOKWORM_OLD_ID, BOOKWORM_NEW_ID)


def test_debian_boot_once_under_a_root_and_idempotence():
    env = grubenv_block(saved_entry=BOOKWORM_OLD_ID)
    plan = grub.boot_once_commands('debian', BOOKWORM_NEW, BOOKWORM_GRUB_CFG_SAVED, grubenv=env,
                                   fallback_release=BOOKWORM_OLD, boot_directory='/host/boot')
    assert plan['commands'] == [['grub-reboot', '--boot-directory=/host/boot', BOOKWORM_NEW_ID]]
    # a saved_entry naming the same entry by its titles counts as set
    env = grubenv_block(saved_entry='Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux %s'
                        % BOOKWORM_OLD, next_entry=BOOKWORM_NEW_ID)
    plan = grub.boot_once_commands('debian', BOOKWORM_NEW, BOOKWORM_GRUB_CFG_SAVED, grubenv=env,
                                   fallback_release=BOOKWORM_OLD)
    assert plan['commands'] == []


def test_boot_once_without_fallback_or_onto_the_running_kernel():
    plan = grub.boot_once_commands('debian', BOOKWORM_NEW, BOOKWORM_GRUB_CFG_SAVED)
    assert plan['commands'] == [['grub-reboot', BOOKWORM_NEW_ID]]
    assert plan['fallback_entry_id'] is None
    plan = grub.boot_once_commands('debian', BOOKWORM_NEW, BOOKWORM_GRUB_CFG_SAVED, fallback_release=BOOKWORM_NEW)
    assert plan['commands'] == [['grub-reboot', BOOKWORM_NEW_ID]]


def test_boot_once_fails_when_the_fallback_has_no_entry():
    with pytest.raises(MemcgError) as caught:
        grub.boot_once_commands('debian', BOOKWORM_NEW, BOOKWORM_GRUB_CFG_SAVED, fallback_release='5.10.0-28-cloud-amd64')
    assert '5.10.0-28-cloud-amd64' in str(caught.value)


def test_el7_boot_once_undoes_the_update_default_of_the_kernel_package():
    # kernel-lt's install made it the default (UPDATEDEFAULT=yes): the fallback must be restored
    plan = grub.boot_once_commands('el', EL7_NEW, EL7_GRUB_CFG, grubenv=grubenv_block(saved_entry=EL7_NEW_TITLE),
                                   fallback_release=EL7_OLD)
    assert plan['commands'] == [['grub2-set-default', EL7_OLD_TITLE], ['grub2-reboot', EL7_NEW_TITLE]]


def test_el8_bls_boot_once():
    plan = grub.boot_once_commands('el', EL8_NEW, entries=el8_entries(), grubenv=grubenv_block(saved_entry=EL8_NEW_ID),
                                   fallback_release=EL8_OLD)
    assert plan['commands'] == [['grub2-set-default', EL8_OLD_ID], ['grub2-reboot', EL8_NEW_ID]]


@pytest.mark.parametrize('family, text, entries, release, grubby, env, commands', [
    ('debian', BOOKWORM_GRUB_CFG_SAVED, None, BOOKWORM_NEW, False, grubenv_block(saved_entry=BOOKWORM_OLD_ID),
     [['grub-set-default', BOOKWORM_NEW_ID]]),
    ('debian', BOOKWORM_GRUB_CFG_SAVED, None, BOOKWORM_NEW, False, grubenv_block(saved_entry=BOOKWORM_NEW_ID), []),
    ('el', EL7_GRUB_CFG, None, EL7_NEW, True, grubenv_block(saved_entry=EL7_OLD_TITLE),
     [['grubby', '--set-default', '/boot/vmlinuz-5.4.278-1.el7.elrepo.x86_64']]),
    ('el', EL7_GRUB_CFG, None, EL7_NEW, False, grubenv_block(saved_entry=EL7_OLD_TITLE),
     [['grub2-set-default', EL7_NEW_TITLE]]),
    ('el', EL7_GRUB_CFG, None, EL7_NEW, True, grubenv_block(saved_entry=EL7_NEW_TITLE), []),
    ('el', None, el8_entries(), EL8_NEW, True, grubenv_block(saved_entry=EL8_OLD_ID),
     [['grubby', '--set-default', '/boot/vmlinuz-4.18.0-193.el8.x86_64']]),
    # grubby-bls of EL8.0/8.1 wrote titles: the same entry
    ('el', None, el8_entries(), EL8_NEW, True, grubenv_block(saved_entry='CentOS Linux (4.18.0-193.el8.x86_64) 8 (Core)'), []),
])
def test_set_default_commands(family, text, entries, release, grubby, env, commands):
    plan = grub.set_default_commands(family, release, text, entries=entries, grubenv=env, grubby=grubby)
    assert plan['commands'] == commands


def test_set_default_under_a_root():
    plan = grub.set_default_commands('debian', BOOKWORM_NEW, BOOKWORM_GRUB_CFG_SAVED, boot_directory='/host/boot')
    assert plan['commands'] == [['grub-set-default', '--boot-directory=/host/boot', BOOKWORM_NEW_ID]]
    assert plan['saved_entry'] == BOOKWORM_NEW_ID


def test_release_missing_fails_the_command_tables():
    with pytest.raises(MemcgError) as caught:
        grub.set_default_commands('el', '5.4.280-1.el7.elrepo.x86_64', EL7_GRUB_CFG)
    assert '5.4.280-1.el7.elrepo.x86_64' in str(caught.value)
    with pytest.raises(MemcgError):
        grub.boot_once_commands('debian', BOOKWORM_NEW)


# ---------------------------------------------------------------- GRUB_DEFAULT, files, tools

def test_grub_default_of_the_stock_debian_file():
    setting = grub.grub_default_setting([('/etc/default/grub', DEBIAN_DEFAULT_GRUB)])
    assert (setting['value'], setting['path'], setting['saved']) == ('0', '/etc/default/grub', False)
    changed = grub.set_grub_default_saved(DEBIAN_DEFAULT_GRUB, setting['line'])
    assert changed == DEBIAN_DEFAULT_GRUB.replace('\nGRUB_DEFAULT=0\n', '\nGRUB_DEFAULT=saved\n')
    assert grub.grub_default_setting([('/etc/default/grub', changed)])['saved']


def test_grub_default_in_grub_d_wins():
    files = [('/etc/default/grub', EL7_DEFAULT_GRUB), ('/etc/default/grub.d/50-local.cfg', 'GRUB_DEFAULT="1>2"  # pinned\n')]
    setting = grub.grub_default_setting(files)
    assert (setting['value'], setting['path'], setting['line']) == ('1>2', '/etc/default/grub.d/50-local.cfg', 0)
    assert grub.grub_default_setting(files[:1])['saved']


@pytest.mark.parametrize('text, line, expected', [
    ('GRUB_TIMEOUT=5', None, 'GRUB_TIMEOUT=5\nGRUB_DEFAULT=saved\n'),
    ('', None, 'GRUB_DEFAULT=saved\n'),
    ('export GRUB_DEFAULT="0"\r\nGRUB_TIMEOUT=1\r\n', 0, 'export GRUB_DEFAULT=saved\r\nGRUB_TIMEOUT=1\r\n'),
    ("GRUB_DEFAULT='Advanced options for Ubuntu>Ubuntu, with Linux 4.15.0-213-generic'", 0, 'GRUB_DEFAULT=saved\n'),
])
def test_set_grub_default_saved(text, line, expected):
    assert grub.set_grub_default_saved(text, line) == expected


def test_unset_grub_default_means_entry_0():
    setting = grub.grub_default_setting([('/etc/default/grub', '#GRUB_DEFAULT=saved\nGRUB_TIMEOUT=5\n')])
    assert (setting['value'], setting['path'], setting['saved']) == (None, None, False)


@pytest.mark.parametrize('family, cfg, root, command', [
    ('debian', '/boot/grub/grub.cfg', '/', ['update-grub']),
    ('debian', '/boot/grub/grub.cfg', '/host', ['chroot', '/host', 'update-grub']),
    ('el', '/boot/grub2/grub.cfg', '/', ['grub2-mkconfig', '-o', '/boot/grub2/grub.cfg']),
    ('el', '/boot/efi/EFI/centos/grub.cfg', '/', ['grub2-mkconfig', '-o', '/boot/efi/EFI/centos/grub.cfg']),
])
def test_regenerate_command(family, cfg, root, command):
    assert grub.regenerate_command(family, cfg, root) == command


def test_kernel_files_and_grubenv_paths():
    assert grub.kernel_files('el', EL7_NEW) == ['boot/vmlinuz-%s' % EL7_NEW, 'boot/initramfs-%s.img' % EL7_NEW]
    assert grub.kernel_files('debian', BOOKWORM_NEW) == ['boot/vmlinuz-%s' % BOOKWORM_NEW,
                                                         'boot/initrd.img-%s' % BOOKWORM_NEW]
    assert (grub.grubenv_path('el'), grub.grubenv_path('debian')) == ('boot/grub2/grubenv', 'boot/grub/grubenv')
