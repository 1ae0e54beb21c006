# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot menus parsed and their entries found and named by release (plugins/module_utils/boot_menu.py).

The menus are real (tests/unit/fixtures/boot_menus.py).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils import boot_menu as menu
from ansible_collections.nodeops.memcg.plugins.module_utils import grub
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.tests.unit.fixtures.boot_menus import (
    BOOKWORM_GRUB_CFG,
    BOOKWORM_GRUB_CFG_SAVED,
    BOOKWORM_NEW,
    BOOKWORM_NEW_ID,
    BOOKWORM_OLD,
    BOOKWORM_OLD_ID,
    BOOKWORM_SUBMENU_ID,
    BOOKWORM_UUID,
    EL7_GRUB_CFG,
    EL7_NEW,
    EL7_NEW_TITLE,
    EL7_OLD,
    EL7_OLD_TITLE,
    EL7_RESCUE,
    EL8_GRUB_CFG,
    EL8_NEW,
    EL8_NEW_ID,
    GRUBBY_INFO_EL7,
    GRUBBY_INFO_EL8,
    el8_entries,
    grubenv_block,
)


# ---------------------------------------------------------------- grub.cfg parsing

def test_bookworm_menu_is_parsed_with_its_submenu():
    entries = menu.parse_grub_cfg_entries(BOOKWORM_GRUB_CFG)
    assert [(e['index_path'], e['title_path']) for e in entries] == [
        ('0', 'Debian GNU/Linux'),
        ('1>0', 'Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-18-cloud-amd64'),
        ('1>1', 'Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-18-cloud-amd64 (recovery mode)'),
        ('1>2', 'Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-17-cloud-amd64'),
        ('1>3', 'Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-17-cloud-amd64 (recovery mode)'),
    ]
    simple, new = entries[0], entries[1]
    assert simple['id_path'] == 'gnulinux-simple-%s' % BOOKWORM_UUID
    assert simple['kernel'] == '/boot/vmlinuz-6.1.0-18-cloud-amd64'
    assert simple['submenus'] == []
    assert new['id'] == 'gnulinux-6.1.0-18-cloud-amd64-advanced-%s' % BOOKWORM_UUID
    assert new['id_path'] == BOOKWORM_NEW_ID
    assert new['submenus'] == [{'title': 'Advanced options for Debian GNU/Linux', 'id': BOOKWORM_SUBMENU_ID}]
    assert new['initrd'] == ['/boot/initrd.img-6.1.0-18-cloud-amd64']
    assert new['args'] == ('root=/dev/vda1 ro console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200 '
                           'consoleblank=0')
    assert entries[2]['args'] == 'root=/dev/vda1 ro single'
    assert all(e['source'] == 'grub.cfg' for e in entries)


@pytest.mark.parametrize('release, index, name', [
    (BOOKWORM_NEW, '1>0', BOOKWORM_NEW_ID),
    (BOOKWORM_OLD, '1>2', BOOKWORM_OLD_ID),
])
def test_bookworm_entry_lookup_skips_simple_and_recovery(release, index, name):
    entries = menu.parse_grub_cfg_entries(BOOKWORM_GRUB_CFG)
    entry = menu.find_entry_for_release(entries, release)
    assert entry['index_path'] == index
    assert menu.entry_name(entry, entries) == name
    assert menu.entry_names(entry) == set([name, entry['title_path']])


def test_release_missing_from_grub_cfg_names_it():
    entries = menu.parse_grub_cfg_entries(BOOKWORM_GRUB_CFG)
    with pytest.raises(MemcgError) as caught:
        menu.find_entry_for_release(entries, '6.1.0-21-cloud-amd64', '/boot/grub/grub.cfg')
    message = str(caught.value)
    assert '6.1.0-21-cloud-amd64' in message and '/boot/grub/grub.cfg' in message
    assert 'vmlinuz-6.1.0-17-cloud-amd64, vmlinuz-6.1.0-18-cloud-amd64' in message


def test_release_prefix_does_not_match():
    entries = menu.parse_grub_cfg_entries(BOOKWORM_GRUB_CFG)
    with pytest.raises(MemcgError):
        menu.find_entry_for_release(entries, '6.1.0-18-cloud')


def test_saved_default_is_recognised():
    assert not grub.grub_cfg_uses_saved(BOOKWORM_GRUB_CFG)
    assert grub.grub_cfg_uses_saved(BOOKWORM_GRUB_CFG_SAVED)
    assert grub.grub_cfg_uses_saved(EL7_GRUB_CFG)
    assert grub.grub_cfg_uses_saved(EL8_GRUB_CFG)


UBUNTU_NESTED = (
    'menuentry \'Ubuntu\' $menuentry_id_option \'gnulinux-simple-u1\' {\n'
    '\tlinux\t/boot/vmlinuz-5.4.0-150-generic root=UUID=u1 ro\n'
    '}\n'
    'submenu \'Advanced options for Ubuntu\' $menuentry_id_option \'gnulinux-advanced-u1\' {\n'
    '\tmenuentry \'Ubuntu, with Linux 5.4.0-150-generic\' $menuentry_id_option \'gnulinux-5.4.0-150-generic-advanced-u1\' {\n'
    '\t\trecordfail\n'
    '\t\tlinux\t/boot/vmlinuz-5.4.0-150-generic root=UUID=u1 ro  quiet splash $vt_handoff\n'
    '\t\tinitrd\t/boot/initrd.img-5.4.0-150-generic\n'
    '\t}\n'
    '\tsubmenu \'Older kernels\' --id older {\n'
    '\t\tmenuentry \'Ubuntu, with Linux 4.15.0-213-generic\' --id=gnulinux-4.15.0-213-generic-advanced-u1 {\n'
    '\t\t\tlinux\t/boot/vmlinuz-4.15.0-213-generic root=UUID=u1 ro\n'
    '\t\t}\n'
    '\t\tmenuentry \'It\'\\\'\'s "old"\' {\n'
    '\t\t\tlinux\t/vmlinuz-4.15.0-212-generic root=UUID=u1 ro\n'
    '\t\t}\n'
    '\t}\n'
    '\tmenuentry \'Ubuntu, with Linux 5.4.0-150-generic (systemd)\' $menuentry_id_option \'gnulinux-5.4.0-150-generic-init-systemd-u1\' {\n'
    '\t\tlinux\t/boot/vmlinuz-5.4.0-150-generic root=UUID=u1 ro init=/lib/systemd/systemd\n'
    '\t}\n'
    '}\n'
    'menuentry \'UEFI Firmware Settings\' $menuentry_id_option \'uefi-firmware\' {\n'
    '\tfwsetup\n'
    '}\n'
)


def test_nested_submenus_ids_and_quotes():
    entries = menu.parse_grub_cfg_entries(UBUNTU_NESTED)
    by_index = dict((e['index_path'], e) for e in entries)
    assert sorted(by_index) == ['0', '1>0', '1>1>0', '1>1>1', '1>2', '2']
    old = by_index['1>1>0']
    assert old['id_path'] == 'gnulinux-advanced-u1>older>gnulinux-4.15.0-213-generic-advanced-u1'
    assert old['title_path'] == 'Advanced options for Ubuntu>Older kernels>Ubuntu, with Linux 4.15.0-213-generic'
    quoted = by_index['1>1>1']
    assert quoted['title'] == 'It\'s "old"'
    assert quoted['id_path'] == ''
    # an entry without id is named by its title path
    assert menu.entry_name(quoted, entries) == 'Advanced options for Ubuntu>Older kernels>It\'s "old"'
    assert by_index['2']['kernel'] == ''


def test_ubuntu_hwe_entry_skips_the_alternative_init():
    entries = menu.parse_grub_cfg_entries(UBUNTU_NESTED)
    entry = menu.find_entry_for_release(entries, '5.4.0-150-generic')
    assert entry['id_path'] == 'gnulinux-advanced-u1>gnulinux-5.4.0-150-generic-advanced-u1'


def test_only_a_recovery_entry_is_still_found():
    text = ("menuentry 'Debian GNU/Linux, with Linux 6.1.0-18-amd64 (recovery mode)' "
            "$menuentry_id_option 'gnulinux-6.1.0-18-amd64-recovery-x' {\n"
            "\tlinux\t/boot/vmlinuz-6.1.0-18-amd64 root=/dev/sda1 ro single\n}\n")
    entry = menu.find_entry_for_release(menu.parse_grub_cfg_entries(text), '6.1.0-18-amd64')
    assert entry['id'] == 'gnulinux-6.1.0-18-amd64-recovery-x'


def test_unparsable_menu_line_names_the_line():
    with pytest.raises(MemcgError) as caught:
        menu.parse_grub_cfg_entries("set timeout=5\nmenuentry 'broken {\n")
    assert 'line 2' in str(caught.value)


def test_el7_entries_are_matched_by_kernel_not_by_the_copied_id():
    entries = menu.parse_grub_cfg_entries(EL7_GRUB_CFG)
    assert [e['title'] for e in entries] == [EL7_NEW_TITLE, EL7_OLD_TITLE,
                                             'CentOS Linux (%s) 7 (Core)' % EL7_RESCUE]
    # grubby copied the 3.10.0-1160 id onto every entry
    assert len(set(e['id'] for e in entries)) == 1
    old = menu.find_entry_for_release(entries, EL7_OLD)
    assert (old['index_path'], old['kernel']) == ('1', '/vmlinuz-3.10.0-1160.el7.x86_64')
    new = menu.find_entry_for_release(entries, EL7_NEW)
    assert new['initrd'] == ['/initramfs-5.4.278-1.el7.elrepo.x86_64.img']
    # so the entries are named by their (unique) titles
    assert menu.entry_name(new, entries) == EL7_NEW_TITLE
    assert menu.entry_name(old, entries) == EL7_OLD_TITLE


def test_el7_copied_id_names_no_entry():
    entries = menu.parse_grub_cfg_entries(EL7_GRUB_CFG)
    new = menu.find_entry_for_release(entries, EL7_NEW)
    assert menu.entry_names(new, entries) == set([EL7_NEW_TITLE])
    # GRUB would resolve the copied id to the first entry carrying it: not proof of anything
    plan = grub.set_default_commands('el', EL7_NEW, EL7_GRUB_CFG, grubenv=grubenv_block(saved_entry=new['id']))
    assert plan['commands'] == [['grub2-set-default', EL7_NEW_TITLE]]


def test_el8_bls_entries():
    entries = el8_entries()
    assert menu.grub_cfg_uses_blscfg(EL8_GRUB_CFG)
    assert not menu.grub_cfg_uses_blscfg(EL7_GRUB_CFG)
    assert menu.parse_grub_cfg_entries(EL8_GRUB_CFG) == []
    new = menu.find_entry_for_release(entries, EL8_NEW)
    assert new['id'] == new['id_path'] == EL8_NEW_ID
    assert new['title'] == 'CentOS Linux (4.18.0-193.el8.x86_64) 8 (Core)'
    assert new['initrd'] == ['/initramfs-4.18.0-193.el8.x86_64.img', '$tuned_initrd']
    assert new['source'] == 'bls:%s.conf' % EL8_NEW_ID
    assert menu.entry_name(new, entries) == EL8_NEW_ID
    assert menu.entry_names(new) == set([EL8_NEW_ID, new['title']])


def test_grubby_info_el7_and_el8():
    el7 = menu.parse_grubby_info(GRUBBY_INFO_EL7)
    assert [(e['index_path'], e['title'], e['id']) for e in el7] == [('0', EL7_NEW_TITLE, ''), ('1', EL7_OLD_TITLE, '')]
    assert el7[0]['args'] == 'ro crashkernel=auto rd.lvm.lv=centos/root rd.lvm.lv=centos/swap rhgb quiet LANG=en_US.UTF-8'
    assert menu.entry_name(menu.find_entry_for_release(el7, EL7_NEW), el7) == EL7_NEW_TITLE
    el8 = menu.parse_grubby_info(GRUBBY_INFO_EL8)
    assert el8[0]['kernel'] == '/boot/vmlinuz-4.18.0-193.el8.x86_64'
    assert el8[0]['initrd'] == ['/boot/initramfs-4.18.0-193.el8.x86_64.img', '$tuned_initrd']
    assert menu.entry_name(menu.find_entry_for_release(el8, EL8_NEW), el8) == EL8_NEW_ID
