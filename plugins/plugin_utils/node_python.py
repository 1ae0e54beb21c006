# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A clear failure when the controller's ansible-core cannot run modules on a node's Python; controller side.

ansible-core 2.17 and later build modules (AnsiballZ) that Python 2.7 and 3.6 cannot even parse: on a
CentOS 7 node every module fails with "Module result deserialization failed: No start of json char
found" (2.19) or "MODULE FAILURE" (2.17, 2.18), a SyntaxError in module_stderr. The collection's action
plugins (plugins/action/<module>.py) run their module exactly as ansible.builtin.normal does; only when
the result carries that signature (the module printed no JSON, or the interpreter refused to run it)
do they run one command on the node, the interpreter printing its version, and when that version is
older than the one this ansible-core runs modules on they replace the message with one that names the
node's Python, the controller's ansible-core and the fix. A supported pair costs nothing extra.

Pure helpers here (no controller imports, so unit tests import them freely); the action plugin base
that uses them is node_python_action.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import shlex

# Prints the interpreter's version on every Python from 2.6 on (one argument to print).
VERSION_SCRIPT = 'import sys; print(".".join(str(n) for n in sys.version_info[:3]))'
_VERSION = re.compile(r'^(\d+)\.(\d+)\.(\d+)\s*$')
# the JSON answer of ansible-core's own minimum-version check in the module (an interpreter new enough to parse it)
_MINIMUM_REFUSAL = 'ansible-core requires a minimum of Python'


def minimum_target_python(basic_module):
    """The oldest node Python (major, minor) the ansible-core of `basic_module` (its
    ansible.module_utils.basic, whose check the modules run) runs modules on, or None when it still runs
    them on Python 2.7 (2.16 and older: there `_PY_MIN` is a flag, not a version)."""
    minimum = getattr(basic_module, '_PY_MIN', None)
    if isinstance(minimum, tuple) and len(minimum) >= 2 and all(isinstance(part, int) for part in minimum):
        return tuple(minimum[:2])
    return None


def may_be_unsupported_interpreter(result):
    """True when a module result has the signature of an interpreter that could not run the module:
    failed without JSON from the module, or refused by ansible-core's minimum-version check."""
    if not result.get('failed'):
        return False
    return result.get('_ansible_parsed') is False or str(result.get('msg', '')).startswith(_MINIMUM_REFUSAL)


def version_command(shebang):
    """(interpreter, shell command printing its version) from a module's shebang, or None without one.
    '#!/usr/bin/python -u' -> ('/usr/bin/python -u', "/usr/bin/python -u -c 'import sys; ...'"), each word quoted."""
    argv = shlex.split((shebang or '').strip().lstrip('#!'))
    if not argv:
        return None
    return ' '.join(argv), ' '.join(shlex.quote(arg) for arg in argv + ['-c', VERSION_SCRIPT])


def parse_version(stdout):
    """(major, minor, micro) from the last line VERSION_SCRIPT printed, or None."""
    for line in reversed((stdout or '').splitlines()):
        match = _VERSION.match(line.strip())
        if match:
            return tuple(int(part) for part in match.groups())
    return None


def _dotted(version):
    return '.'.join(str(part) for part in version)


def unsupported_message(module, node_version, interpreter, core_version, minimum):
    """The message that replaces the opaque one: the node's Python, the controller's ansible-core, the fix."""
    return ('{module} cannot run on this node: its Python is {node} ({interpreter}), and the controller runs '
            'ansible-core {core}, which runs modules only on Python >= {minimum}. Fix: use ansible-core 2.16, '
            'the last release that manages Python 2.7 and 3.6 nodes such as CentOS 7 (./run-detect.sh installs '
            'it by default; in AWX the 2.16 execution environment, execution-environment.yml), or set '
            'ansible_python_interpreter for this host to a Python >= {minimum} on the node.'
            .format(module=module, node=_dotted(node_version), interpreter=interpreter, core=core_version,
                    minimum=_dotted(minimum)))


def explain_unsupported_interpreter(result, module, node_version, interpreter, core_version, minimum):
    """The result with the clear message when node_version is older than minimum; else result unchanged."""
    if node_version is None or minimum is None or tuple(node_version[:2]) >= tuple(minimum):
        return result
    explained = dict(result)
    explained['msg'] = unsupported_message(module, node_version, interpreter, core_version, minimum)
    # ansible-core 2.19 prints `exception` (the deserialization error) as the task's error: the message is the news
    explained.pop('exception', None)
    explained['node_python'] = {'path': interpreter, 'version': _dotted(node_version)}
    return explained
