# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reads with a deadline, on Python 2.7 and 3.6+ alike.

A read of memory.stat on a sick node can take minutes, a FIFO in its place never answers, and a
read stuck in the kernel cannot be abandoned by the thread that started it (Python has no way
to cancel a blocking read(), and a thread left behind would keep the module alive). So the read
runs in a forked child that reports back through a pipe; the parent waits at most the deadline,
then kills the child with SIGKILL and reaps it. A child blocked in an interruptible sleep (a
FIFO, a slow device) dies at once. A child busy inside the kernel (a memory.stat read walking
dying cgroups) dies only when that read returns to user space: the parent waits KILL_GRACE_S
for that, and when the child is still there it says so (reaped false, with its pid); the kernel
ends it when the read returns and init reaps it then. Nothing else outlives the caller.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import math
import numbers
import os
import select
import signal
import time

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

KILL_GRACE_S = 0.5      # how long a killed reader may take to die before we stop waiting
MAX_TIMEOUT_S = 600.0   # the largest deadline accepted for one read
_POLL_S = 0.01


class ReadTimedOut(MemcgError):
    """A bounded read did not finish by its deadline: a measured fact, not a failure.

    Attributes: waited_ms (how long the caller waited), pid (the reader child), reaped (False
    when the killed child was still inside the kernel after KILL_GRACE_S).
    """

    def __init__(self, what, timeout_s, waited_ms, pid, reaped):
        MemcgError.__init__(self, '%s did not finish within %s s' % (what, timeout_s))
        self.timeout_s = timeout_s
        self.waited_ms = waited_ms
        self.pid = pid
        self.reaped = reaped

    def as_dict(self):
        return {'timed_out': True, 'timeout_s': self.timeout_s, 'waited_ms': self.waited_ms,
                'reader': {'pid': self.pid, 'reaped': self.reaped}}


def check_timeout(name, value, minimum=0.0, maximum=MAX_TIMEOUT_S):
    """Check a timeout option: a finite number of seconds above minimum, at most maximum."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or math.isnan(value) or math.isinf(value):
        raise MemcgError('%s must be a finite number of seconds, got %r' % (name, value))
    if not minimum < value <= maximum:
        raise MemcgError('%s must be over %s and at most %s seconds, got %r' % (name, minimum, maximum, value))
    return value


def _monotonic():
    return getattr(time, 'monotonic', time.time)()


def _retry_eintr(call, *args):
    # Python 2.7 and 3.4 do not retry on EINTR (PEP 475); select.error is no OSError on 2.7.
    while True:
        try:
            return call(*args)
        except (OSError, IOError, select.error) as exc:
            if exc.args and exc.args[0] == errno.EINTR:
                continue
            raise


def _child(write_fd, function):
    # In the forked child: run function, send {'value'} or {'error'} as JSON, never return.
    code = 0
    try:
        try:
            payload = {'value': function()}
        except MemcgError as exc:
            payload = {'error': str(exc)}
        except Exception as exc:  # reported to the parent, which raises MemcgError
            payload = {'error': '%s: %s' % (type(exc).__name__, exc)}
        data = json.dumps(payload).encode('utf-8')
        while data:
            data = data[os.write(write_fd, data):]
    except BaseException:
        code = 1
    finally:
        os._exit(code)  # no atexit handlers, no flush of the parent's buffered output


def _reap(pid, grace_s):
    deadline = _monotonic() + grace_s
    while True:
        try:
            done, dummy = os.waitpid(pid, os.WNOHANG)
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            if exc.errno == errno.ECHILD:
                return True
            raise
        if done:
            return True
        if _monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)


def run(function, timeout_s, what, grace_s=KILL_GRACE_S):
    """Run function() in a forked child and return its (JSON-serialisable) value.

    Raises ReadTimedOut when it has not finished after timeout_s seconds (the child is killed
    and reaped, see the module doc), MemcgError with the child's message when it failed.
    """
    read_fd, write_fd = os.pipe()
    start = _monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(write_fd, function)
    os.close(write_fd)
    chunks = []
    finished = False
    try:
        while True:
            remaining = timeout_s - (_monotonic() - start)
            if remaining <= 0:
                break
            ready = _retry_eintr(select.select, [read_fd], [], [], remaining)[0]
            if not ready:
                continue
            chunk = _retry_eintr(os.read, read_fd, 65536)
            if not chunk:
                finished = True
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        if not finished:
            waited_ms = round((_monotonic() - start) * 1000.0, 3)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError as exc:
                if exc.errno != errno.ESRCH:
                    raise
            reaped = _reap(pid, grace_s)
    if not finished:
        raise ReadTimedOut(what, timeout_s, waited_ms, pid, reaped)
    _retry_eintr(os.waitpid, pid, 0)  # end of file: the child has exited
    try:
        payload = json.loads(b''.join(chunks).decode('utf-8'))
    except ValueError:
        raise MemcgError('%s: the reader process ended without a result' % what)
    if 'error' in payload:
        raise MemcgError(payload['error'])
    return payload['value']
