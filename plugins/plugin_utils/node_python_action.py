# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the collection's action plugins (plugins/action/<module>.py): run the module, explain a
node Python this ansible-core cannot use (node_python.py); controller side."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils import basic
from ansible.plugins.action.normal import ActionModule as NormalActionModule
from ansible.release import __version__ as ANSIBLE_CORE_VERSION

from ansible_collections.nodeops.memcg.plugins.plugin_utils.node_python import (
    explain_unsupported_interpreter, may_be_unsupported_interpreter, minimum_target_python, parse_version,
    version_command)


class NodePythonActionModule(NormalActionModule):
    """Runs the task's module like ansible.builtin.normal; explains a node Python this ansible-core cannot use."""

    def run(self, tmp=None, task_vars=None):
        result = super(NodePythonActionModule, self).run(tmp, task_vars)
        minimum = minimum_target_python(basic)
        if minimum is None or not may_be_unsupported_interpreter(result):
            return result
        interpreter = version_command(self._used_interpreter)
        if interpreter is None:
            return result
        answer = self._low_level_execute_command(interpreter[1], sudoable=False)
        if answer.get('rc') != 0:
            return result
        return explain_unsupported_interpreter(result, self._task.action, parse_version(answer.get('stdout')),
                                               interpreter[0], ANSIBLE_CORE_VERSION, minimum)
