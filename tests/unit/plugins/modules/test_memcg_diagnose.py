# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nodeops.memcg.plugins.modules.memcg_diagnose import main
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree
from ansible_collections.nodeops.memcg.tests.unit.utils.module_harness import run_module

RESULT_KEYS = {'changed', 'kernel', 'cgroup', 'kubelet', 'evidence', 'conclusion', 'reasons', 'read_latency',
               'rates', 'forecast', 'sources', 'timing', 'thresholds'}


def test_diagnose_a_fixture_el7_node_in_check_mode(tmp_path):
    root = tree.build_node(tmp_path, memory_num_cgroups=68700)
    result, failed = run_module(main, {'root': root, 'duration': 0.2, 'timeout': 6, 'method': 'proc',
                                       'kubelet_name': 'no-such-kubelet'}, check_mode=True)
    assert not failed, result.get('msg')
    assert RESULT_KEYS <= set(result) and result['changed'] is False
    assert result['kernel'] == {'release': '3.10.0-1160.el7.x86_64', 'generation': '3.10'}
    assert result['conclusion'] == 'unknown' and result['evidence']['method'] == 'none'
    assert result['evidence']['functions'][0] == 'memcg_stat_show'
    assert result['read_latency'][0]['level'] == 'root' and result['read_latency'][0]['status'] == 'read'
    assert result['forecast']['id_limit'] == 65535 and result['rates']['dying_delta'] == 0


@pytest.mark.parametrize('args, message', [
    ({'duration': 10, 'timeout': 11}, 'timeout (11.0 s) must exceed duration (10.0 s) by at least 5 s'),
    ({'method': 'ebpf'}, 'value of method must be one of: auto, perf, proc, got: ebpf'),
    ({'thresholds': {'likely_share_percent': 90}}, 'likely_share_percent (90.0) must not exceed confirm_share_percent (25)'),
])
def test_bad_input_is_refused_with_the_value(tmp_path, args, message):
    result, failed = run_module(main, dict({'root': str(tmp_path)}, **args))
    assert failed and message in result['msg'], result['msg']
