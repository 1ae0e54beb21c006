# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which kernels read memory.stat slowly when dying memory cgroups pile up.

The policy is one table of data (DEFAULT_POLICY); classify() interprets it. Users extend it
with override entries of the same schema, checked first. docs/kernel-policy.md explains the rows.

Entry schema (first entry whose `match` is found in the release wins):
  match            regex searched in the kernel release (required)
  stream           name of the kernel stream reported (default: the stream of the default
                   entry matching the same release, else 'override')
  status           status when no threshold is reached, or always when there is none
                   (severe|degraded|fixed|unknown; default 'severe' with thresholds)
  degraded_from    version from which the status is 'degraded'    } thresholds, compared with
  fixed_from       version from which the status is 'fixed'       } `ordering`
  ordering         upstream (major.minor[.patch]) | rpm (rpmvercmp) | dpkg (default upstream)
  version_pattern  regex searched in the release; group 1 (else the match) is the version
                   compared (default: the leading major.minor[.patch] for upstream, the whole
                   release for rpm and dpkg)
  reason           string, or dict status -> string
  source           commit or bug reference
  recommendation   dict summary/package/repository/minimum, reported when an upgrade is needed
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

try:
    from re import _parser as sre_parse  # Python 3.11+ (the sre_parse module warns there)
except ImportError:  # Python 2.7 to 3.10
    import sre_parse

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.versions import (
    dpkg_vercmp,
    parse_upstream,
    rpm_vercmp,
    upstream_vercmp,
)

STATUSES = ('severe', 'degraded', 'fixed', 'unknown')
ORDERINGS = ('upstream', 'rpm', 'dpkg')
THRESHOLDS = ('degraded_from', 'fixed_from')
RECOMMENDATION_KEYS = ('summary', 'package', 'repository', 'minimum')
ENTRY_KEYS = ('match', 'stream', 'status', 'ordering', 'version_pattern', 'reason', 'source',
              'recommendation') + THRESHOLDS

# str and, on Python 2, unicode (what module arguments arrive as); stdlib only, so no six.
_TEXT = (type(u''), type(''))
_COMPARE = {'upstream': upstream_vercmp, 'rpm': rpm_vercmp, 'dpkg': dpkg_vercmp}
_UPSTREAM_VERSION = r'^(\d+\.\d+(?:\.\d+)?)'

# Reasons and sources shared by every stream that follows the upstream kernel numbers.
_UPSTREAM_REASON = {
    'severe': 'before 4.16 a memory.stat read walks every memcg, dying ones included, once per '
              'stat item and per possible CPU; kubelet reads it every 10 s',
    'degraded': '4.16-5.1 no longer multiplies by CPUs, but a memory.stat read still walks every '
                'memcg, dying ones included',
    'fixed': 'from 5.2 recursive counters mean a memory.stat read no longer walks dying memcgs '
             '(5.13+ rstat flushing is better still); dying memcgs still cost memory',
}
_UPSTREAM_SOURCE = ('upstream 42a300353577 (5.2, series from 205b20cc5a99); a983b5ebee57 (4.16); '
                    '2d146aa3aa84 (5.13, rstat)')
_UPSTREAM_THRESHOLDS = {'ordering': 'upstream', 'status': 'severe',
                        'degraded_from': '4.16', 'fixed_from': '5.2'}


def _upstream_rule(**entry):
    rule = dict(_UPSTREAM_THRESHOLDS, reason=_UPSTREAM_REASON, source=_UPSTREAM_SOURCE)
    rule.update(entry)
    return rule


DEFAULT_POLICY = [
    _upstream_rule(
        stream='elrepo',
        match=r'-\d+\.el[6-9]\.elrepo',
        recommendation={
            'summary': 'install ELRepo kernel-lt 5.4+ or kernel-ml from the elrepo-kernel repository',
            'package': 'kernel-lt',
            'repository': 'elrepo-kernel',
            'minimum': '5.4',
        },
    ),
    {
        'stream': 'el8',
        'match': r'^4\.18\.0-\d+\S*\.el8',
        'ordering': 'rpm',
        # the rpm release part: 147.5.1 in 4.18.0-147.5.1.el8_1.x86_64
        'version_pattern': r'^4\.18\.0-(\d+(?:\.\d+)*)',
        'status': 'degraded',
        'fixed_from': '176',
        'reason': {
            'degraded': 'RHEL 8 kernels before 4.18.0-176 lack the backported recursive memcg '
                        'statistics: a memory.stat read walks every memcg, dying ones included',
            'fixed': 'RHEL 8 backported the recursive memcg statistics in 4.18.0-176 '
                     '(RHEL 8.2 GA is 4.18.0-193)',
        },
        'source': 'Red Hat bug 1795049 (kernel 4.18.0-176.el8)',
        'recommendation': {
            'summary': 'update the kernel package to 4.18.0-176 or later (RHEL 8.2+) from the '
                       'distribution repositories (BaseOS)',
            'package': 'kernel',
            'repository': 'BaseOS',
            'minimum': '4.18.0-176',
        },
    },
    {
        'stream': 'el7',
        'match': r'^3\.10\.0-\d+.*\.el7',
        'status': 'severe',
        'reason': 'no RHEL/CentOS 7 kernel (3.10.0) is known to carry the fix: a memory.stat read '
                  'walks every memcg, dying ones included, per stat item and per CPU',
        'source': 'upstream a983b5ebee57 (4.16) and 42a300353577 (5.2) are not in 3.10.0',
        'recommendation': {
            'summary': 'install ELRepo kernel-lt (5.4) or kernel-ml from the elrepo-kernel '
                       'repository, or move the node to EL8 (4.18.0-176+)',
            'package': 'kernel-lt',
            'repository': 'elrepo-kernel',
            'minimum': '5.4',
        },
    },
    _upstream_rule(
        stream='ubuntu',
        match=r'^\d+\.\d+\.0-\d+-(generic|generic-64k|generic-lpae|lowlatency|aws|azure|gcp|gke|'
              r'gkeop|oracle|kvm|ibm|raspi|nvidia)$',
        recommendation={
            'summary': 'on Ubuntu 18.04 install the HWE kernel linux-generic-hwe-18.04 (5.4; cloud '
                       'flavours have matching -hwe/-lts meta-packages); older releases: move to '
                       '18.04 HWE or 20.04+',
            'package': 'linux-generic-hwe-18.04',
            'repository': 'Ubuntu archive (bionic-updates)',
            'minimum': '5.4',
        },
    ),
    _upstream_rule(
        stream='debian',
        # 4.19.0-26-amd64, 5.10.0-0.deb10.16-amd64 (backports), 6.12.41+deb13-amd64 (trixie on)
        match=r'^\d+\.\d+\.0-(0\.(deb\d+|bpo)\.)?\d+-|^\d+\.\d+\.\d+\+deb\d+-',
        recommendation={
            'summary': 'on Debian 10 (buster) install linux-image-amd64 from buster-backports '
                       '(5.10), or upgrade to Debian 11+',
            'package': 'linux-image-amd64',
            'repository': 'buster-backports',
            'minimum': '5.10',
        },
    ),
    _upstream_rule(
        stream='amzn2',
        match=r'\.amzn2\.',
        recommendation={
            'summary': 'install kernel 5.10 with amazon-linux-extras install kernel-5.10',
            'package': 'kernel',
            'repository': 'amazon-linux-extras kernel-5.10',
            'minimum': '5.10',
        },
    ),
    _upstream_rule(
        stream='uek',
        match=r'el[789]uek',
        recommendation={
            'summary': 'install UEK R6 (kernel-uek 5.4.17) or later',
            'package': 'kernel-uek',
            'repository': 'Oracle Linux UEK R6 (ol7_UEKR6 / ol8_UEKR6)',
            'minimum': '5.4.17',
        },
    ),
    _upstream_rule(
        stream='alinux',
        match=r'\.al[78]\.',
        reason=dict(_UPSTREAM_REASON, degraded=_UPSTREAM_REASON['degraded'] + (
            '; Alibaba Cloud Linux kernels can reap dying memcgs in place through '
            '/sys/kernel/mm/memcg_reaper')),
        recommendation={
            'summary': 'mitigate in place with memcg_reaper (/sys/kernel/mm/memcg_reaper, '
                       'reap_background), or move to Alibaba Cloud Linux 3 (kernel 5.10)',
            'package': 'kernel',
            'repository': 'Alibaba Cloud Linux 3',
            'minimum': '5.10',
        },
    ),
    _upstream_rule(
        stream='upstream',
        match=r'^\d+\.\d+',
        recommendation={
            'summary': 'install a kernel 5.2 or later (5.13+ preferred) from your distribution',
            'package': '',
            'repository': '',
            'minimum': '5.2',
        },
    ),
]


def _where(name, index):
    return '%s[%d]' % (name, index)


def _check_regex(entry, key, where):
    pattern = entry.get(key)
    if not isinstance(pattern, _TEXT) or not pattern:
        raise MemcgError('%s: %s must be a non-empty string, got %r' % (where, key, pattern))
    try:
        re.compile(pattern)
    except re.error as exc:
        raise MemcgError('%s: %s %r is not a valid regular expression: %s'
                         % (where, key, pattern, exc))


def _optional_group(items, group, optional=False):
    """Whether capture group `group` can be left out of a match of the parsed pattern `items`.

    True when a repeat with minimum 0, an alternative, a conditional or a negative lookaround
    holds it, False when every match sets it, None when the pattern has no such group.
    """
    for op, av in items:
        name = str(op).upper()
        if name == 'SUBPATTERN':
            if av[0] == group:
                return optional
            children = [(av[-1], optional)]
        elif name in ('MAX_REPEAT', 'MIN_REPEAT', 'POSSESSIVE_REPEAT'):
            children = [(av[2], optional or av[0] == 0)]
        elif name == 'BRANCH':
            children = [(branch, True) for branch in av[1]]
        elif name == 'GROUPREF_EXISTS':
            children = [(branch, True) for branch in av[1:] if branch is not None]
        elif name in ('ASSERT', 'ASSERT_NOT'):
            children = [(av[1], optional or name == 'ASSERT_NOT')]
        elif name == 'ATOMIC_GROUP':
            children = [(av, optional)]
        else:
            children = []
        for child, child_optional in children:
            found = _optional_group(child, group, child_optional)
            if found is not None:
                return found
    return None


def _check_version_pattern(entry, where):
    _check_regex(entry, 'version_pattern', where)
    pattern = entry['version_pattern']
    if re.compile(pattern).groups and _optional_group(sre_parse.parse(pattern), 1):
        raise MemcgError('%s: version_pattern %r: group 1 is the version the thresholds are compared with, '
                         'so it must take part in every match; here it is optional' % (where, pattern))


def _check_entry(entry, where):
    if not isinstance(entry, dict):
        raise MemcgError('%s: must be a dict, got %r' % (where, entry))
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise MemcgError('%s: unknown key(s) %s (allowed: %s)'
                         % (where, ', '.join(unknown), ', '.join(ENTRY_KEYS)))
    if 'match' not in entry:
        raise MemcgError('%s: missing required key match' % where)
    _check_regex(entry, 'match', where)
    if 'version_pattern' in entry:
        _check_version_pattern(entry, where)
    status = entry.get('status', 'severe')
    if status not in STATUSES:
        raise MemcgError('%s: unknown status %r (expected one of %s)'
                         % (where, status, ', '.join(STATUSES)))
    ordering = entry.get('ordering', 'upstream')
    if ordering not in ORDERINGS:
        raise MemcgError('%s: unknown ordering %r (expected one of %s)'
                         % (where, ordering, ', '.join(ORDERINGS)))
    for key in THRESHOLDS:
        if key not in entry:
            continue
        value = entry[key]
        # YAML reads an unquoted 5.10 as the float 5.1: refuse floats rather than guess.
        if isinstance(value, bool) or not isinstance(value, _TEXT + (int,)) or value == '':
            raise MemcgError('%s: %s must be a string (quote versions such as "5.10"), got %r'
                             % (where, key, value))
        try:
            _COMPARE[ordering](str(value), str(value))
        except ValueError as exc:
            raise MemcgError('%s: %s %r is not a valid %s version: %s'
                             % (where, key, value, ordering, exc))
    for key in ('stream', 'source'):
        if key in entry and not isinstance(entry[key], _TEXT):
            raise MemcgError('%s: %s must be a string, got %r' % (where, key, entry[key]))
    reason = entry.get('reason', '')
    if isinstance(reason, dict):
        bad = [key for key, text in reason.items() if key not in STATUSES or not isinstance(text, _TEXT)]
        if bad:
            raise MemcgError('%s: reason keys must be statuses (%s) with string values, got %r'
                             % (where, ', '.join(STATUSES), bad[0]))
    elif not isinstance(reason, _TEXT):
        raise MemcgError('%s: reason must be a string or a dict, got %r' % (where, reason))
    recommendation = entry.get('recommendation', {})
    if not isinstance(recommendation, dict):
        raise MemcgError('%s: recommendation must be a dict, got %r' % (where, recommendation))
    for key, value in recommendation.items():
        if key not in RECOMMENDATION_KEYS:
            raise MemcgError('%s: unknown recommendation key %r (allowed: %s)'
                             % (where, key, ', '.join(RECOMMENDATION_KEYS)))
        if not isinstance(value, _TEXT):
            raise MemcgError('%s: recommendation.%s must be a string, got %r' % (where, key, value))


def validate_policy(entries, name='policy'):
    """Raise MemcgError naming the entry (name[index]) and the bad value; return entries."""
    if not isinstance(entries, list):
        raise MemcgError('%s must be a list of entries, got %r' % (name, entries))
    for index, entry in enumerate(entries):
        _check_entry(entry, _where(name, index))
    return entries


def _first_match(release, entries):
    for index, entry in enumerate(entries):
        if re.search(entry['match'], release):
            return index, entry
    return None, None


def _compared_version(release, entry):
    """The version the thresholds are compared with, or None when it cannot be derived."""
    ordering = entry.get('ordering', 'upstream')
    pattern = entry.get('version_pattern', _UPSTREAM_VERSION if ordering == 'upstream' else None)
    if pattern is None:
        return release
    found = re.search(pattern, release)
    if not found:
        return None
    version = found.group(1) if found.re.groups else found.group(0)
    if not version:  # validate_policy() refuses an optional group; an empty one gives nothing either
        return None
    if ordering == 'upstream' and parse_upstream(version) is None:
        return None
    return version


def _status(release, entry):
    """Apply the entry's thresholds; return (status, why-unknown or None)."""
    base = entry.get('status', 'severe')
    thresholds = [key for key in ('fixed_from', 'degraded_from') if key in entry]
    if not thresholds:
        return base, None
    version = _compared_version(release, entry)
    if version is None:
        return 'unknown', 'no version to compare could be derived from %r' % release
    compare = _COMPARE[entry.get('ordering', 'upstream')]
    try:
        for key in thresholds:
            if compare(version, str(entry[key])) >= 0:
                return key[:-len('_from')], None
    except ValueError as exc:
        return 'unknown', 'version %r cannot be compared: %s' % (version, exc)
    return base, None


def _reason(entry, status):
    reason = entry.get('reason', '')
    if isinstance(reason, dict):
        return reason.get(status, '')
    return reason


def _empty_recommendation():
    return dict((key, '') for key in RECOMMENDATION_KEYS)


def classify(release, overrides=None, policy=None):
    """Classify a kernel release (`uname -r`) against overrides, then the policy table.

    Returns the dict of docs/design.md: release, stream, status, reason, source,
    upgrade_needed, recommendation. Raises MemcgError for invalid override entries,
    naming policy_overrides[index] and the bad value.
    """
    overrides = validate_policy(list(overrides or []), 'policy_overrides')
    policy = DEFAULT_POLICY if policy is None else policy
    release = (release or '').strip()

    base_index, base_entry = _first_match(release, policy) if release else (None, None)
    over_index, entry = _first_match(release, overrides) if release else (None, None)
    if entry is not None:
        # An override says what it changes; the stream and the upgrade path it does not
        # mention stay those of the default entry for the same release.
        inherited = base_entry or {}
        entry = dict(entry)
        entry.setdefault('stream', inherited.get('stream', 'override'))
        entry.setdefault('recommendation', inherited.get('recommendation', {}))
        entry.setdefault('reason', 'set by policy_overrides[%d]' % over_index)
        entry.setdefault('source', 'policy_overrides[%d]' % over_index)
    else:
        entry = base_entry

    if entry is None:
        return {
            'release': release,
            'stream': 'unknown',
            'status': 'unknown',
            'reason': ('kernel release %r matches no policy entry' % release) if release
            else 'no kernel release given',
            'source': '',
            'upgrade_needed': False,
            'recommendation': _empty_recommendation(),
        }

    status, why_unknown = _status(release, entry)
    upgrade_needed = status in ('severe', 'degraded')
    recommendation = _empty_recommendation()
    if upgrade_needed:
        recommendation.update(entry.get('recommendation', {}))
    return {
        'release': release,
        'stream': entry.get('stream', 'override'),
        'status': status,
        'reason': why_unknown or _reason(entry, status),
        'source': entry.get('source', ''),
        'upgrade_needed': upgrade_needed,
        'recommendation': recommendation,
    }


def boot_findings(running, boot_default):
    """Findings about the default boot entry, given both classifications (boot_default None: unknown).

    One warning, code boot_default_unfixed, when the running kernel is not in need of an upgrade
    but the default entry is: the next boot lands on an unfixed kernel (an upgrade that booted the
    new kernel once and never committed it, or a default changed by hand).
    """
    if not boot_default or running.get('upgrade_needed') or not boot_default.get('upgrade_needed'):
        return []
    return [{
        'severity': 'warning',
        'code': 'boot_default_unfixed',
        'message': 'next boot lands on an unfixed kernel: the default boot entry %s is %s while the running %s is %s'
                   % (boot_default['release'], boot_default['status'], running['release'], running['status']),
    }]


def assess_boot_default(running, boot_default, overrides=None):
    """The boot_default_kernel and findings result keys of kernel_check and memcg_probe: the default
    boot entry's release (None: unknown) classified, and boot_findings() for it."""
    boot_kernel = classify(boot_default, overrides) if boot_default else None
    return {'boot_default_kernel': boot_kernel, 'findings': boot_findings(running, boot_kernel)}
