# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paths under root (plugins/module_utils/root_paths.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils.root_paths import node_path, under_root


@pytest.mark.parametrize('root, path, parts, full', [
    ('/', '/proc/meminfo', (), '/proc/meminfo'),
    ('', '/sys/fs/cgroup/memory', (), '/sys/fs/cgroup/memory'),
    (None, 'proc', ('1', 'stat'), '/proc/1/stat'),
    ('/host', '/proc', ('1', 'stat'), '/host/proc/1/stat'),
    ('/host', 'boot/grub/grub.cfg', (), '/host/boot/grub/grub.cfg'),
    ('/host/', '/dev/kmsg', (), '/host/dev/kmsg'),
])
def test_under_root(root, path, parts, full):
    assert under_root(root, path, *parts) == full


@pytest.mark.parametrize('root, full, path', [
    ('/', '/boot/grub/grub.cfg', '/boot/grub/grub.cfg'),
    ('/host', '/host/boot/grub/grub.cfg', '/boot/grub/grub.cfg'),
    ('/host', '/host', '/'),
])
def test_node_path_is_the_inverse(root, full, path):
    assert node_path(root, full) == path
    assert under_root(root, path) == full or path == '/'
