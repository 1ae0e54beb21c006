# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a node boots a fixed kernel: GRUB boot-entry commands (the install plan is plugin_utils/kernel_install.py).

Pure data and functions over text, no I/O: the kernel_boot module reads the files and runs the
commands. Every command is an argument list whose
first item is the bare tool name (the module resolves it with get_bin_path), never a shell string.

Families: `el` (RHEL/CentOS/Rocky/Alma/Oracle/Amazon Linux: rpm, grub2-* tools, grubby) and
`debian` (Debian/Ubuntu: dpkg, grub-* tools, update-grub).

Boot entries are dicts (parse_grub_cfg_entries, parse_bls_entry, parse_grubby_info):
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
import re
import shlex

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.kernel_inventory import parse_grubenv

FAMILIES = ('el', 'debian')
STATES = ('once', 'default')


def _check_choice(name, value, choices):
    if value not in choices:
        raise MemcgError('unknown %s %r (expected one of %s)' % (name, value, ', '.join(choices)))


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
    _check_choice('family', family, FAMILIES)
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
    _check_choice('family', family, FAMILIES)
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
    _check_choice('family', family, FAMILIES)
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
    _check_choice('family', family, FAMILIES)
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
