# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""GRUB 2 on a node: GRUB_DEFAULT, the per-family tools and files, and the commands that boot a kernel once or make it the default.

Pure data and functions over text, no I/O: the kernel_boot module reads the files and runs the
commands. Every command is an argument list whose first item is the bare tool name (the module
resolves it with get_bin_path), never a shell string. Entries come from boot_menu.py.

Families: `el` (RHEL/CentOS/Rocky/Alma/Oracle/Amazon Linux: rpm, grub2-* tools, grubby) and
`debian` (Debian/Ubuntu: dpkg, grub-* tools, update-grub); the kernel_boot module's `family` option.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.nodeops.memcg.plugins.module_utils.boot_menu import (
    entry_name,
    entry_names,
    find_entry_for_release,
    kernel_image_name,
    parse_grub_cfg_entries,
)
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.kernel_inventory import parse_grubenv

# ---------------------------------------------------------------- GRUB_DEFAULT and grub.cfg

_GRUB_DEFAULT_RE = re.compile(r'^(?P<prefix>\s*(?:export\s+)?)GRUB_DEFAULT=(?P<value>.*)$')
_SAVED_DEFAULT_RE = re.compile(r'^\s*set\s+default="?\$\{saved_entry\}"?\s*$', re.M)


def _shell_value(raw):
    """The value of a simple shell assignment's right-hand side (quotes, trailing comment)."""
    raw = raw.strip()
    if raw[:1] in ('"', "'"):
        end = raw.find(raw[0], 1)
        return raw[1:end] if end > 0 else raw[1:]
    return raw.split('#', 1)[0].strip()


def grub_default_setting(files):
    """The GRUB_DEFAULT update-grub would use.

    files: (path, text) pairs in the order grub-mkconfig sources them: /etc/default/grub, then
    /etc/default/grub.d/*.cfg sorted. The last assignment wins. Returns a dict: value (None
    when unset, which GRUB treats as 0), path and line (0-based) of the winning assignment
    (None when unset), saved (bool).
    """
    found = {'value': None, 'path': None, 'line': None}
    for path, text in files:
        for number, line in enumerate(text.splitlines()):
            match = _GRUB_DEFAULT_RE.match(line)
            if match:
                found = {'value': _shell_value(match.group('value')), 'path': path, 'line': number}
    found['saved'] = found['value'] == 'saved'
    return found


def set_grub_default_saved(text, line=None):
    """`text` with GRUB_DEFAULT=saved: the assignment on `line` (0-based) rewritten, or appended."""
    lines = text.splitlines(True)
    if line is None:
        if lines and not lines[-1].endswith('\n'):
            lines[-1] += '\n'
        return ''.join(lines) + 'GRUB_DEFAULT=saved\n'
    match = _GRUB_DEFAULT_RE.match(lines[line].rstrip('\r\n'))
    if not match:
        raise MemcgError('line %d is no GRUB_DEFAULT assignment: %r' % (line + 1, lines[line]))
    ending = lines[line][len(lines[line].rstrip('\r\n')):] or '\n'
    lines[line] = '%sGRUB_DEFAULT=saved%s' % (match.group('prefix'), ending)
    return ''.join(lines)


def grub_cfg_uses_saved(text):
    """True when the grub.cfg boots saved_entry by default (generated with GRUB_DEFAULT=saved)."""
    return bool(_SAVED_DEFAULT_RE.search(text))


# ---------------------------------------------------------------- per-family tools and files

TOOLS = {
    'el': {
        'reboot': 'grub2-reboot', 'set_default': 'grub2-set-default', 'editenv': 'grub2-editenv',
        'mkconfig': 'grub2-mkconfig', 'grubby': 'grubby', 'grub_dir': 'grub2',
    },
    'debian': {
        'reboot': 'grub-reboot', 'set_default': 'grub-set-default', 'editenv': 'grub-editenv',
        'mkconfig': 'grub-mkconfig', 'update': 'update-grub', 'grub_dir': 'grub',
    },
}

# grub.cfg locations relative to the root, most likely first (glob patterns allowed).
GRUB_CFG_PATHS = {
    'el': ('boot/grub2/grub.cfg', 'boot/efi/EFI/*/grub.cfg'),
    'debian': ('boot/grub/grub.cfg',),
}
BLS_DIR = 'boot/loader/entries'
GRUB_DEFAULTS_FILE = 'etc/default/grub'
GRUB_DEFAULTS_DIR = 'etc/default/grub.d'


def kernel_files(family, release):
    """Kernel image and initramfs a release needs, relative to the root."""
    if family == 'el':
        return ['boot/vmlinuz-%s' % release, 'boot/initramfs-%s.img' % release]
    return ['boot/vmlinuz-%s' % release, 'boot/initrd.img-%s' % release]


def grubenv_path(family):
    return 'boot/%s/grubenv' % TOOLS[family]['grub_dir']


def _boot_dir_args(boot_directory):
    return ['--boot-directory=%s' % boot_directory] if boot_directory else []


def regenerate_command(family, grub_cfg, root='/'):
    """Command that rewrites grub.cfg (after GRUB_DEFAULT changed).

    grub_cfg is the host path (/boot/grub/grub.cfg). Under another root the tool runs inside
    it with chroot, since grub-mkconfig scans /boot and probes devices of the system it runs on.
    """
    if family == 'debian' and grub_cfg == '/boot/grub/grub.cfg':
        command = [TOOLS['debian']['update']]
    else:
        command = [TOOLS[family]['mkconfig'], '-o', grub_cfg]
    if root not in ('/', ''):
        command = ['chroot', root] + command
    return command


def _env(grubenv):
    if grubenv is None:
        return {}
    if isinstance(grubenv, dict):
        return grubenv
    return parse_grubenv(grubenv)


def _entries(grub_cfg_text, entries):
    if entries is not None:
        return entries
    if grub_cfg_text is None:
        raise MemcgError('no boot entries given: pass grub_cfg_text or entries')
    return parse_grub_cfg_entries(grub_cfg_text)


def boot_once_commands(family, release, grub_cfg_text=None, entries=None, grubenv=None,
                       fallback_release=None, boot_directory=None, where='grub.cfg'):
    """Commands that boot `release` once and fall back to `fallback_release` afterwards.

    GRUB boots next_entry once (grub-reboot/grub2-reboot write it, GRUB clears it while
    booting), then saved_entry: so saved_entry must name a kernel known to work, the running
    one, not whatever the kernel package made the default (EL's UPDATEDEFAULT) or the newest
    kernel (entry 0 when saved_entry is unset). Requires GRUB_DEFAULT=saved in grub.cfg (the
    caller ensures it).

    entries       parsed entries (BLS, grubby); default: parsed from grub_cfg_text
    grubenv       the environment block (text or dict): commands that would not change it are left out
    boot_directory  --boot-directory for the GRUB tools (<root>/boot under another root)

    Returns a dict: entry, entry_id, fallback_entry, fallback_entry_id (None when no fallback
    is pinned), commands (argument lists), saved_entry and next_entry (as they will be).
    """
    entries = _entries(grub_cfg_text, entries)
    env = _env(grubenv)
    tools = TOOLS[family]
    entry = find_entry_for_release(entries, release, where)
    name = entry_name(entry, entries)
    result = {'entry': entry, 'entry_id': name, 'fallback_entry': None, 'fallback_entry_id': None,
              'commands': [], 'saved_entry': env.get('saved_entry'), 'next_entry': env.get('next_entry')}
    if fallback_release and fallback_release != release:
        fallback = find_entry_for_release(entries, fallback_release, where)
        fallback_name = entry_name(fallback, entries)
        result.update(fallback_entry=fallback, fallback_entry_id=fallback_name)
        if env.get('saved_entry') not in entry_names(fallback, entries) | set([fallback_name]):
            result['commands'].append([tools['set_default']] + _boot_dir_args(boot_directory) + [fallback_name])
            result['saved_entry'] = fallback_name
    if env.get('next_entry') not in entry_names(entry, entries) | set([name]):
        result['commands'].append([tools['reboot']] + _boot_dir_args(boot_directory) + [name])
        result['next_entry'] = name
    return result


def set_default_commands(family, release, grub_cfg_text=None, entries=None, grubenv=None,
                         boot_directory=None, grubby=False, where='grub.cfg'):
    """Commands that make `release` the default boot entry (saved_entry).

    EL with grubby=True (the live system): `grubby --set-default /boot/vmlinuz-<release>`;
    otherwise grub-set-default/grub2-set-default with the entry's name. Nothing when
    saved_entry already names the entry. Returns a dict: entry, entry_id, commands,
    saved_entry and next_entry (as they will be).
    """
    entries = _entries(grub_cfg_text, entries)
    env = _env(grubenv)
    entry = find_entry_for_release(entries, release, where)
    name = entry_name(entry, entries)
    result = {'entry': entry, 'entry_id': name, 'commands': [], 'saved_entry': env.get('saved_entry'),
              'next_entry': env.get('next_entry')}
    if env.get('saved_entry') in entry_names(entry, entries) | set([name]):
        return result
    if grubby and family == 'el':
        command = [TOOLS['el']['grubby'], '--set-default', '/boot/%s' % kernel_image_name(release)]
        # grubby writes the id (EL8 BLS) or the title (EL7), both names of the same entry
        result['saved_entry'] = entry['id'] if entry['source'].startswith('bls:') else name
    else:
        command = [TOOLS[family]['set_default']] + _boot_dir_args(boot_directory) + [name]
        result['saved_entry'] = name
    result['commands'].append(command)
    return result
