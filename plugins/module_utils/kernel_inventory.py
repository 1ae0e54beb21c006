# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Installed kernels and the boot default, parsed from the package and boot tools' output.

Parsers are pure functions over text. read_inventory() runs the tools through the two callables
a module hands it (which: AnsibleModule.get_bin_path; run: argv -> (rc, stdout) in the C locale),
so kernel_check and memcg_probe list kernels the same way and tests pass fakes.
Each installed kernel is a dict: package, version (the package manager's version string),
release (the kernel release as `uname -r` prints it).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

# The tools whose output is parsed run in the C locale: untranslated messages and formats.
C_LOCALE = {'LANG': 'C', 'LC_ALL': 'C'}
RPM_QUERY_FORMAT = '%{NAME} %{VERSION} %{RELEASE} %{ARCH}\\n'
RPM_KERNEL_PACKAGES = ['kernel', 'kernel-lt', 'kernel-ml', 'kernel-uek']
DPKG_QUERY_FORMAT = '${Package} ${Version} ${db:Status-Abbrev}\\n'
DPKG_KERNEL_PATTERN = 'linux-image-*'
GRUBENV_PATHS = ('boot/grub/grubenv', 'boot/grub2/grubenv')

# Ways a GRUB saved_entry names a kernel, most specific first:
_ENTRY_RELEASE = [
    # EL8+ BootLoaderSpec id: <machine-id>-<release>
    re.compile(r'^[0-9a-f]{32}-(\d+\.\d+\S*)$'),
    # Debian/Ubuntu menu ids: gnulinux-<release>-advanced-<uuid> (or -recovery-)
    re.compile(r'gnulinux-(\d+\.\d+\S*?)-(?:advanced|recovery)-[0-9A-Za-z-]+$'),
    # Debian/Ubuntu titles: "Ubuntu, with Linux 5.4.0-150-generic"
    re.compile(r'with Linux (\d+\.\d+\S*?)(?: \(recovery mode\))?$'),
    # EL7 titles: "CentOS Linux (3.10.0-1160.el7.x86_64) 7 (Core)"
    re.compile(r'\((\d+\.\d+\S*)\)'),
]


def parse_rpm_kernels(output):
    """Parse `rpm -q --qf RPM_QUERY_FORMAT <packages>` output; skip 'is not installed' lines."""
    kernels = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) != 4 or line.startswith('package '):
            continue
        name, version, release, arch = fields
        kernels.append({
            'package': name,
            'version': '%s-%s' % (version, release),
            'release': '%s-%s.%s' % (version, release, arch),
        })
    return kernels


def _dpkg_kernel_release(package):
    """Kernel release a linux-image-* package installs, or None for meta and debug packages."""
    name = package[len('linux-image-'):] if package.startswith('linux-image-') else ''
    if name.startswith('unsigned-'):  # Ubuntu: linux-image-unsigned-5.4.0-150-generic
        name = name[len('unsigned-'):]
    if name.endswith('-unsigned'):  # Debian: linux-image-6.1.0-18-amd64-unsigned
        name = name[:-len('-unsigned')]
    if name.endswith('-dbg') or name.endswith('-dbgsym') or not re.match(r'\d+\.\d+', name):
        return None
    return name


def parse_dpkg_kernels(output):
    """Parse `dpkg-query -W -f DPKG_QUERY_FORMAT 'linux-image-*'` output.

    Keeps packages whose status (the second letter of db:Status-Abbrev) is installed: 'ii',
    and 'hi' for a kernel on hold. Meta packages such as linux-image-amd64 are skipped.
    """
    kernels = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) != 3 or len(fields[2]) < 2 or fields[2][1] != 'i':
            continue
        package, version = fields[0], fields[1]
        release = _dpkg_kernel_release(package)
        if release:
            kernels.append({'package': package, 'version': version, 'release': release})
    return kernels


def parse_grubby_default(output):
    """Kernel release from `grubby --default-kernel` (/boot/vmlinuz-<release>), or None."""
    path = output.strip()
    if not path:
        return None
    base = os.path.basename(path)
    return base[len('vmlinuz-'):] if base.startswith('vmlinuz-') else path


def parse_grubenv(text):
    """Variables of a GRUB environment block (`grub-editenv list` output or the file itself)."""
    variables = {}
    for line in text.splitlines():
        if not line or line.startswith('#') or '=' not in line:
            continue
        key, value = line.split('=', 1)
        variables[key] = value
    return variables


def saved_entry_release(entry):
    """Kernel release named by a GRUB saved_entry; the entry itself when it names none
    (a menu index such as '0' or '1>2'); None when there is no entry."""
    if not entry:
        return None
    last = entry.split('>')[-1]
    for pattern in _ENTRY_RELEASE:
        found = pattern.search(last)
        if found:
            return found.group(1)
    return entry


def installed_kernels(root, which, run):
    """Installed kernel packages from rpm and dpkg-query, where present (a missing tool is no error)."""
    kernels = []
    rpm = which('rpm')
    if rpm:
        args = [rpm] + (['--root', root] if root != '/' else [])
        # rc counts the packages not installed: the lines of the installed ones still count.
        dummy, out = run(args + ['-q', '--qf', RPM_QUERY_FORMAT] + RPM_KERNEL_PACKAGES)
        kernels.extend(parse_rpm_kernels(out))
    dpkg_query = which('dpkg-query')
    if dpkg_query:
        args = [dpkg_query]
        if root != '/':
            args += ['--admindir', os.path.join(root, 'var/lib/dpkg')]
        rc, out = run(args + ['-W', '-f', DPKG_QUERY_FORMAT, DPKG_KERNEL_PATTERN])
        if rc == 0:
            kernels.extend(parse_dpkg_kernels(out))
    return kernels


def boot_default(root, which, run):
    """Kernel release of the default boot entry (grubby, else the GRUB environment block), or None."""
    # grubby knows the live system only; the GRUB environment block works under any root.
    grubby = which('grubby')
    if grubby and root == '/':
        rc, out = run([grubby, '--default-kernel'])
        default = parse_grubby_default(out) if rc == 0 else None
        if default:
            return default
    editenv = which('grub-editenv') or which('grub2-editenv')
    for relative in GRUBENV_PATHS:
        path = os.path.join(root, relative)
        if not os.path.isfile(path):
            continue
        if editenv:
            rc, text = run([editenv, path, 'list'])
            if rc != 0:
                continue
        else:
            try:
                with open(path) as handle:
                    text = handle.read()
            except (IOError, OSError):
                continue
        return saved_entry_release(parse_grubenv(text).get('saved_entry'))
    return None


def read_inventory(root, which, run):
    """The installed_kernels and boot_default result keys of kernel_check and memcg_probe."""
    return {'installed_kernels': installed_kernels(root, which, run), 'boot_default': boot_default(root, which, run)}


def module_tools(module):
    """The which and run callables for read_inventory() from an AnsibleModule."""
    def run(args):
        rc, out, dummy = module.run_command(args, environ_update=C_LOCALE)
        return rc, out
    return module.get_bin_path, run
