# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The install plan of the kernel_upgrade role's node procedure; pure, controller side.

The node procedure (roles/kernel_upgrade/tasks/node_procedure.yml, docs/node-procedure.md) asks two
questions and this module answers both, through the filters of plugins/filter/kernel_install.py:

- install_plan(): from the node's facts and the role's variables, how the fixed kernel gets
  installed: the method, the package, the repository (ELRepo) or extras topic, and the exact
  arguments of the package manager call (ansible.builtin.package with `use: <manager>`).
- extras_topic_enabled(): whether `amazon-linux-extras list` shows the plan's topic enabled.
- target_release(): after the install, which installed release to boot, ranked with
  versions.release_vercmp (rpm's ordering on EL, dpkg's on Debian/Ubuntu), never with regexes.

Failures raise MemcgError naming the role variable to set; the filters turn them into
AnsibleFilterError.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import posixpath

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.kernel_policy import classify
from ansible_collections.nodeops.memcg.plugins.module_utils.versions import release_vercmp

METHODS = ('auto', 'elrepo', 'dnf', 'apt', 'extras', 'local')
# ansible_facts['os_family'] -> the family of the GRUB tools and package formats (module_utils/grub.py)
OS_FAMILIES = {'RedHat': 'el', 'Debian': 'debian'}
# Package managers (ansible_facts['pkg_mgr']) the default procedure installs with, per family.
PACKAGE_MANAGERS = {'el': ('yum', 'dnf', 'dnf5'), 'debian': ('apt',)}

# ELRepo's elrepo-kernel repository (kernel-lt, kernel-ml). %(major)s is the EL major version.
# Since EL7's end of life (2024-06-30) ELRepo serves el7 only from archive mirrors: point the
# baseurl at one (or at an internal mirror) with kernel_upgrade_elrepo_baseurl.
ELREPO = {
    'name': 'elrepo-kernel',
    'description': 'ELRepo.org Community Enterprise Linux Kernel Repository - el%(major)s',
    'baseurl': 'https://elrepo.org/linux/kernel/el%(major)s/$basearch/',
    'gpgkey': 'https://www.elrepo.org/RPM-GPG-KEY-elrepo.org',
    'gpgkey_v2': 'https://www.elrepo.org/RPM-GPG-KEY-v2-elrepo.org',
    # fingerprint of RPM-GPG-KEY-elrepo.org (el7, el8); el9 and later sign with the v2 key
    'fingerprint': '96C0 104F 6315 4731 1E0B B1AE 309B C305 BAAD AE52',
}

# Package installed when kernel_upgrade_package is empty, per method (apt: see UBUNTU_HWE).
DEFAULT_PACKAGES = {'elrepo': 'kernel-lt', 'dnf': 'kernel', 'extras': 'kernel'}

# Ubuntu's HWE meta-package that brings a fixed (5.4) kernel to 18.04; elsewhere apt installs
# kernel_upgrade_package, else the package kernel_check recommends for the running kernel.
UBUNTU_HWE = {'18.04': 'linux-generic-hwe-18.04'}

# Amazon Linux 2: the amazon-linux-extras topic that provides kernel 5.10 (the role's
# kernel_upgrade_extras_topic defaults to it).
AMAZON_EXTRAS_TOPIC = 'kernel-5.10'

APT_CACHE_VALID_TIME = 3600
APT_ENVIRONMENT = {'DEBIAN_FRONTEND': 'noninteractive'}
_LOCAL_SUFFIX = {'el': '.rpm', 'debian': '.deb'}


def _text(value):
    return '' if value is None else str(value).strip()


def _major(facts):
    value = _text(facts.get('distribution_major_version'))
    return int(value) if value.isdigit() else None


def node_family(facts):
    """el or debian from ansible_facts['os_family']; MemcgError for a family the procedure does not know."""
    os_family = facts.get('os_family')
    if os_family not in OS_FAMILIES:
        raise MemcgError('the default node procedure handles the RedHat and Debian OS families (GRUB 2), not '
                         '%s: plug in your own with kernel_upgrade_node_procedure (docs/node-procedure.md)'
                         % os_family)
    return OS_FAMILIES[os_family]


def _is_amazon_linux_2(facts):
    return facts.get('distribution') == 'Amazon' and _major(facts) == 2


def choose_method(facts, method='auto', local_package=''):
    """The install method: the one asked for, or under auto the one docs/node-procedure.md's table names."""
    if method not in METHODS:
        raise MemcgError('unknown kernel_upgrade_method %r (expected one of %s)' % (method, ', '.join(METHODS)))
    family = node_family(facts)
    major = _major(facts)
    if method == 'auto':
        if _text(local_package):
            method = 'local'
        elif family == 'debian':
            method = 'apt'
        elif _is_amazon_linux_2(facts):
            method = 'extras'
        elif major is not None and major <= 7:
            method = 'elrepo'
        else:
            method = 'dnf'
    where = '%s %s' % (facts.get('distribution'), facts.get('distribution_version'))
    if family == 'debian' and method not in ('apt', 'local'):
        raise MemcgError('kernel_upgrade_method %s does not apply to %s (Debian family): use apt or local'
                         % (method, where))
    if family == 'el' and method == 'apt':
        raise MemcgError('kernel_upgrade_method apt does not apply to %s (RedHat family): use elrepo, dnf, '
                         'extras or local' % where)
    if method == 'dnf' and major is not None and major <= 7:
        instead = 'extras (kernel-5.10)' if _is_amazon_linux_2(facts) else 'elrepo (kernel-lt 5.4)'
        raise MemcgError('kernel_upgrade_method dnf does not apply to %s: its own repositories have no fixed '
                         'kernel; use %s or local' % (where, instead))
    return method


def package_manager(facts, family, method):
    """What installs the package: the node's pkg_mgr fact when the procedure knows it, else by release."""
    pkg_mgr = facts.get('pkg_mgr')
    known = PACKAGE_MANAGERS[family]
    if method == 'dnf':
        known = ('dnf', 'dnf5')
    if pkg_mgr in known:
        return pkg_mgr
    if family == 'debian':
        return 'apt'
    major = _major(facts)
    if method != 'dnf' and (_is_amazon_linux_2(facts) or (major is not None and major <= 7)):
        return 'yum'
    return 'dnf'


def elrepo_repository(major, baseurl=None, gpgkey=None, fingerprint=None):
    """The elrepo-kernel repository for EL `major`: ELRepo's own values unless given.

    baseurl and gpgkey: None or empty take ELRepo's for the major version; fingerprint: None takes
    ELRepo's (none from EL9, whose v2 key the role does not pin), empty checks none.
    """
    if major is None:
        raise MemcgError('method elrepo needs the EL major version (7, 8 or 9) for the repository URL '
                         '(ansible_facts distribution_major_version)')
    values = {'major': major}
    default_fingerprint = '' if major >= 9 else ELREPO['fingerprint']
    return {
        'name': ELREPO['name'],
        'description': ELREPO['description'] % values,
        'baseurl': _text(baseurl) or ELREPO['baseurl'] % values,
        'gpgkey': _text(gpgkey) or (ELREPO['gpgkey_v2'] if major >= 9 else ELREPO['gpgkey']),
        'fingerprint': default_fingerprint if fingerprint is None else _text(fingerprint),
        'gpgcheck': True,
        # only the kernel install enables it (enablerepo): routine updates stay untouched
        'enabled': False,
    }


def _check_version(version, overrides):
    """Refuse a pinned version the policy table classifies as severe or degraded."""
    kernel = classify(version, overrides)
    if kernel['upgrade_needed']:
        minimum = kernel['recommendation']['minimum']
        raise MemcgError('kernel_upgrade_version %s is %s (%s): pin a fixed version%s'
                         % (version, kernel['status'], kernel['reason'],
                            ' %s or later' % minimum if minimum else ''))


def install_plan(facts, method='auto', package='', version='', local_package='',
                 local_package_dir='/var/tmp/nodeops-memcg-kernel', elrepo_baseurl=None, elrepo_gpgkey=None,
                 elrepo_gpgkey_fingerprint=None, apt_default_release='', extras_topic=None, running=None,
                 policy_overrides=None):
    """How the node procedure installs the fixed kernel on the node these facts describe, as data.

    facts      the node's ansible_facts (os_family, distribution, distribution_version,
               distribution_major_version, pkg_mgr: the setup module's `min` subset)
    method ... extras_topic   the role variables of the same name without kernel_upgrade_
    running    the kernel_check result of the running kernel (release, status, recommendation)
    policy_overrides  entries for the policy table (classify) when a version is pinned

    Returns a dict: family (el, debian), method, manager (yum, dnf, dnf5, apt), package, version,
    spec (what is installed, for people: package[-=]version, or the local file's name), state,
    repository (the ELRepo repository dict or None), extras_topic (or None), local_file (src, dest
    and dir, or None), install (the exact arguments of the package manager call, `use` aside) and
    environment (for that call).
    """
    running = running or {}
    family = node_family(facts)
    method = choose_method(facts, method, local_package)
    package = _text(package)
    version = _text(version)
    major = _major(facts)
    if version:
        _check_version(version, policy_overrides)
    plan = {
        'family': family, 'method': method, 'manager': package_manager(facts, family, method),
        'package': package, 'version': version, 'spec': '', 'state': 'present' if version else 'latest',
        'repository': None, 'extras_topic': None, 'local_file': None, 'install': {}, 'environment': {},
    }
    if family == 'debian':
        plan['environment'] = dict(APT_ENVIRONMENT)

    if method == 'local':
        source = _text(local_package)
        if not source.endswith(_LOCAL_SUFFIX[family]):
            raise MemcgError("method local needs kernel_upgrade_local_package, a %s file on the controller "
                             "(got '%s')" % (_LOCAL_SUFFIX[family], source))
        directory = _text(local_package_dir).rstrip('/') or '/'
        dest = posixpath.join(directory, posixpath.basename(source))
        plan.update(spec=posixpath.basename(source), state='present',
                    local_file={'src': source, 'dest': dest, 'dir': directory})
        plan['install'] = {'deb': dest} if family == 'debian' else {'name': dest, 'state': 'present'}
        return plan

    if not package:
        if method == 'apt':
            package = (UBUNTU_HWE.get(_text(facts.get('distribution_version')), '')
                       if facts.get('distribution') == 'Ubuntu' else '')
            package = package or _text((running.get('recommendation') or {}).get('package'))
        else:
            package = DEFAULT_PACKAGES[method]
    if not package:
        raise MemcgError('no kernel package to install on %s %s (running %s, %s): set kernel_upgrade_package, '
                         'for example linux-image-amd64 or a named linux-image-* package'
                         % (facts.get('distribution'), facts.get('distribution_version'),
                            running.get('release'), running.get('status')))
    spec = package
    if version:
        spec = '%s%s%s' % (package, '=' if family == 'debian' else '-', version)
    plan.update(package=package, spec=spec)
    install = {'name': spec, 'state': plan['state']}
    if method == 'elrepo':
        repository = elrepo_repository(major, elrepo_baseurl, elrepo_gpgkey, elrepo_gpgkey_fingerprint)
        plan['repository'] = repository
        install['enablerepo'] = repository['name']
    elif method == 'extras':
        plan['extras_topic'] = _text(extras_topic) or AMAZON_EXTRAS_TOPIC
    elif method == 'apt':
        install.update(update_cache=True, cache_valid_time=APT_CACHE_VALID_TIME)
        if _text(apt_default_release):
            install['default_release'] = _text(apt_default_release)
    plan['install'] = install
    return plan


def extras_topic_enabled(listing, topic):
    """Whether the output of `amazon-linux-extras list` shows topic enabled.

    Its rows read `<n|_>  <topic>[=<version>]  <state>  [ =<versions> ]`, wrapped rows start with `[`.
    MemcgError when the node offers no such topic (amazon-linux-extras enable would refuse it too).
    """
    for line in listing.splitlines():
        fields = line.split()
        if topic and len(fields) >= 3 and fields[1].split('=', 1)[0] == topic:
            return fields[2] == 'enabled'
    raise MemcgError("amazon-linux-extras lists no topic '%s' on this node: set kernel_upgrade_extras_topic "
                     "to one it lists" % topic)


def _join(releases):
    return ', '.join(releases) or 'none'


def target_release(plan, before, after, pinned='', policy_overrides=None, check_mode=False):
    """The release the node procedure boots once, after the install.

    plan      install_plan()'s result
    before    kernel_check's result before the install (the running kernel)
    after     kernel_check's result after it (installed_kernels)
    pinned    kernel_upgrade_target_release: boot exactly that one (it must be installed)

    Otherwise the highest installed release of the package (EL: the package name as installed;
    Debian meta-packages: any linux-image-*) that classifies as fixed, other than the running one,
    ranked with versions.release_vercmp; the running kernel stays when it is fixed and no higher
    fixed one is installed. Two candidates that rank the same are refused (set pinned). Check mode
    accepts a missing or not yet installed target (the install did not happen).

    Returns a dict: release (the target; '' only in check mode), running, candidates (the releases
    considered, highest first) and message (what check mode would install and boot).
    """
    running = _text(before.get('release'))
    installed = after.get('installed_kernels') or []
    releases = [kernel['release'] for kernel in installed]
    family = plan['family']
    pinned = _text(pinned)
    candidates = []
    if pinned:
        target = pinned
        if not check_mode and target != running and target not in releases:
            raise MemcgError('kernel_upgrade_target_release %s is not installed (installed: %s)'
                             % (target, _join(releases)))
    else:
        names = [kernel['package'] for kernel in installed]
        of_package = [kernel for kernel in installed if kernel['package'] == plan['package']] \
            if plan['package'] in names else installed
        for kernel in of_package:
            if kernel['release'] != running and kernel['release'] not in candidates:
                candidates.append(kernel['release'])

        def fixed(release):
            return classify(release, policy_overrides)['status'] == 'fixed'

        def compare(a, b):
            return release_vercmp(a, b, family)

        ranked = sorted([release for release in candidates if fixed(release)],
                        key=functools.cmp_to_key(compare), reverse=True)
        if len(ranked) > 1 and compare(ranked[0], ranked[1]) == 0:
            raise MemcgError('%s and %s rank the same: set kernel_upgrade_target_release to one of them'
                             % (ranked[0], ranked[1]))
        running_fixed = bool(running) and fixed(running)
        if ranked and (not running_fixed or compare(ranked[0], running) > 0):
            target = ranked[0]
        else:
            target = running if running_fixed else ''
        candidates = ranked
        if not target and not check_mode:
            raise MemcgError('no installed kernel of %s classifies as fixed (installed: %s; running %s, %s): check '
                             'the repository, or set kernel_upgrade_target_release'
                             % (plan['package'] or 'the package', _join(releases), running, before.get('status')))
    now = '%s (%s)' % (running, before.get('status'))
    if target and target != running:
        then = 'boot %s once; the running %s stays the default' % (target, now)
    else:
        then = ('boot the highest fixed release installed by then once if it is newer than the running %s, which '
                'stays the default (otherwise no reboot)' % now)
    return {'release': target, 'running': running, 'candidates': candidates,
            'message': 'would install %s (%s), then %s' % (plan['spec'], plan['method'], then)}
