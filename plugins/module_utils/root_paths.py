# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paths of a node's files under `root`, the one way every reader of /proc, /sys, /boot and /etc joins them.

Every module that reads the node takes a `root` option (default '/'): the node's file system is
mounted there, or a test hands it a fixture tree. A node path (/proc/meminfo) is opened at
under_root(root, path); a file found under root is named to people by node_path(root, full).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os


def under_root(root, path, *parts):
    """Where to open the node path `path` (absolute or root-relative, then `parts`) under `root`.

    under_root('/', '/proc/meminfo') == '/proc/meminfo';
    under_root('/host', '/proc', '1', 'stat') == '/host/proc/1/stat'. An empty root is '/'.
    """
    return os.path.join(root or '/', path.lstrip('/'), *parts)


def node_path(root, full):
    """The node's own path of a file found under `root` (the inverse of under_root).

    node_path('/host', '/host/boot/grub/grub.cfg') == '/boot/grub/grub.cfg'.
    """
    relative = os.path.relpath(full, root or '/')
    return '/' + relative if relative != '.' else '/'
