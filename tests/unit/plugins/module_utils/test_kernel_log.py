# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import uuid

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils import kernel_log
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree

SLUB = 'SLUB: Unable to allocate memory on node -1'
FIXTURE = ('6,1,0,-;Linux version 3.10.0-1160.el7.x86_64\n'
           ' SUBSYSTEM=cpu\n'
           '4,812,9151,-;SLUB: Unable to allocate memory on node -1 (gfp=0x8020)\n'
           '4,813,9152,c;  cache: kmalloc-256(3:kubepods), object size: 256\n'
           '4,814,9153,-;SLUB: Unable to allocate memory on node -1 (gfp=0x8020)\n')


def test_parse_kmsg_takes_the_message_and_skips_continuations():
    assert kernel_log.parse_kmsg(FIXTURE)[:2] == ['Linux version 3.10.0-1160.el7.x86_64',
                                                  'SLUB: Unable to allocate memory on node -1 (gfp=0x8020)']
    assert len(kernel_log.parse_kmsg(FIXTURE)) == 4


def test_a_fixture_log_is_searched(tmp_path):
    tree.write(str(tmp_path), '/dev/kmsg', FIXTURE)
    result = kernel_log.read_kernel_log((SLUB,), str(tmp_path))
    assert result == {'source': '/dev/kmsg', 'note': 'read 4 records', 'records': 4, 'match_count': 2,
                      'matched': ['SLUB: Unable to allocate memory on node -1 (gfp=0x8020)'] * 2,
                      'truncated': False}


def test_matches_are_capped():
    found = kernel_log.find(['SLUB x'] * 9, ('SLUB',))
    assert found['match_count'] == 9 and len(found['matched']) == kernel_log.MAX_MATCHES


def test_a_missing_log_is_a_quiet_fallback(tmp_path):
    result = kernel_log.read_kernel_log((SLUB,), str(tmp_path))
    assert result['source'] == 'unavailable' and result['records'] == 0
    assert result['note'] == 'there is no /dev/kmsg under %s: the kernel log was not searched' % tmp_path


def test_a_log_that_may_not_be_read_is_a_quiet_fallback(tmp_path):
    if os.geteuid() == 0:
        pytest.skip('root reads a mode 000 file anyway')
    path = tree.write(str(tmp_path), '/dev/kmsg', FIXTURE)
    os.chmod(path, 0)
    result = kernel_log.read_kernel_log((SLUB,), str(tmp_path))
    assert result['source'] == 'unavailable' and 'may not be read' in result['note']


def test_a_fifo_in_place_of_the_log_does_not_block(tmp_path):
    os.makedirs(os.path.join(str(tmp_path), 'dev'))
    os.mkfifo(os.path.join(str(tmp_path), 'dev', 'kmsg'))
    result = kernel_log.read_kernel_log((SLUB,), str(tmp_path), timeout_s=5)
    assert result['source'] == '/dev/kmsg' and result['records'] == 0


def test_the_time_budget_stops_reading(tmp_path):
    tree.write(str(tmp_path), '/dev/kmsg', FIXTURE)
    ticks = iter([0.0, 10.0])
    result = kernel_log.read_kernel_log((SLUB,), str(tmp_path), timeout_s=5, clock=lambda: next(ticks))
    assert result['truncated'] is True and result['note'] == 'read 0 records (stopped early)'


@pytest.mark.skipif(not os.path.exists('/dev/kmsg') or os.geteuid() != 0, reason='needs root and /dev/kmsg')
def test_the_real_dev_kmsg_is_read_without_blocking():
    # A harmless marker written to this machine's kernel log must be found by the reader.
    marker = 'nodeops-memcg test marker %s' % uuid.uuid4().hex
    with open('/dev/kmsg', 'w') as handle:
        handle.write(marker + '\n')
    result = kernel_log.read_kernel_log((marker,), '/', timeout_s=10)
    assert result['source'] == '/dev/kmsg' and result['records'] > 1 and result['truncated'] is False
    assert result['match_count'] == 1 and result['matched'][0].endswith(marker)
