# -*- coding: utf-8 -*-
"""python -m tests.k8s_fake --port N --state seed.json: serve until killed, print the URL on one line."""

from __future__ import annotations

import sys

from .server import main

if __name__ == '__main__':
    sys.exit(main())
