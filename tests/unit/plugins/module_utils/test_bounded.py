# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import time

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils import bounded, cgroups, procfs
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree


def gone(pid):
    """True when pid is no child of ours any more (reaped), checked by pid."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except OSError as exc:
        return exc.errno == errno.ECHILD
    return False


def fifo(tmp_path, path):
    full = os.path.join(str(tmp_path), path.lstrip('/'))
    if not os.path.isdir(os.path.dirname(full)):
        os.makedirs(os.path.dirname(full))
    os.mkfifo(full)
    return full


def test_run_returns_the_child_value_and_reaps_it():
    assert bounded.run(lambda: {'pid': os.getpid()}, 5, 'a read')['pid'] != os.getpid()


def test_run_turns_a_child_error_into_memcg_error():
    def fail():
        raise MemcgError('cannot read /x: denied')
    with pytest.raises(MemcgError, match='^cannot read /x: denied$'):
        bounded.run(fail, 5, 'a read')


def test_run_reports_other_child_exceptions_by_type():
    with pytest.raises(MemcgError, match='ZeroDivisionError'):
        bounded.run(lambda: 1 // 0, 5, 'a read')


def test_a_fifo_read_times_out_and_the_reader_is_killed_and_reaped(tmp_path):
    path = fifo(tmp_path, '/f')
    start = time.time()
    with pytest.raises(bounded.ReadTimedOut) as caught:
        bounded.run(lambda: open(path).read(), 0.3, 'the read of /f')
    assert time.time() - start < 0.3 + bounded.KILL_GRACE_S + 1
    exc = caught.value
    assert str(exc) == 'the read of /f did not finish within 0.3 s'
    assert exc.waited_ms >= 300 and exc.reaped is True
    assert gone(exc.pid)
    assert exc.as_dict() == {'timed_out': True, 'timeout_s': 0.3, 'waited_ms': exc.waited_ms,
                             'reader': {'pid': exc.pid, 'reaped': True}}


@pytest.mark.parametrize('value, message', [
    (0, 'read_timeout must be over 0.0 and at most 600.0 seconds, got 0'),
    (-1, 'got -1'),
    (601, 'got 601'),
    (float('inf'), 'read_timeout must be a finite number of seconds, got inf'),
    (float('nan'), 'got nan'),
    ('5', "got '5'"),
    (True, 'got True'),
])
def test_check_timeout_refuses(value, message):
    with pytest.raises(MemcgError, match=message):
        bounded.check_timeout('read_timeout', value)


def test_time_read_of_a_fifo_is_a_timed_out_measurement(tmp_path):
    fifo(tmp_path, '/m/memory.stat')
    result = cgroups.time_read('/m/memory.stat', reads=3, warn_ms=100, root=str(tmp_path), timeout_s=0.2)
    assert result['timed_out'] is True and result['reads'] == 0 and result['ms'] == []
    assert result['max_ms'] == result['waited_ms'] >= 200 and result['slow'] is True
    assert result['timeout_s'] == 0.2 and result['reader']['reaped'] is True and gone(result['reader']['pid'])


def test_read_latency_does_not_read_kubepods_after_the_root_timed_out(tmp_path):
    root = tree.build_node(tmp_path)
    os.unlink(os.path.join(root, 'sys/fs/cgroup/memory/memory.stat'))
    fifo(root, '/sys/fs/cgroup/memory/memory.stat')
    start = time.time()
    latency = cgroups.read_latency(cgroups.detect_layout(root), 1, 100, root, timeout_s=0.2)
    assert latency['root']['timed_out'] is True and latency['kubepods'] is None
    assert time.time() - start < 0.2 + bounded.KILL_GRACE_S + 1


def test_time_read_bounded_matches_the_unbounded_read(tmp_path):
    tree.write(tmp_path, '/m/memory.stat', tree.MEMORY_STAT_V1)
    result = cgroups.time_read('/m/memory.stat', 2, 100, str(tmp_path), timeout_s=5)
    assert result['reads'] == 2 and result['timed_out'] is False and 'reader' not in result


def test_time_read_bounded_missing_file_is_none(tmp_path):
    assert cgroups.time_read('/m/memory.stat', root=str(tmp_path), timeout_s=5) is None


def test_read_pid_stat_of_a_blocking_stat_times_out(tmp_path):
    fifo(tmp_path, '/proc/99/stat')
    with pytest.raises(bounded.ReadTimedOut, match='the read of /proc/99/stat did not finish within 0.2 s'):
        procfs.read_pid_stat(99, str(tmp_path), timeout_s=0.2)
