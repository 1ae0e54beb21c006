# -*- coding: utf-8 -*-
"""docs/hostile-conditions.md names the test behind every row: each named file and test must exist."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(REPO, 'docs', 'hostile-conditions.md')
REFERENCE = re.compile(r'`((?:unit|integration)/[\w/]+\.py)?(?:::(\w+))?`')


def references():
    """(file, test or None) for every `file::test`, `file` and `::test` (same file as before) in the doc."""
    found, current = [], None
    with open(DOC) as handle:
        for line in handle:
            for path, test in REFERENCE.findall(line):
                if path:
                    current = path
                if current and (path or test):
                    found.append((current, test or None))
    return found


def test_every_test_the_table_names_exists():
    refs = references()
    assert len(refs) > 40
    missing = []
    for path, test in refs:
        full = os.path.join(REPO, 'tests', path)
        if not os.path.isfile(full):
            missing.append(path)
            continue
        if test:
            with open(full) as handle:
                if not re.search(r'^def %s\(' % test, handle.read(), re.MULTILINE):
                    missing.append('%s::%s' % (path, test))
    assert missing == []
