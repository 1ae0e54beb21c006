# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of nodeops.memcg.prometheus_brake: runs the module; a node Python this ansible-core cannot use
fails with a message naming it and the fix (plugins/plugin_utils/node_python.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.nodeops.memcg.plugins.plugin_utils.node_python_action import NodePythonActionModule


class ActionModule(NodePythonActionModule):
    pass
