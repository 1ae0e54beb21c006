# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""report_files: write report files on the controller without running a module (docs in plugins/modules)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = dict(
    dest=dict(type='path', required=True),
    files=dict(type='dict', required=True),
    mode=dict(type='str', default='0644'),
)


def write_atomic(path, data, mode):
    """Replace path with data (bytes) through a temp file in the same directory and a rename."""
    fd, temp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
        os.chmod(temp, mode)
        os.rename(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        dest = args['dest']
        if not os.path.isabs(dest):
            raise AnsibleActionFail('dest must be an absolute path, got %r' % dest)
        try:
            mode = int(args['mode'], 8)
        except ValueError:
            raise AnsibleActionFail('mode must be octal permissions such as 0644, got %r' % args['mode'])
        for name in args['files']:
            if not name or os.path.basename(name) != name or name in ('.', '..'):
                raise AnsibleActionFail('files: %r is not a plain file name' % name)
        paths = sorted(os.path.join(dest, name) for name in args['files'])
        result.update(changed=False, paths=paths)
        if self._task.check_mode:
            return result
        try:
            if not os.path.isdir(dest):
                os.makedirs(dest, 0o755)
            for name, content in args['files'].items():
                write_atomic(os.path.join(dest, name), to_bytes(content, errors='surrogate_or_strict'), mode)
        except OSError as exc:
            raise AnsibleActionFail('cannot write the report files in %s: %s' % (dest, exc.strerror or exc))
        return result
