# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollout planning: batches the way Ansible's serial keyword cuts them; pure."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

_BATCH = re.compile(r'^\s*(\d+)\s*(%?)\s*$')


def batch_size(batch, count):
    """Nodes per batch for a serial value (a count, or a percentage of count) over count nodes.

    Matches Ansible's serial: a percentage is floored, and never less than one node.
    Raises MemcgError naming the value when it is not a positive count or a percentage 1-100.
    """
    match = _BATCH.match(str(batch))
    if not match or int(match.group(1)) < 1 or (match.group(2) and int(match.group(1)) > 100):
        raise MemcgError('kernel_upgrade_batch must be a positive count or a percentage from 1%% to '
                         '100%%, got %r' % (batch,))
    value = int(match.group(1))
    if match.group(2):
        return max(1, int(value / 100.0 * count))
    return value


def plan_batches(nodes, batch):
    """The nodes cut into consecutive batches, in order."""
    nodes = list(nodes)
    size = batch_size(batch, len(nodes))
    return [nodes[start:start + size] for start in range(0, len(nodes), size)]
