# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # The root option shared by every module that reads /proc and /sys.
    DOCUMENTATION = r'''
options:
  root:
    description:
      - Directory under which C(/proc) and C(/sys) are read, for example the host's root
        bind-mounted into a container (C(/host)) or a fixture tree in tests.
      - Mount points found in C(<root>/proc/self/mountinfo) are host paths and are joined under
        this directory. Paths in the results are host paths, not prefixed with O(root).
    type: path
    default: /
'''
