# -*- coding: utf-8 -*-
from __future__ import annotations

import os
import types

import pytest

from ansible.errors import AnsibleActionFail
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.template import Templar
from ansible.parsing.dataloader import DataLoader

from ansible_collections.nodeops.memcg.plugins.action.report_files import ActionModule


def run(args, check_mode=False):
    task = Task.load({'action': {'module': 'nodeops.memcg.report_files', 'args': args}})
    task.check_mode = check_mode
    connection = types.SimpleNamespace(_shell=types.SimpleNamespace(tmpdir='/nonexistent'))
    loader = DataLoader()
    action = ActionModule(task, connection, PlayContext(), loader, Templar(loader=loader), None)
    return action.run(task_vars={})


def test_writes_the_files_creating_the_directory(tmp_path):
    dest = tmp_path / 'report' / 'sub'
    result = run({'dest': str(dest), 'files': {'detect.json': '{}\n', 'detect.md': u'# r\u00e9port\n'}})
    assert result['changed'] is False
    assert result['paths'] == [str(dest / 'detect.json'), str(dest / 'detect.md')]
    assert (dest / 'detect.md').read_text(encoding='utf-8') == u'# r\u00e9port\n'
    assert sorted(os.listdir(dest)) == ['detect.json', 'detect.md']  # no temp file left
    assert os.stat(dest / 'detect.json').st_mode & 0o777 == 0o644
    assert os.stat(dest).st_mode & 0o777 == 0o755 & ~_umask()
    run({'dest': str(dest), 'files': {'detect.json': '[]\n'}, 'mode': '0600'})
    assert (dest / 'detect.json').read_text() == '[]\n'
    assert os.stat(dest / 'detect.json').st_mode & 0o777 == 0o600


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_check_mode_writes_nothing(tmp_path):
    result = run({'dest': str(tmp_path / 'report'), 'files': {'detect.json': '{}'}}, check_mode=True)
    assert result['paths'] == [str(tmp_path / 'report' / 'detect.json')]
    assert not (tmp_path / 'report').exists()


@pytest.mark.parametrize('args, message', [
    ({'dest': 'relative', 'files': {'a': ''}}, "dest must be an absolute path, got 'relative'"),
    ({'dest': '/tmp', 'files': {'../a': ''}}, "files: '../a' is not a plain file name"),
    ({'dest': '/tmp', 'files': {'a': ''}, 'mode': 'rw'}, "mode must be octal permissions such as 0644, got 'rw'"),
    ({'files': {'a': ''}}, 'dest'),
])
def test_bad_arguments_fail_naming_the_value(tmp_path, args, message):
    with pytest.raises(AnsibleActionFail, match=message.replace('.', r'\.')):
        run(args)


def test_an_unwritable_destination_names_the_directory(tmp_path):
    (tmp_path / 'file').write_text('x')
    with pytest.raises(AnsibleActionFail, match='cannot write the report files in %s' % (tmp_path / 'file' / 'r')):
        run({'dest': str(tmp_path / 'file' / 'r'), 'files': {'a': ''}})
