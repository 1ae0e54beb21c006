# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names checked before they reach kubectl or an object: pure, no I/O.

Kubernetes object names follow the API's own rules (k8s.io/apimachinery validation): nodes and
leases are DNS-1123 subdomains, namespaces DNS-1123 labels. A name that breaks them is refused
before kubectl starts, so a value such as ``--server=http://...`` or ``--as=system:admin`` can
never become a kubectl flag (kubectl argv also puts ``--`` before positional arguments).
Run ids and lock holders are free text to the API, but they go into annotations, Lease holders,
logs and reports: they are restricted to SAFE_TOKEN (letters, digits and ``. _ : @ + -``, starting
with a letter or digit, at most 128 characters).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import numbers
import re

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

_LABEL = r'[a-z0-9]([-a-z0-9]*[a-z0-9])?'
DNS1123_LABEL = re.compile(r'^%s$' % _LABEL)
DNS1123_SUBDOMAIN = re.compile(r'^%s(\.%s)*$' % (_LABEL, _LABEL))
SAFE_TOKEN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._:@+-]*$')
LABEL_MAX = 63
SUBDOMAIN_MAX = 253
TOKEN_MAX = 128
# Lease.spec.leaseDurationSeconds is an int32.
INT32_MAX = 2147483647


def _check(option, value, pattern, maximum, rule):
    if not isinstance(value, (type(u''), type(''))) or value == '':
        raise MemcgError('%s must not be empty; got %r' % (option, value))
    if len(value) > maximum or not pattern.match(value):
        raise MemcgError('%s must be %s (at most %d characters), got %r' % (option, rule, maximum, value))
    return value


def dns_subdomain(option, value):
    """A node or Lease name: lower-case letters, digits, '-' and '.', alphanumeric at both ends."""
    return _check(option, value, DNS1123_SUBDOMAIN, SUBDOMAIN_MAX,
                  'a DNS-1123 subdomain (lower-case letters, digits, "-" and ".", starting and ending '
                  'with a letter or digit)')


def dns_label(option, value):
    """A namespace name: lower-case letters, digits and '-', alphanumeric at both ends."""
    return _check(option, value, DNS1123_LABEL, LABEL_MAX,
                  'a DNS-1123 label (lower-case letters, digits and "-", starting and ending with a '
                  'letter or digit)')


def safe_token(option, value):
    """A run id or lock holder: SAFE_TOKEN, at most TOKEN_MAX characters."""
    return _check(option, value, SAFE_TOKEN, TOKEN_MAX,
                  'letters, digits and ". _ : @ + -", starting with a letter or digit')


def int_range(option, value, minimum, maximum, unit='seconds'):
    """An integer option within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not minimum <= value <= maximum:
        raise MemcgError('%s must be between %d and %d %s, got %r' % (option, minimum, maximum, unit, value))
    return value
