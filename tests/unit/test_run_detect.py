# -*- coding: utf-8 -*-
"""run-detect.sh refuses, before it installs anything, a controller Python or a core choice it cannot use.

The controller Python here is a CentOS 7 python3 (3.6): what a user on such a machine would run it with.
The install itself (ansible-core 2.16 from PyPI, then detect) is not run by the tests.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import os
import subprocess

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO_ROOT, 'run-detect.sh')
PYTHON36 = os.environ.get('NODEOPS_MEMCG_PYTHON36') or next(
    iter(sorted(glob.glob(os.path.expanduser('~/.pyenv/versions/3.6.*/bin/python3.6')))), None)


def run_detect(**env):
    full = dict(os.environ, DETECT_REPORT_DIR='/nonexistent-nodeops-memcg-report', **env)
    result = subprocess.run([SCRIPT, '--check'], env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=60, check=False)
    assert '==> creating' not in result.stdout, 'it went on to install: %s' % result.stdout
    return result


def test_unknown_core_choice_is_named():
    result = run_detect(NODEOPS_MEMCG_ANSIBLE_CORE='2.19')
    assert result.returncode == 2
    assert "NODEOPS_MEMCG_ANSIBLE_CORE must be 2.16 (default) or latest, got '2.19'" in result.stderr


def test_missing_controller_python_is_named():
    result = run_detect(NODEOPS_MEMCG_PYTHON='no-such-python3')
    assert result.returncode == 2
    assert "no controller Python 'no-such-python3'" in result.stderr


@pytest.mark.skipif(PYTHON36 is None, reason='no CPython 3.6 under ~/.pyenv/versions (NODEOPS_MEMCG_PYTHON36)')
@pytest.mark.parametrize('core, expected', [
    ('2.16', 'ansible-core 2.16 (the default, for Python 2.7/3.6 nodes such as CentOS 7) runs on controller '
             'Python 3.10-3.12, and %s is Python 3.6'),
    ('latest', 'the newest ansible-core needs controller Python >= 3.10 (2.19: >= 3.11), and %s is Python 3.6'),
])
def test_controller_python_too_old_for_the_core(core, expected):
    result = run_detect(NODEOPS_MEMCG_ANSIBLE_CORE=core, NODEOPS_MEMCG_PYTHON=PYTHON36)
    assert result.returncode == 2
    assert expected % PYTHON36 in result.stderr
