# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.rollout import batch_size, plan_batches


@pytest.mark.parametrize('batch, count, size', [
    (2, 5, 2), ('2', 5, 2), ('20%', 10, 2), ('25%', 10, 2), ('5%', 10, 1), ('100%', 7, 7), (' 30 % ', 10, 3),
])
def test_batch_size_matches_serial(batch, count, size):
    assert batch_size(batch, count) == size


@pytest.mark.parametrize('batch', [0, '0', '-1', '0%', '101%', 'two', '', '1.5', None])
def test_bad_batch_names_the_value(batch):
    with pytest.raises(MemcgError, match=r'kernel_upgrade_batch must be .* got %s' % repr(batch).replace('.', r'\.')):
        batch_size(batch, 5)


def test_plan_batches_keeps_order():
    assert plan_batches(['n1', 'n2', 'n3', 'n4', 'n5'], 2) == [['n1', 'n2'], ['n3', 'n4'], ['n5']]
    assert plan_batches([], 2) == []
