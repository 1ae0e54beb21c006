# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # How the modules of the action group nodeops.memcg.kubectl reach Kubernetes; the argument
    # spec is k8s/client.py KUBECTL_OPTIONS.
    DOCUMENTATION = r'''
options:
  kubectl:
    description:
      - The kubectl binary, a name looked up in C(PATH) or a path.
    type: str
    default: kubectl
  kubeconfig:
    description:
      - Path of the kubeconfig file passed to kubectl as C(--kubeconfig). When not set, kubectl's
        own default applies (C(KUBECONFIG) or C(~/.kube/config)).
    type: path
  context:
    description:
      - The kubeconfig context to use (C(--context)); kubectl's current context when not set.
    type: str
  request_timeout:
    description:
      - Seconds kubectl waits for one API request (C(--request-timeout)). V(0) means no limit.
    type: int
    default: 30
'''
