# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The boot menu: its entries from grub.cfg, BootLoaderSpec files or grubby, found and named by kernel release.

Pure functions over text, no I/O (the kernel_boot module reads the files). Boot entries are dicts:
  title, id          the menu entry's title and identifier ('' when it has none)
  title_path         titles from the top menu down, joined with '>' (GRUB's submenu syntax)
  id_path            identifiers joined the same way ('' when one of them is missing)
  index_path         menu positions joined the same way, for example '1>0' ('' for BLS entries)
  kernel, initrd     kernel image path and list of initrd paths as the entry names them
  args               kernel command line as written in the entry
  source             'grub.cfg', 'bls:<file name>' or 'grubby'
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import posixpath
import shlex

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

# ---------------------------------------------------------------- GRUB menu parsing

_LINUX_COMMANDS = ('linux', 'linux16', 'linuxefi', 'kernel')
_INITRD_COMMANDS = ('initrd', 'initrd16', 'initrdefi')
_ID_OPTIONS = ('$menuentry_id_option', '${menuentry_id_option}', '--id')


def _tokens(line, lineno):
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        raise MemcgError('grub.cfg line %d cannot be parsed (%s): %s' % (lineno, exc, line.strip()))


def _menu_header(tokens):
    """Title and id of a `menuentry`/`submenu` line's tokens."""
    title = tokens[1] if len(tokens) > 1 and tokens[1] != '{' else ''
    ident = ''
    rest = tokens[2:]
    for position, token in enumerate(rest):
        if token in _ID_OPTIONS and position + 1 < len(rest) and rest[position + 1] != '{':
            ident = rest[position + 1]
        elif token.startswith('--id='):
            ident = token[len('--id='):]
    return title, ident


def _join(parts):
    return '>'.join(parts) if all(parts) else ''


def parse_grub_cfg_entries(text):
    """Menu entries of a grub.cfg, submenus included (nested ones too), in menu order.

    Returns a list of entry dicts (see the module docstring); each also has `submenus`, the
    list of {title, id} of the submenus it sits in, outermost first. Raises MemcgError naming
    the line when a menu line cannot be tokenised.
    """
    entries = []
    # stack of open blocks: dicts with kind (submenu, menuentry, other) and, for menus,
    # title, id, index and the count of children seen so far
    stack = []
    top_count = [0]

    def menus():
        return [block for block in stack if block['kind'] == 'submenu']

    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith('#'):
            continue
        first = stripped.split(None, 1)[0]
        if first in ('menuentry', 'submenu'):
            title, ident = _menu_header(_tokens(stripped, lineno))
            parent = stack[-1] if stack and stack[-1]['kind'] == 'submenu' else None
            counter = parent['children'] if parent else top_count
            block = {'kind': first, 'title': title, 'id': ident, 'index': counter[0],
                     'children': [0], 'kernel': '', 'initrd': [], 'args': ''}
            counter[0] += 1
            if stripped.endswith('{'):
                stack.append(block)
            if first == 'menuentry':
                block['parents'] = [{'title': m['title'], 'id': m['id'], 'index': m['index']}
                                    for m in menus()]
                entries.append(block)
            continue
        if stripped == '}':
            if stack:
                stack.pop()
            continue
        if stripped.endswith('{'):
            # function definitions and other braced blocks
            stack.append({'kind': 'other'})
            continue
        current = stack[-1] if stack and stack[-1]['kind'] == 'menuentry' else None
        if current is None:
            continue
        if first in _LINUX_COMMANDS:
            words = _tokens(stripped, lineno)
            if len(words) > 1:
                current['kernel'] = words[1]
                current['args'] = ' '.join(words[2:])
        elif first in _INITRD_COMMANDS:
            current['initrd'] = _tokens(stripped, lineno)[1:]

    result = []
    for block in entries:
        parents = block['parents']
        result.append({
            'title': block['title'],
            'id': block['id'],
            'submenus': [{'title': p['title'], 'id': p['id']} for p in parents],
            'title_path': _join([p['title'] for p in parents] + [block['title']]),
            'id_path': _join([p['id'] for p in parents] + [block['id']]),
            'index_path': '>'.join(str(i) for i in [p['index'] for p in parents] + [block['index']]),
            'kernel': block['kernel'],
            'initrd': block['initrd'],
            'args': block['args'],
            'source': 'grub.cfg',
        })
    return result


def grub_cfg_uses_blscfg(text):
    """True when the grub.cfg builds its menu from BootLoaderSpec entries (EL8+)."""
    return any(line.strip().split(None, 1)[:1] == ['blscfg'] for line in text.splitlines())


def parse_bls_entry(text, filename):
    """One BootLoaderSpec entry (/boot/loader/entries/<file>.conf, EL8+) as an entry dict.

    GRUB's blscfg and grubby name the entry by its file name without `.conf`
    (<machine-id>-<release>); that is what saved_entry holds on EL8.
    """
    values = {}
    initrd = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith('#'):
            continue
        parts = stripped.split(None, 1)
        key, value = parts[0], (parts[1] if len(parts) > 1 else '')
        if key == 'initrd':
            initrd.extend(value.split())
        else:
            values.setdefault(key, value)
    name = posixpath.basename(filename)
    ident = name[:-len('.conf')] if name.endswith('.conf') else name
    title = values.get('title', ident)
    return {
        'title': title, 'id': ident, 'submenus': [], 'title_path': title, 'id_path': ident,
        'index_path': '', 'kernel': values.get('linux', ''), 'initrd': initrd,
        'args': values.get('options', ''), 'version': values.get('version', ''),
        'source': 'bls:%s' % name,
    }


def _unquote(value):
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
        return value[1:-1]
    return value


def parse_grubby_info(output):
    """Entries from `grubby --info=...` output (EL7 C grubby and EL8+ grubby-bls formats)."""
    records = []
    current = None
    for line in output.splitlines():
        if '=' not in line:
            continue
        key, value = line.split('=', 1)
        key = key.strip()
        if key == 'index':
            current = {'index': value.strip()}
            records.append(current)
        elif current is not None:
            current[key] = _unquote(value)
    entries = []
    for record in records:
        ident = record.get('id', '')
        title = record.get('title', '')
        entries.append({
            'title': title, 'id': ident, 'submenus': [], 'title_path': title, 'id_path': ident,
            'index_path': record['index'], 'kernel': record.get('kernel', ''),
            'initrd': record.get('initrd', '').split(), 'args': record.get('args', ''),
            'source': 'grubby',
        })
    return entries


# ---------------------------------------------------------------- entry lookup and naming

def kernel_image_name(release):
    return 'vmlinuz-%s' % release


def _is_recovery(entry):
    title = entry['title'].lower()
    return ('recovery mode' in title or '-recovery-' in entry['id']
            or 'single' in entry['args'].split() or 'rescue' in title)


def _is_alternative(entry):
    """Debian's '(systemd)'/'(sysvinit)' init variants, EL's debug kernels."""
    title = entry['title']
    return (any(word.startswith('init=') for word in entry['args'].split())
            or title.endswith(('(systemd)', '(sysvinit)', '(upstart)'))
            or 'with debugging' in title)


def _is_floating(entry):
    """Debian/Ubuntu's top 'simple' entry boots whichever kernel is newest: never pin it."""
    return '-simple-' in entry['id']


def find_entry_for_release(entries, release, where='the boot menu'):
    """The entry that boots kernel `release` normally; MemcgError naming the release if none.

    Matches the entry's kernel image file name (vmlinuz-<release>), never its title or id: on
    EL7 grubby copies the id of the entry it used as a template, so ids lie. Among matches,
    recovery entries, alternative-init and debug variants and Debian's floating 'simple' entry
    are taken only when nothing else boots the release.
    """
    image = kernel_image_name(release)
    matches = [entry for entry in entries
               if entry['kernel'] and posixpath.basename(entry['kernel']) == image]
    if not matches:
        known = sorted(set(posixpath.basename(e['kernel']) for e in entries if e['kernel']))
        raise MemcgError('no boot entry for kernel release %s in %s (kernel images there: %s)'
                         % (release, where, ', '.join(known) or 'none'))
    ranked = sorted(enumerate(matches), key=lambda pair: (
        _is_recovery(pair[1]), _is_floating(pair[1]), _is_alternative(pair[1]), pair[0]))
    return ranked[0][1]


def entry_name(entry, entries):
    """What to hand GRUB (grub-reboot, saved_entry) for `entry`: a name that stays valid.

    The id path when every id on the way is present and unique ('submenu-id>entry-id' on
    Debian/Ubuntu, the file id for BLS), else the title path when unique (EL7 grub.cfg whose
    ids grubby duplicated), else the menu index path (valid only until the menu changes).
    """
    if entry['source'].startswith('bls:'):
        return entry['id']
    if entry['source'] == 'grubby':
        return entry['id'] or entry['title'] or entry['index_path']
    id_paths = [e['id_path'] for e in entries]
    if entry['id_path'] and id_paths.count(entry['id_path']) == 1:
        return entry['id_path']
    title_paths = [e['title_path'] for e in entries]
    if entry['title_path'] and title_paths.count(entry['title_path']) == 1:
        return entry['title_path']
    return entry['index_path']


def entry_names(entry, entries=None):
    """Every name GRUB resolves to this entry: id path, title path, id and title for BLS.

    With `entries`, names that another entry shares are left out (EL7 ids copied by grubby).
    """
    names = set([entry['id_path'], entry['title_path']])
    if entry['source'] != 'grub.cfg' or not entry['submenus']:
        names.update([entry['id'], entry['title']])
    names.discard('')
    if entries:
        for other in entries:
            if other is not entry:
                names -= set([other['id_path'], other['title_path'], other['id'], other['title']])
    return names
