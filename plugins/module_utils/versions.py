# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Version orderings as the packaging tools define them: rpm, dpkg, and upstream kernel numbers.

Never compare versions as strings or floats: '4.18.0-1160' > '4.18.0-176' only by these rules.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

_UPSTREAM_RE = re.compile(r'^(\d+)\.(\d+)(?:\.(\d+))?')


def _sign(value):
    return (value > 0) - (value < 0)


# rpm and dpkg classify with the C locale: only ASCII letters and digits count.
def _isdigit(c):
    return '0' <= c <= '9'


def _isalpha(c):
    return 'a' <= c <= 'z' or 'A' <= c <= 'Z'


def _isalnum(c):
    return _isdigit(c) or _isalpha(c)


def rpm_vercmp(a, b):
    """Compare two version strings the way rpm's rpmvercmp() does; return -1, 0 or 1.

    A line-by-line port of rpmio/rpmvercmp.c (rpm >= 4.15, with caret support): the strings
    are split into runs of digits or letters, anything else separates them; '~' sorts before
    everything (even the end), '^' sorts after the end but before anything else; a digit run
    beats a letter run; leading zeros are ignored.
    """
    if a == b:
        return 0
    one, two = 0, 0
    len_a, len_b = len(a), len(b)

    def at(s, i):
        return s[i] if i < len(s) else ''

    while one < len_a or two < len_b:
        while one < len_a and not _isalnum(a[one]) and a[one] not in '~^':
            one += 1
        while two < len_b and not _isalnum(b[two]) and b[two] not in '~^':
            two += 1

        ca, cb = at(a, one), at(b, two)
        # tilde sorts before everything else
        if ca == '~' or cb == '~':
            if ca != '~':
                return 1
            if cb != '~':
                return -1
            one += 1
            two += 1
            continue

        # caret is like tilde, except that the end of the other string sorts lower
        if ca == '^' or cb == '^':
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != '^':
                return 1
            if cb != '^':
                return -1
            one += 1
            two += 1
            continue

        if not (ca and cb):
            break

        end_a, end_b = one, two
        if _isdigit(ca):
            while end_a < len_a and _isdigit(a[end_a]):
                end_a += 1
            while end_b < len_b and _isdigit(b[end_b]):
                end_b += 1
            isnum = True
        else:
            while end_a < len_a and _isalpha(a[end_a]):
                end_a += 1
            while end_b < len_b and _isalpha(b[end_b]):
                end_b += 1
            isnum = False

        seg_a, seg_b = a[one:end_a], b[two:end_b]
        # segments of different types: the numeric one is newer
        if not seg_b:
            return 1 if isnum else -1

        if isnum:
            seg_a = seg_a.lstrip('0')
            seg_b = seg_b.lstrip('0')
            # the longer number wins (no int overflow, as in rpm)
            if len(seg_a) != len(seg_b):
                return 1 if len(seg_a) > len(seg_b) else -1
        if seg_a != seg_b:
            return 1 if seg_a > seg_b else -1

        one, two = end_a, end_b

    # all segments equal but the separators differed
    if one >= len_a and two >= len_b:
        return 0
    return -1 if one >= len_a else 1


def _dpkg_order(c):
    """dpkg's weight of a non-digit character: '~' < end < letters < everything else."""
    if _isdigit(c):
        return 0
    if _isalpha(c):
        return ord(c)
    if c == '~':
        return -1
    if c:
        return ord(c) + 256
    return 0


def _dpkg_verrevcmp(a, b):
    """Port of dpkg's verrevcmp() (lib/dpkg/version.c) for one upstream or revision part."""
    i, j = 0, 0
    len_a, len_b = len(a), len(b)

    def at(s, k):
        return s[k] if k < len(s) else ''

    while i < len_a or j < len_b:
        first_diff = 0
        while (i < len_a and not _isdigit(a[i])) or (j < len_b and not _isdigit(b[j])):
            ac = _dpkg_order(at(a, i))
            bc = _dpkg_order(at(b, j))
            if ac != bc:
                return _sign(ac - bc)
            i += 1
            j += 1
        while at(a, i) == '0':
            i += 1
        while at(b, j) == '0':
            j += 1
        while _isdigit(at(a, i)) and _isdigit(at(b, j)):
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if _isdigit(at(a, i)):
            return 1
        if _isdigit(at(b, j)):
            return -1
        if first_diff:
            return _sign(first_diff)
    return 0


def dpkg_parse(version):
    """Split a Debian version into (epoch, upstream, revision) as dpkg's parseversion() does.

    The epoch is what precedes the first ':', the revision what follows the last '-'.
    Raises ValueError naming the version when it is empty or the epoch is not a number.
    """
    text = version.strip()
    if not text:
        raise ValueError('empty Debian version %r' % (version,))
    epoch = 0
    if ':' in text:
        epoch_text, text = text.split(':', 1)
        if not epoch_text or not all(_isdigit(c) for c in epoch_text):
            raise ValueError('epoch %r in Debian version %r is not a number' % (epoch_text, version))
        epoch = int(epoch_text)
        if not text:
            raise ValueError('nothing after the epoch in Debian version %r' % (version,))
    upstream, sep, revision = text.rpartition('-')
    if not sep:
        upstream, revision = text, ''
    if not upstream:
        raise ValueError('empty upstream part in Debian version %r' % (version,))
    return epoch, upstream, revision


def dpkg_vercmp(a, b):
    """Compare two Debian versions ([epoch:]upstream[-revision]) as dpkg does; return -1, 0 or 1."""
    epoch_a, upstream_a, revision_a = dpkg_parse(a)
    epoch_b, upstream_b, revision_b = dpkg_parse(b)
    if epoch_a != epoch_b:
        return 1 if epoch_a > epoch_b else -1
    return _dpkg_verrevcmp(upstream_a, upstream_b) or _dpkg_verrevcmp(revision_a, revision_b)


def parse_upstream(text):
    """Return the leading kernel version of text as a (major, minor, patch) tuple, or None.

    '5.4.0-150-generic' -> (5, 4, 0); '6.18' -> (6, 18, 0); 'garbage' -> None.
    """
    found = _UPSTREAM_RE.match(text.strip())
    if not found:
        return None
    return tuple(int(part or 0) for part in found.groups())


def upstream_vercmp(a, b):
    """Compare two upstream kernel versions ('major.minor[.patch]' strings or tuples); -1/0/1.

    A missing patch level counts as 0. Raises ValueError naming a value that does not start
    with 'major.minor'.
    """
    parsed = []
    for value in (a, b):
        version = tuple(value) if isinstance(value, (tuple, list)) else parse_upstream(value)
        if not version or len(version) < 2:
            raise ValueError('%r is not a major.minor[.patch] kernel version' % (value,))
        parsed.append((tuple(version) + (0, 0))[:3])
    return (parsed[0] > parsed[1]) - (parsed[0] < parsed[1])


# A Debian/Ubuntu release ends in its flavour: -amd64, -cloud-amd64, -generic, -lowlatency, -aws.
_FLAVOUR_RE = re.compile(r'^(?P<version>.*?\d)(?P<flavour>(?:-[A-Za-z][A-Za-z0-9_+]*)*)$')


def release_version(release, family):
    """The part of a kernel release (`uname -r`) that its package tool orders.

    EL (`el`): the whole release, VERSION-RELEASE.ARCH as rpm builds it. Debian/Ubuntu (`debian`):
    the release without its flavour ('6.1.0-18-cloud-amd64' -> '6.1.0-18',
    '5.10.0-0.deb10.28-amd64' -> '5.10.0-0.deb10.28'), which reads as a dpkg upstream-revision.
    """
    if family == 'debian':
        found = _FLAVOUR_RE.match(release.strip())
        if found:
            return found.group('version')
    return release.strip()


def release_vercmp(a, b, family):
    """Compare two kernel releases (`uname -r`) as their package tool orders them; -1, 0 or 1.

    EL: rpm_vercmp on the version (before the first '-') then on the rest, so '4.18.0-240.el8' <
    '4.18.0-240.el8_2' < '4.18.0-240.1.1.el8_3' and '5.4.99-1' < '5.4.278-1'. Debian/Ubuntu:
    dpkg_vercmp of release_version(), so '6.1.0-17-amd64' < '6.1.0-18-amd64' and two flavours of one
    build ('5.4.0-150-generic', '5.4.0-150-lowlatency') compare equal: no ordering says which to boot.
    Raises ValueError for an unknown family.
    """
    if family == 'el':
        version_a, dummy, rest_a = a.strip().partition('-')
        version_b, dummy, rest_b = b.strip().partition('-')
        return rpm_vercmp(version_a, version_b) or rpm_vercmp(rest_a, rest_b)
    if family == 'debian':
        return dpkg_vercmp(release_version(a, family), release_version(b, family))
    raise ValueError('unknown family %r (expected el or debian)' % (family,))
