# -*- coding: utf-8 -*-
"""The clear message for a node Python the controller's ansible-core cannot use (plugin_utils.node_python).

Plain inputs: result dicts shaped as ansible-core 2.19 and 2.18 return them against CPython 2.7/3.6/3.7
(seen), a real shell running the version command. The action plugins around it run against the real
interpreters in tests/integration/test_centos7_pythons.py.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import subprocess
import sys
import types

import pytest

from ansible.module_utils import basic
from ansible.release import __version__ as core_version

from ansible_collections.nodeops.memcg.plugins.plugin_utils.node_python import (
    explain_unsupported_interpreter, may_be_unsupported_interpreter, minimum_target_python, parse_version,
    version_command)

# ansible-core 2.19 against CPython 2.7 (ad-hoc ping, -vvv): the AnsiballZ wrapper does not parse
RESULT_219_PY27 = {
    'changed': False,
    'failed': True,
    'msg': 'Module result deserialization failed: No start of json char found',
    'exception': 'AnsibleError: ...',
    'module_stdout': '',
    'module_stderr': '  File "/root/.ansible/tmp/x/AnsiballZ_ping.py", line 40\n    zip_data: str,\n'
                     '            ^\nSyntaxError: invalid syntax\n',
    'rc': 1,
    '_ansible_parsed': False,
}
# ansible-core 2.17/2.18's wording of the same failure
RESULT_218_PY36 = {
    'failed': True,
    'msg': 'MODULE FAILURE\nSee stdout/stderr for the exact error',
    'module_stdout': '',
    'module_stderr': 'SyntaxError: future feature annotations is not defined\n',
    'rc': 1,
    '_ansible_parsed': False,
}
# an interpreter that parses the wrapper and gets to the module's own minimum check
RESULT_REFUSED = {
    'failed': True,
    'msg': 'ansible-core requires a minimum of Python version 3.8. Current version: 3.7.16 (default)',
}
# a module that ran and failed the ordinary way
RESULT_MODULE_FAILED = {'failed': True, 'msg': 'root /nope: no such directory', '_ansible_parsed': True}


def test_minimum_target_python_reads_the_installed_core():
    """2.16 still runs modules on 2.7 (its _PY_MIN is a flag): the plugins do nothing there."""
    minimum = minimum_target_python(basic)
    if core_version.startswith('2.16.'):
        assert minimum is None
    else:
        assert minimum is not None and minimum >= (3, 7)


@pytest.mark.parametrize('value, expected', [
    ((3, 8), (3, 8)),
    ((3, 9, 0), (3, 9)),
    (True, None),
    (None, None),
    ('3.8', None),
])
def test_minimum_target_python_shapes(value, expected):
    assert minimum_target_python(types.SimpleNamespace(_PY_MIN=value)) == expected


def test_minimum_target_python_without_the_attribute():
    assert minimum_target_python(types.SimpleNamespace()) is None


@pytest.mark.parametrize('result, expected', [
    (RESULT_219_PY27, True),
    (RESULT_218_PY36, True),
    (RESULT_REFUSED, True),
    (RESULT_MODULE_FAILED, False),
    ({'changed': False, 'kernel': {}}, False),
    (dict(RESULT_219_PY27, failed=False), False),
])
def test_signature(result, expected):
    assert may_be_unsupported_interpreter(result) is expected


def test_version_command_runs_in_a_shell(tmp_path):
    """The command quotes the interpreter: a path with a space and a quote still runs."""
    odd = tmp_path / "my 'python"
    os.symlink(sys.executable, str(odd))
    interpreter, command = version_command('#!%s -E' % odd.as_posix().replace(' ', '\\ ').replace("'", "\\'"))
    assert interpreter == '%s -E' % odd
    out = subprocess.run(['/bin/sh', '-c', command], stdout=subprocess.PIPE, check=True).stdout.decode()
    assert parse_version(out) == tuple(sys.version_info[:3])


@pytest.mark.parametrize('shebang', [None, '', '#!', '#!   '])
def test_version_command_without_interpreter(shebang):
    assert version_command(shebang) is None


@pytest.mark.parametrize('stdout, expected', [
    ('2.7.18\n', (2, 7, 18)),
    ('some login banner\n3.6.15\n', (3, 6, 15)),
    ('3.12.1', (3, 12, 1)),
    ('', None),
    (None, None),
    ('Python 2.7.18\n', None),
])
def test_parse_version(stdout, expected):
    assert parse_version(stdout) == expected


@pytest.mark.parametrize('node', [(2, 7, 18), (3, 6, 15), (3, 7, 16)])
def test_explain_names_python_core_and_fix(node):
    explained = explain_unsupported_interpreter(RESULT_219_PY27, 'nodeops.memcg.memcg_probe', node,
                                                '/usr/bin/python', '2.19.14', (3, 8))
    dotted = '.'.join(str(part) for part in node)
    msg = explained['msg']
    assert msg.startswith('nodeops.memcg.memcg_probe cannot run on this node: its Python is %s (/usr/bin/python)'
                          % dotted)
    assert 'ansible-core 2.19.14' in msg and 'Python >= 3.8' in msg
    assert 'use ansible-core 2.16' in msg and 'execution-environment.yml' in msg
    assert 'ansible_python_interpreter' in msg
    assert explained['node_python'] == {'path': '/usr/bin/python', 'version': dotted}
    # the evidence stays, the opaque error goes
    assert explained['module_stderr'] == RESULT_219_PY27['module_stderr'] and explained['rc'] == 1
    assert 'exception' not in explained and explained['failed'] is True
    assert RESULT_219_PY27['msg'].startswith('Module result deserialization failed')  # input untouched


@pytest.mark.parametrize('node, minimum', [
    ((3, 8, 0), (3, 8)),   # supported: the failure has another cause, keep it
    ((3, 11, 7), (3, 8)),
    (None, (3, 8)),        # version unknown
    ((2, 7, 18), None),    # a core that still runs 2.7
])
def test_explain_leaves_other_failures_alone(node, minimum):
    assert explain_unsupported_interpreter(RESULT_219_PY27, 'm', node, '/usr/bin/python', '2.19.14',
                                           minimum) is RESULT_219_PY27
