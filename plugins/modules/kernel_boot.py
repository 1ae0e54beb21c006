#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: kernel_boot
short_description: Boot an installed kernel once, or make it the default GRUB entry
version_added: 1.0.0
description:
  - Manages the GRUB 2 boot entry of an installed kernel, for a rolling kernel upgrade that
    boots the new kernel once first and makes it the default only after the node proved
    healthy.
  - Before touching GRUB it checks that the kernel image and the initramfs of O(release)
    exist under C(<root>/boot) and that the boot menu has an entry for it, and fails naming
    what is missing.
  - Ensures C(GRUB_DEFAULT=saved) (in C(/etc/default/grub), or in the file of
    C(/etc/default/grub.d/) whose assignment wins) and regenerates C(grub.cfg) with
    C(update-grub) or C(grub2-mkconfig) only when it changed that setting or C(grub.cfg) does
    not boot C(saved_entry) yet.
  - With O(state=once) runs C(grub-reboot) (Debian, Ubuntu) or C(grub2-reboot) (EL) so that
    the next boot, and only that one, starts O(release); it also pins C(saved_entry) to
    O(fallback_release) (the running kernel), so a node whose new kernel fails comes back
    on the kernel it runs now, whatever the kernel package made the default.
  - With O(state=default) runs C(grub-set-default) (Debian, Ubuntu) or
    C(grubby --set-default /boot/vmlinuz-<release>) (EL; C(grub2-set-default) when O(root)
    is not V(/) or grubby is missing).
  - Idempotent from the GRUB environment block (C(next_entry), C(saved_entry)); after running
    the tools it reads the block again and fails when it does not name the entry.
  - On Debian and Ubuntu the entry is named by its menu ids, C(<submenu id>><entry id>); on EL8
    and later by its BootLoaderSpec id; on EL7 by its title when the ids are not unique (grubby
    copies them).
author:
  - nodeops.memcg contributors (@nodeops)
extends_documentation_fragment:
  - nodeops.memcg.root
attributes:
  check_mode:
    support: full
    description: Checks the kernel files and the boot entries, changes nothing and returns the commands it would run.
  diff_mode:
    support: full
    description: Shows the GRUB defaults file and the GRUB environment variables before and after.
  platform:
    support: full
    platforms: linux
    description: GRUB 2 on EL (grub2-* tools, grubby, BootLoaderSpec entries) and on Debian and Ubuntu (grub-* tools).
options:
  release:
    description:
      - Kernel release to boot, as C(uname -r) prints it, for example V(5.4.278-1.el7.elrepo.x86_64)
        or V(6.1.0-18-cloud-amd64).
    type: str
    required: true
  state:
    description:
      - V(once) boots O(release) on the next boot only and pins the default to O(fallback_release).
      - V(default) makes O(release) the default boot entry.
    type: str
    choices: [once, default]
    default: once
  family:
    description:
      - V(el) or V(debian); V(auto) tells them apart from C(<root>/etc/debian_version),
        C(<root>/etc/redhat-release) or C(<root>/etc/system-release), then C(<root>/boot/grub2)
        or C(<root>/boot/grub).
    type: str
    choices: [auto, el, debian]
    default: auto
  fallback_release:
    description:
      - With O(state=once), the kernel C(saved_entry) is pinned to, booted after the one-time boot.
      - Default the running kernel, read from C(<root>/proc/sys/kernel/osrelease).
      - Ignored with O(state=default).
    type: str
  grub_cfg:
    description:
      - Path of C(grub.cfg) (a path on the node, read under O(root)).
      - Default the first that exists of C(/boot/grub2/grub.cfg) and C(/boot/efi/EFI/*/grub.cfg)
        (EL), or C(/boot/grub/grub.cfg) (Debian, Ubuntu).
    type: path
notes:
  - O(root) applies to C(/boot), C(/etc/default/grub) and C(/proc/sys/kernel/osrelease); the GRUB
    tools get C(--boot-directory=<root>/boot) and C(grub.cfg) is regenerated with
    C(chroot <root> update-grub) (or C(grub2-mkconfig)), since it scans the system it runs on.
  - GRUB clears C(next_entry) while booting. Where it cannot write its environment block (C(/boot)
    on LVM, MD RAID, Btrfs) the one-time entry stays the default; C(grub-reboot) then prints a
    warning, which the module returns as a warning.
  - Runs the tools with C(LANG=C).
seealso:
  - module: nodeops.memcg.kernel_check
  - name: Node procedure of the kernel_upgrade role
    description: The boot and finalize phases that call this module.
    link: https://github.com/nodeops/memcg/blob/main/docs/node-procedure.md
'''

EXAMPLES = r'''
- name: Boot the new kernel once; the running one stays the default
  nodeops.memcg.kernel_boot:
    release: 5.4.278-1.el7.elrepo.x86_64
    state: once
  register: boot

- name: Reboot into it
  ansible.builtin.reboot:
    reboot_timeout: 900

- name: After the health checks passed, make it the default
  nodeops.memcg.kernel_boot:
    release: 5.4.278-1.el7.elrepo.x86_64
    state: default

- name: Show what would change on a Debian host mounted at /host
  nodeops.memcg.kernel_boot:
    release: 6.1.0-18-cloud-amd64
    family: debian
    root: /host
  check_mode: true
  diff: true
'''

RETURN = r'''
family:
  description: The family whose tools were used, V(el) or V(debian).
  returned: always
  type: str
  sample: debian
release:
  description: The kernel release managed (O(release)).
  returned: always
  type: str
  sample: 6.1.0-18-cloud-amd64
state:
  description: O(state).
  returned: always
  type: str
  sample: once
entry_id:
  description: The name given to GRUB for the entry of O(release).
  returned: always
  type: str
  sample: gnulinux-advanced-6a2cbe4e-5a5f-4b3d-9d5c-3c0a1f0e2b71>gnulinux-6.1.0-18-cloud-amd64-advanced-6a2cbe4e-5a5f-4b3d-9d5c-3c0a1f0e2b71
entry:
  description: The boot entry of O(release).
  returned: always
  type: dict
  contains:
    title:
      description: Menu title path (submenus joined with C(>)).
      type: str
      returned: always
      sample: Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-18-cloud-amd64
    id:
      description: Menu id path (submenus joined with C(>)); the BootLoaderSpec id on EL8+; empty when the entry has none.
      type: str
      returned: always
      sample: gnulinux-advanced-6a2cbe4e-5a5f-4b3d-9d5c-3c0a1f0e2b71>gnulinux-6.1.0-18-cloud-amd64-advanced-6a2cbe4e-5a5f-4b3d-9d5c-3c0a1f0e2b71
    index:
      description: Menu position path, for example V(1>0); empty for BootLoaderSpec entries.
      type: str
      returned: always
      sample: 1>0
    kernel:
      description: Kernel image path as the entry names it.
      type: str
      returned: always
      sample: /boot/vmlinuz-6.1.0-18-cloud-amd64
    source:
      description: Where the entry was read, V(grub.cfg), V(bls:<file>) or V(grubby).
      type: str
      returned: always
      sample: grub.cfg
fallback_entry_id:
  description: With O(state=once), the name C(saved_entry) is pinned to; null otherwise or when O(fallback_release) is O(release).
  returned: always
  type: str
  sample: gnulinux-advanced-6a2cbe4e-5a5f-4b3d-9d5c-3c0a1f0e2b71>gnulinux-6.1.0-17-cloud-amd64-advanced-6a2cbe4e-5a5f-4b3d-9d5c-3c0a1f0e2b71
fallback_release:
  description: With O(state=once), the kernel booted after the one-time boot; null otherwise.
  returned: always
  type: str
  sample: 6.1.0-17-cloud-amd64
previous_saved_entry:
  description: C(saved_entry) of the GRUB environment block before the module ran; null when unset.
  returned: always
  type: str
  sample: '0'
previous_next_entry:
  description: C(next_entry) before the module ran; null when unset.
  returned: always
  type: str
  sample: null
saved_entry:
  description: C(saved_entry) after the run (in check mode, as it would be).
  returned: always
  type: str
  sample: gnulinux-advanced-6a2cbe4e-5a5f-4b3d-9d5c-3c0a1f0e2b71>gnulinux-6.1.0-17-cloud-amd64-advanced-6a2cbe4e-5a5f-4b3d-9d5c-3c0a1f0e2b71
next_entry:
  description: C(next_entry) after the run (in check mode, as it would be).
  returned: always
  type: str
  sample: gnulinux-advanced-6a2cbe4e-5a5f-4b3d-9d5c-3c0a1f0e2b71>gnulinux-6.1.0-18-cloud-amd64-advanced-6a2cbe4e-5a5f-4b3d-9d5c-3c0a1f0e2b71
grub_cfg:
  description: The C(grub.cfg) read (path on the node).
  returned: always
  type: str
  sample: /boot/grub/grub.cfg
grub_default:
  description: The C(GRUB_DEFAULT) setting.
  returned: always
  type: dict
  contains:
    path:
      description: File whose assignment wins (the one changed, if any); path on the node.
      type: str
      returned: always
      sample: /etc/default/grub
    previous:
      description: The value before; null when unset (GRUB then boots entry 0).
      type: str
      returned: always
      sample: '0'
    changed:
      description: Whether the module set it to V(saved).
      type: bool
      returned: always
      sample: true
    regenerated:
      description: Whether C(grub.cfg) was (in check mode, would be) regenerated.
      type: bool
      returned: always
      sample: true
files:
  description: The kernel image and initramfs checked (paths on the node).
  returned: always
  type: list
  elements: str
  sample: [/boot/vmlinuz-6.1.0-18-cloud-amd64, /boot/initrd.img-6.1.0-18-cloud-amd64]
commands:
  description: The commands run, in order, as argument lists; in check mode the commands it would run.
  returned: always
  type: list
  elements: list
  sample:
    - [/usr/sbin/update-grub]
    - - /usr/sbin/grub-set-default
      - gnulinux-advanced-6a2cbe4e-5a5f-4b3d-9d5c-3c0a1f0e2b71>gnulinux-6.1.0-17-cloud-amd64-advanced-6a2cbe4e-5a5f-4b3d-9d5c-3c0a1f0e2b71
    - - /usr/sbin/grub-reboot
      - gnulinux-advanced-6a2cbe4e-5a5f-4b3d-9d5c-3c0a1f0e2b71>gnulinux-6.1.0-18-cloud-amd64-advanced-6a2cbe4e-5a5f-4b3d-9d5c-3c0a1f0e2b71
'''

import glob
import os
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.boot_menu import (
    entry_names,
    find_entry_for_release,
    grub_cfg_uses_blscfg,
    kernel_image_name,
    parse_bls_entry,
    parse_grub_cfg_entries,
    parse_grubby_info,
)
from ansible_collections.nodeops.memcg.plugins.module_utils.grub import (
    BLS_DIR,
    GRUB_CFG_PATHS,
    GRUB_DEFAULTS_DIR,
    GRUB_DEFAULTS_FILE,
    TOOLS,
    boot_once_commands,
    grub_cfg_uses_saved,
    grub_default_setting,
    grubenv_path,
    kernel_files,
    regenerate_command,
    set_default_commands,
    set_grub_default_saved,
)
from ansible_collections.nodeops.memcg.plugins.module_utils.kernel_inventory import C_LOCALE, parse_grubenv
from ansible_collections.nodeops.memcg.plugins.module_utils.procfs import read_osrelease
from ansible_collections.nodeops.memcg.plugins.module_utils.root_paths import node_path, under_root


def read_file(path, missing=None):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if missing is not None and not os.path.exists(path):
            return missing
        raise MemcgError('cannot read %s: %s' % (path, exc))


def detect_family(module, root):
    family = module.params['family']
    if family != 'auto':
        return family
    checks = [
        ('etc/debian_version', os.path.isfile, 'debian'),
        ('etc/redhat-release', os.path.isfile, 'el'),
        ('etc/system-release', os.path.isfile, 'el'),
        ('boot/grub2', os.path.isdir, 'el'),
        ('boot/grub', os.path.isdir, 'debian'),
    ]
    for relative, test, name in checks:
        if test(under_root(root, relative)):
            return name
    raise MemcgError('cannot tell the family under %s (no etc/debian_version, etc/redhat-release, '
                     'etc/system-release, boot/grub2 or boot/grub): set family' % root)


def find_grub_cfg(family, root, override):
    if override:
        full = under_root(root, override)
        if not os.path.isfile(full):
            raise MemcgError('grub_cfg %s does not exist (looked at %s)' % (override, full))
        return full
    looked = []
    for pattern in GRUB_CFG_PATHS[family]:
        full_pattern = under_root(root, pattern)
        looked.append(full_pattern)
        found = sorted(path for path in glob.glob(full_pattern) if os.path.isfile(path))
        if found:
            return found[0]
    raise MemcgError('no grub.cfg found (looked at %s): set grub_cfg' % ', '.join(looked))


def read_entries(family, root, cfg_text, cfg_path):
    """Boot entries and where they came from: BootLoaderSpec files on EL8+, else grub.cfg."""
    bls_dir = under_root(root, BLS_DIR)
    bls_files = sorted(glob.glob(os.path.join(bls_dir, '*.conf')))
    if family == 'el' and bls_files and grub_cfg_uses_blscfg(cfg_text):
        entries = [parse_bls_entry(read_file(path), os.path.basename(path)) for path in bls_files]
        return entries, 'the BootLoaderSpec entries in %s' % node_path(root, bls_dir)
    return parse_grub_cfg_entries(cfg_text), node_path(root, cfg_path)


def has_entry(entries, release):
    try:
        find_entry_for_release(entries, release)
    except MemcgError:
        return False
    return True


def grubby_entries(module, releases):
    """Entries from grubby --info on the live system, or None when grubby is missing or fails."""
    grubby = module.get_bin_path(TOOLS['el']['grubby'])
    if not grubby:
        return None
    entries = []
    for release in releases:
        rc, out, dummy = module.run_command([grubby, '--info=/boot/%s' % kernel_image_name(release)],
                                            environ_update=C_LOCALE)
        if rc == 0:
            entries.extend(parse_grubby_info(out))
    return entries or None


def defaults_files(root):
    main = under_root(root, GRUB_DEFAULTS_FILE)
    files = [(main, read_file(main, missing=''))]
    for path in sorted(glob.glob(os.path.join(under_root(root, GRUB_DEFAULTS_DIR), '*.cfg'))):
        files.append((path, read_file(path)))
    return files


def write_file(module, path, text):
    temp = None
    try:
        handle, temp = tempfile.mkstemp(prefix='.kernel_boot', dir=os.path.dirname(path))
        with os.fdopen(handle, 'w') as out:
            out.write(text)
    except (IOError, OSError) as exc:
        if temp and os.path.exists(temp):
            os.unlink(temp)
        raise MemcgError('cannot write %s: %s' % (path, exc))
    module.atomic_move(temp, path)


def resolve(module, command):
    """The command with its first item found on PATH; MemcgError when it is missing."""
    path = module.get_bin_path(command[0])
    if not path:
        raise MemcgError('%s not found on the node (PATH and the sbin directories); nothing was '
                         'changed' % command[0])
    return [path] + list(command[1:])


def run(module, command, warnings):
    rc, out, err = module.run_command(command, environ_update=C_LOCALE)
    if rc != 0:
        raise MemcgError('%s failed with exit code %d: %s' % (' '.join(command), rc, (err or out).strip()))
    for line in (out + '\n' + err).splitlines():
        if 'WARNING' in line.upper() or 'will remain the default' in line:
            warnings.append('%s: %s' % (os.path.basename(command[0]), line.strip()))


class BootChange(object):
    """One run of the module: read the boot state, plan the change, then (unless check mode) apply and verify it."""

    def __init__(self, module):
        self.module = module
        params = module.params
        for key in ('root', 'fallback_release', 'grub_cfg'):  # left out they have a meaning; empty is a mistake
            if params[key] is not None and not params[key].strip():
                raise MemcgError('%s must not be empty, got %r; leave it out for the default' % (key, params[key]))
        self.root = params['root']
        self.release = params['release'].strip()
        self.state = params['state']
        if not self.release:
            raise MemcgError('release must be a kernel release (uname -r), got %r' % params['release'])
        self.family = detect_family(module, self.root)
        self.fallback = None
        if self.state == 'once':
            self.fallback = (params['fallback_release'] or '').strip() or read_osrelease(self.root)
        self.boot_directory = under_root(self.root, 'boot') if self.root != '/' else None
        self.live = self.root == '/'
        self.warnings = []

    def check_files(self):
        files = kernel_files(self.family, self.release)
        missing = ['/' + path for path in files if not os.path.isfile(under_root(self.root, path))]
        if missing:
            raise MemcgError('kernel %s is not completely installed: %s missing under %s; GRUB was '
                             'not touched' % (self.release, ', '.join(missing), self.root))
        return ['/' + path for path in files]

    def read_boot_state(self):
        self.cfg_path = find_grub_cfg(self.family, self.root, self.module.params['grub_cfg'])
        self.cfg_text = read_file(self.cfg_path)
        self.entries, self.where = read_entries(self.family, self.root, self.cfg_text, self.cfg_path)
        wanted = [self.release] + ([self.fallback] if self.fallback else [])
        if self.family == 'el' and self.live and not all(has_entry(self.entries, r) for r in wanted):
            from_grubby = grubby_entries(self.module, wanted)
            if from_grubby and all(has_entry(from_grubby, r) for r in wanted):
                self.entries, self.where = from_grubby, 'grubby --info'
        env_file = under_root(self.root, grubenv_path(self.family))
        self.env_path = env_file
        self.env = parse_grubenv(read_file(env_file, missing=''))

    def plan(self):
        if self.state == 'once':
            return boot_once_commands(self.family, self.release, entries=self.entries, grubenv=self.env,
                                      fallback_release=self.fallback,
                                      boot_directory=self.boot_directory, where=self.where)
        grubby = self.family == 'el' and self.live and bool(self.module.get_bin_path(TOOLS['el']['grubby']))
        return set_default_commands(self.family, self.release, entries=self.entries, grubenv=self.env,
                                    boot_directory=self.boot_directory, grubby=grubby, where=self.where)

    def verify(self, plan, commands):
        """Read the environment block again: it must name the entries the plan set."""
        env = parse_grubenv(read_file(self.env_path, missing=''))
        checks = []
        if self.state == 'once':
            checks.append(('next_entry', plan['entry'], plan['entry_id']))
            if plan['fallback_entry'] is not None:
                checks.append(('saved_entry', plan['fallback_entry'], plan['fallback_entry_id']))
        else:
            checks.append(('saved_entry', plan['entry'], plan['entry_id']))
        for key, entry, name in checks:
            if env.get(key) not in entry_names(entry, self.entries) | set([name]):
                raise MemcgError('after %s, %s in %s is %r instead of %r (the entry of %s)'
                                 % (' and '.join(os.path.basename(c[0]) for c in commands) or 'no command',
                                    key, node_path(self.root, self.env_path), env.get(key), name,
                                    entry['kernel']))
        return env

    def execute(self):
        module = self.module
        files = self.check_files()
        self.read_boot_state()
        plan = self.plan()  # fails naming a release without an entry, before any change
        if self.state == 'once' and self.fallback == self.release:
            self.warnings.append('%s is already running: the one-time boot has no other kernel to '
                                 'fall back to' % self.release)

        setting = grub_default_setting(defaults_files(self.root))
        edit = None
        if not setting['saved']:
            path = setting['path'] or under_root(self.root, GRUB_DEFAULTS_FILE)
            before = read_file(path, missing='')
            edit = (path, before, set_grub_default_saved(before, setting['line']))
        regenerate = edit is not None or not grub_cfg_uses_saved(self.cfg_text)
        commands = []
        if regenerate:
            commands.append(resolve(module, regenerate_command(self.family, node_path(self.root, self.cfg_path),
                                                               self.root)))
        plan_commands = [resolve(module, command) for command in plan['commands']]

        result = {
            'changed': bool(edit or commands or plan_commands),
            'family': self.family, 'release': self.release, 'state': self.state,
            'entry_id': plan['entry_id'],
            'entry': self._entry(plan['entry']),
            'fallback_entry_id': plan.get('fallback_entry_id'),
            'fallback_release': self.fallback if self.state == 'once' else None,
            'previous_saved_entry': self.env.get('saved_entry'),
            'previous_next_entry': self.env.get('next_entry'),
            'saved_entry': plan['saved_entry'], 'next_entry': plan['next_entry'],
            'grub_cfg': node_path(self.root, self.cfg_path),
            'grub_default': {
                'path': node_path(self.root, edit[0] if edit else (setting['path'] or under_root(self.root, GRUB_DEFAULTS_FILE))),
                'previous': setting['value'], 'changed': edit is not None, 'regenerated': regenerate,
            },
            'files': files,
            'commands': commands + plan_commands,
        }
        if module._diff:
            result['diff'] = self._diff(edit, result)
        if module.check_mode or not result['changed']:
            return result

        if edit:
            write_file(module, edit[0], edit[2])
        if regenerate:
            run(module, commands[0], self.warnings)
            self.cfg_text = read_file(self.cfg_path)
            if not grub_cfg_uses_saved(self.cfg_text):
                raise MemcgError('%s still does not boot saved_entry after %s: check GRUB_DEFAULT in '
                                 '/etc/default/grub and /etc/default/grub.d'
                                 % (result['grub_cfg'], ' '.join(commands[0])))
            # the regenerated menu may order entries differently: plan again from it
            if self.where != 'grubby --info':
                self.entries, self.where = read_entries(self.family, self.root, self.cfg_text, self.cfg_path)
            plan = self.plan()
            plan_commands = [resolve(module, command) for command in plan['commands']]
            result.update(entry_id=plan['entry_id'], entry=self._entry(plan['entry']),
                          fallback_entry_id=plan.get('fallback_entry_id'), commands=commands + plan_commands)
        for command in plan_commands:
            run(module, command, self.warnings)
        env = self.verify(plan, plan_commands)
        result.update(saved_entry=env.get('saved_entry'), next_entry=env.get('next_entry'))
        return result

    @staticmethod
    def _entry(entry):
        return {'title': entry['title_path'], 'id': entry['id_path'], 'index': entry['index_path'],
                'kernel': entry['kernel'], 'source': entry['source']}

    def _diff(self, edit, result):
        diff = []
        if edit:
            diff.append({'before_header': node_path(self.root, edit[0]), 'after_header': node_path(self.root, edit[0]),
                         'before': edit[1], 'after': edit[2]})

        def env_text(saved, following):
            return 'saved_entry=%s\nnext_entry=%s\n' % (saved or '', following or '')

        header = node_path(self.root, self.env_path)
        diff.append({'before_header': header, 'after_header': header,
                     'before': env_text(result['previous_saved_entry'], result['previous_next_entry']),
                     'after': env_text(result['saved_entry'], result['next_entry'])})
        return diff


def main():
    module = AnsibleModule(
        argument_spec=dict(
            release=dict(type='str', required=True),
            state=dict(type='str', choices=['once', 'default'], default='once'),
            family=dict(type='str', choices=['auto', 'el', 'debian'], default='auto'),
            fallback_release=dict(type='str'),
            grub_cfg=dict(type='path'),
            root=dict(type='path', default='/'),
        ),
        supports_check_mode=True,
    )
    try:
        boot = BootChange(module)
        result = boot.execute()
        for warning in boot.warnings:
            module.warn(warning)
        module.exit_json(**result)
    except MemcgError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())


if __name__ == '__main__':
    main()
