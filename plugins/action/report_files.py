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
    unchanged_since=dict(type='float'),
    clash_suffix=dict(type='str'),
)


def with_suffix(name, suffix):
    """detect.json + -20261202T030000Z -> detect-20261202T030000Z.json"""
    stem, ext = os.path.splitext(name)
    return stem + suffix + ext


def written_since(paths, since):
    """The paths modified after the Unix time since (another writer)."""
    return [path for path in paths if os.path.exists(path) and os.stat(path).st_mtime > since]


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
        files = args['files']
        clash = []
        if args['unchanged_since'] is not None:
            if not args['clash_suffix'] or os.path.basename(args['clash_suffix']) != args['clash_suffix']:
                raise AnsibleActionFail('clash_suffix must be a non-empty file name part with unchanged_since, got %r'
                                        % args['clash_suffix'])
            clash = written_since(sorted(os.path.join(dest, name) for name in files), args['unchanged_since'])
            if clash:
                files = dict((with_suffix(name, args['clash_suffix']), content) for name, content in files.items())
        paths = sorted(os.path.join(dest, name) for name in files)
        result.update(changed=False, paths=paths, clash=clash)
        if self._task.check_mode:
            return result
        try:
            if not os.path.isdir(dest):
                os.makedirs(dest, 0o755)
            for name, content in files.items():
                write_atomic(os.path.join(dest, name), to_bytes(content, errors='surrogate_or_strict'), mode)
        except OSError as exc:
            raise AnsibleActionFail('cannot write the report files in %s: %s' % (dest, exc.strerror or exc))
        return result
