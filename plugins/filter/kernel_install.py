# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the kernel_upgrade node procedure: the install plan, the extras topic, the release to boot (plugin_utils)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.plugin_utils import kernel_install


def kernel_install_plan(facts, **options):
    """How the node these facts describe installs the fixed kernel (plugin_utils.kernel_install.install_plan)."""
    try:
        return kernel_install.install_plan(dict(facts), **options)
    except MemcgError as error:
        raise AnsibleFilterError(str(error))


def kernel_extras_topic_enabled(listing, topic):
    """Whether `amazon-linux-extras list` shows topic enabled (plugin_utils.kernel_install.extras_topic_enabled)."""
    try:
        return kernel_install.extras_topic_enabled(listing, topic)
    except MemcgError as error:
        raise AnsibleFilterError(str(error))


def kernel_target_release(after, before, plan, pinned='', policy_overrides=None, check_mode=False):
    """The installed release to boot once (plugin_utils.kernel_install.target_release)."""
    try:
        return kernel_install.target_release(plan, before, after, pinned, policy_overrides, check_mode)
    except MemcgError as error:
        raise AnsibleFilterError(str(error))


class FilterModule(object):
    def filters(self):
        return {
            'kernel_extras_topic_enabled': kernel_extras_topic_enabled,
            'kernel_install_plan': kernel_install_plan,
            'kernel_target_release': kernel_target_release,
        }
