# -*- coding: utf-8 -*-
"""Make this checkout importable as ansible_collections.nodeops.memcg for plain pytest.

The clone may live anywhere; a temporary ansible_collections/nodeops/memcg symlink
points back at it, so tests import the collection by its real name.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import atexit
import os
import shutil
import sys
import tempfile

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _collection_parent():
    here = REPO_ROOT.split(os.sep)
    if here[-3:-1] == ['ansible_collections', 'nodeops'] and here[-1] == 'memcg':
        return os.sep.join(here[:-3]) or os.sep
    parent = tempfile.mkdtemp(prefix='nodeops-memcg-pytest-')
    atexit.register(shutil.rmtree, parent, True)
    os.makedirs(os.path.join(parent, 'ansible_collections', 'nodeops'))
    os.symlink(REPO_ROOT, os.path.join(parent, 'ansible_collections', 'nodeops', 'memcg'))
    return parent


COLLECTION_PARENT = None
if 'ansible_collections.nodeops.memcg' not in sys.modules:
    COLLECTION_PARENT = _collection_parent()
    sys.path.insert(0, COLLECTION_PARENT)


@pytest.fixture(scope='session')
def collections_path():
    """ANSIBLE_COLLECTIONS_PATH for the ansible-playbook and ansible-runner the tests start: run-all.sh's
    copy of the collection (NODEOPS_MEMCG_COLLECTIONS_PATH), else this checkout by its real name."""
    return os.environ.get('NODEOPS_MEMCG_COLLECTIONS_PATH') or COLLECTION_PARENT or _collection_parent()
