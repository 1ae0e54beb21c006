# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel log, read without a command and without blocking: <root>/dev/kmsg.

/dev/kmsg opened O_NONBLOCK starts at the oldest record the ring buffer still holds; each read()
returns one record ('prio,seq,usec,flags;message', then ' KEY=value' continuation lines) and
EAGAIN after the newest one, so it never waits for new messages. EPIPE means records were
overwritten while we read: reading goes on with the next one. Where the log may not be read
(kernel.dmesg_restrict without CAP_SYSLOG, no /dev/kmsg in a container) the reader says so and
the caller goes on without it. A plain file in a fixture tree (one record per line) reads the same.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import time

from ansible_collections.nodeops.memcg.plugins.module_utils.root_paths import under_root
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

KMSG = '/dev/kmsg'
RECORD_BUFFER = 16384          # larger than any record (the kernel refuses reads into a smaller buffer)
MAX_BYTES = 8 * 1024 * 1024    # the largest ring buffers are a few MiB
MAX_MATCHES = 5                # matching lines kept in the result
_NOT_PERMITTED = (errno.EACCES, errno.EPERM)
_ABSENT = (errno.ENOENT, errno.ENOTDIR, errno.ENODEV, errno.ENXIO)


def parse_kmsg(text):
    """Messages of /dev/kmsg records (the text after ';'); continuation lines are skipped."""
    messages = []
    for line in text.splitlines():
        if not line or line.startswith(' '):
            continue
        head, sep, message = line.partition(';')
        messages.append(message if sep and ',' in head else line)
    return messages


def find(messages, patterns):
    """{'records': n, 'matched': [up to MAX_MATCHES messages holding any pattern], 'match_count'}."""
    matched = [message for message in messages if any(pattern in message for pattern in patterns)]
    return {'records': len(messages), 'match_count': len(matched), 'matched': matched[:MAX_MATCHES]}


def _read_records(fd, deadline, clock):
    chunks, size, truncated = [], 0, False
    while True:
        if clock() >= deadline or size >= MAX_BYTES:
            truncated = True
            break
        try:
            chunk = os.read(fd, RECORD_BUFFER)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                continue  # overwritten while we read; the next read returns the next record
            if exc.errno == errno.EINTR:
                continue
            if exc.errno == errno.EAGAIN:
                break  # the newest record has been read
            raise
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b''.join(chunks).decode('utf-8', 'replace'), truncated


def read_kernel_log(patterns, root='/', timeout_s=5.0, clock=None):
    """Search the kernel log under root for patterns; never blocks, never fails for lack of it.

    Returns {'source': '/dev/kmsg' or 'unavailable', 'note', 'records', 'match_count',
    'matched', 'truncated'}: truncated when timeout_s or MAX_BYTES stopped the reading early.
    """
    clock = clock or getattr(time, 'monotonic', time.time)
    path = under_root(root, KMSG)
    result = {'source': 'unavailable', 'note': '', 'records': 0, 'match_count': 0, 'matched': [],
              'truncated': False}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in _NOT_PERMITTED:
            result['note'] = ('%s may not be read (%s; kernel.dmesg_restrict needs CAP_SYSLOG): '
                              'the kernel log was not searched' % (KMSG, exc.strerror))
        elif exc.errno in _ABSENT:
            result['note'] = 'there is no %s under %s: the kernel log was not searched' % (KMSG, root or '/')
        else:
            raise MemcgError('cannot open %s: %s' % (path, exc.strerror or exc))
        return result
    try:
        text, truncated = _read_records(fd, clock() + timeout_s, clock)
    except OSError as exc:
        raise MemcgError('cannot read %s: %s' % (path, exc.strerror or exc))
    finally:
        os.close(fd)
    result.update(find(parse_kmsg(text), patterns))
    result.update(source=KMSG, truncated=truncated,
                  note='read %d records%s' % (result['records'], ' (stopped early)' if truncated else ''))
    return result
