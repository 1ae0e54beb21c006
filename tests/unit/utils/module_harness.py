# -*- coding: utf-8 -*-
"""Run a module's main() in-process and capture what it hands to exit_json/fail_json."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import json

from ansible.module_utils import basic

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    from unittest import mock

    @contextlib.contextmanager
    def patch_module_args(args=None):
        payload = json.dumps({'ANSIBLE_MODULE_ARGS': args or {}}).encode()
        with mock.patch.object(basic, '_ANSIBLE_ARGS', payload):
            yield


class ModuleExit(Exception):
    """Raised in place of sys.exit; carries the module result."""

    def __init__(self, result, failed):
        super(ModuleExit, self).__init__(result.get('msg', ''))
        self.result = result
        self.failed = failed


def _exit_json(self, **kwargs):
    raise ModuleExit(kwargs, failed=False)


def _fail_json(self, msg, **kwargs):
    kwargs['msg'] = msg
    kwargs['failed'] = True
    raise ModuleExit(kwargs, failed=True)


def run_module(main, args, check_mode=False):
    """Run main() with args; return (result, failed).

    What the module passes to AnsibleModule.warn() ends up in result['warnings'], as on a real
    run. (Left to ansible, it goes to a process-wide list, or to the controller's display once a
    test in the same process has imported controller code.)"""
    args = dict(args)
    if check_mode:
        args['_ansible_check_mode'] = True
    warned = []
    from unittest import mock
    with patch_module_args(args), \
            mock.patch.object(basic.AnsibleModule, 'exit_json', _exit_json), \
            mock.patch.object(basic.AnsibleModule, 'fail_json', _fail_json), \
            mock.patch.object(basic.AnsibleModule, 'warn', lambda self, warning: warned.append(warning)):
        try:
            main()
        except ModuleExit as done:
            if warned:
                done.result['warnings'] = done.result.get('warnings', []) + warned
            return done.result, done.failed
    raise AssertionError('module returned without exit_json or fail_json')
