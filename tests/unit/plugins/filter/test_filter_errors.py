# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters fail with AnsibleFilterError naming the bad value, never a bare MemcgError (plugins/filter/)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeops.memcg.plugins.filter import kernel_install, memcg
from ansible_collections.nodeops.memcg.tests.unit.fixtures.node_facts import NODE_FACTS


@pytest.mark.parametrize('name, args, words', [
    ('upgrade_batches', (['n1', 'n2'], '0%'), ['kernel_upgrade_batch', "'0%'"]),
    ('upgrade_capacity_check', ([], ['n1'], [], 'half'), ['kernel_upgrade_max_unavailable', "'half'"]),
])
def test_memcg_filters_raise_ansible_filter_errors(name, args, words):
    with pytest.raises(AnsibleFilterError) as caught:
        memcg.FilterModule().filters()[name](*args)
    for word in words:
        assert word in str(caught.value)


def test_a_node_state_that_cannot_be_reconciled_is_a_stop_not_an_error():
    state = memcg.FilterModule().filters()['upgrade_node_state']('n1', {'release': ''})
    assert state['status'] == 'stop' and 'n1' in state['why']


def test_kernel_install_filters_raise_ansible_filter_errors():
    filters = kernel_install.FilterModule().filters()
    with pytest.raises(AnsibleFilterError) as caught:
        filters['kernel_install_plan']({'os_family': 'Suse'})
    assert 'not Suse' in str(caught.value)
    plan = filters['kernel_install_plan'](NODE_FACTS['centos7'])
    with pytest.raises(AnsibleFilterError) as caught:
        filters['kernel_target_release']({'installed_kernels': []}, {'release': '3.10.0-1160.el7.x86_64'}, plan,
                                         '5.4.278-1.el7.elrepo.x86_64')
    assert 'is not installed' in str(caught.value)
    with pytest.raises(AnsibleFilterError) as caught:
        filters['kernel_extras_topic_enabled'](' 62  kernel-5.10   available   [ =stable ]\n', 'kernel-5.15')
    assert "no topic 'kernel-5.15'" in str(caught.value)
