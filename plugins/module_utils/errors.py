# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one exception type; modules turn it into fail_json."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class MemcgError(Exception):
    """A problem the user can act on; the message names the bad value or path."""
