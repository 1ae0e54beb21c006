# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubectl as a library: the client (argument lists, runs) and the map from kubectl's errors to exceptions.

Nothing here imports AnsibleModule. ``Kubectl`` takes a ``run(argv, data=None) -> (rc, out, err)``
callable (the module passes a wrapper around ``module.run_command`` with LANG=C, tests pass fakes)
and never builds shell strings. The kubeconfig is passed to kubectl as ``--kubeconfig PATH``; it is
never opened here, and error messages are scrubbed of anything that looks like a credential.
The decisions on what the objects say live in nodes.py (nodes, pods, PodDisruptionBudgets, drain)
and lease.py (the cluster lock).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s.nodes import parse_drain_errors, summarize_refusals

# How the modules reach Kubernetes (doc fragment nodeops.memcg.kubectl; action group nodeops.memcg.kubectl).
KUBECTL_OPTIONS = dict(
    kubectl=dict(type='str', default='kubectl'),
    kubeconfig=dict(type='path'),
    context=dict(type='str'),
    request_timeout=dict(type='int', default=30),
)


# ---------------------------------------------------------------- errors

class KubectlError(MemcgError):
    """kubectl failed; ``code`` says how (NotFound, Conflict, Connection, ...), ``stderr`` is scrubbed."""

    code = 'Error'

    def __init__(self, message, stderr='', argv=None):
        super(KubectlError, self).__init__(message)
        self.stderr = stderr
        self.argv = list(argv or [])


class NotFoundError(KubectlError):
    code = 'NotFound'


class ConflictError(KubectlError):
    code = 'Conflict'


class AlreadyExistsError(KubectlError):
    code = 'AlreadyExists'


class ForbiddenError(KubectlError):
    code = 'Forbidden'


class UnauthorizedError(KubectlError):
    code = 'Unauthorized'


class InvalidError(KubectlError):
    code = 'Invalid'


class KubeConnectionError(KubectlError):
    code = 'Connection'


class KubeconfigError(KubectlError):
    code = 'Kubeconfig'


class WaitTimeoutError(KubectlError):
    code = 'Timeout'


class DrainError(KubectlError):
    """kubectl drain failed; ``refusals`` is parse_drain_errors(stderr)."""

    code = 'DrainFailed'

    def __init__(self, message, stderr='', argv=None, refusals=None, stdout=''):
        super(DrainError, self).__init__(message, stderr=stderr, argv=argv)
        self.refusals = refusals or []
        self.stdout = stdout


_SERVER_ERROR = re.compile(r'Error from server \((\w+)\)')
_SERVER_CLASSES = {
    'NotFound': NotFoundError,
    'Conflict': ConflictError,
    'AlreadyExists': AlreadyExistsError,
    'Forbidden': ForbiddenError,
    'Unauthorized': UnauthorizedError,
    'Invalid': InvalidError,
    'BadRequest': InvalidError,
}
_UNAUTHORIZED = re.compile(r'You must be logged in to the server|\(Unauthorized\)')
_CONNECTION = re.compile(
    r'The connection to the server .* was refused|Unable to connect to the server|'
    r'dial tcp|connection refused|no such host|i/o timeout|context deadline exceeded|'
    r'Client\.Timeout exceeded|TLS handshake timeout|couldn\'t get current server API group list|'
    r'net/http: request canceled|the server is currently unable to handle the request|'
    r'http: server gave HTTP response to HTTPS client|x509: ')
_KUBECONFIG = re.compile(
    r'context "[^"]*" does not exist|context was not found for specified context|Error in configuration|'
    r'error loading config file|no configuration has been provided|'
    r'invalid configuration|stat [^:]*: no such file or directory|'
    r'cluster has no server defined|unable to read client-(cert|key)')
_WAIT_TIMEOUT = re.compile(r'timed out waiting for the condition')

_REDACTIONS = (
    (re.compile(r'(?i)(authorization:\s*(bearer|basic)\s+)\S+'), r'\1<redacted>'),
    (re.compile(r'(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+'), r'\1<redacted>'),
    (re.compile(r'(?i)((?:token|password|client-key-data|client-certificate-data|'
                r'certificate-authority-data|id-token|refresh-token)"?\s*[:=]\s*"?)[^\s",}]+'),
     r'\1<redacted>'),
    (re.compile(r'(--token(?:=|\s+))\S+'), r'\1<redacted>'),
    # long base64 runs (embedded certificates or keys) are never useful in an error message
    (re.compile(r'[A-Za-z0-9+/]{120,}={0,2}'), '<redacted>'),
)


def redact(text, limit=2000):
    """Scrub credentials from kubectl output and keep its last `limit` characters."""
    text = (text or '').strip()
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    if len(text) > limit:
        text = '...' + text[-limit:]
    return text


def map_error(stderr, what, argv=None):
    """A KubectlError subclass instance for kubectl's stderr; the message names `what` (e.g. 'node n1')."""
    clean = redact(stderr)
    first = clean.splitlines()[0] if clean else 'no error output'
    found = _SERVER_ERROR.search(clean)
    if found:
        reason = found.group(1)
        cls = _SERVER_CLASSES.get(reason, KubectlError)
        if reason == 'NotFound' and 'could not find the requested resource' in clean:
            cls = KubectlError
            message = 'the API server does not serve the resource type of %s' % what
        elif reason == 'NotFound':
            message = '%s not found' % what
        elif reason == 'Conflict':
            message = '%s was changed by someone else meanwhile (conflict)' % what
        elif reason == 'AlreadyExists':
            message = '%s already exists' % what
        elif reason == 'Forbidden':
            message = 'not allowed to access %s (RBAC, see docs/kubernetes.md)' % what
        elif reason == 'Unauthorized':
            message = 'the API server rejected the credentials while accessing %s' % what
        else:
            message = 'the API server refused the request on %s (%s)' % (what, reason)
        return cls('%s: %s' % (message, first), stderr=clean, argv=argv)
    if _UNAUTHORIZED.search(clean):
        return UnauthorizedError('the API server rejected the credentials while accessing %s: %s' % (what, first),
                                 stderr=clean, argv=argv)
    if _KUBECONFIG.search(clean):
        return KubeconfigError('kubectl could not use its kubeconfig or context while accessing %s: %s'
                               % (what, first), stderr=clean, argv=argv)
    if _CONNECTION.search(clean):
        return KubeConnectionError('cannot reach the Kubernetes API server while accessing %s: %s' % (what, first),
                                   stderr=clean, argv=argv)
    if _WAIT_TIMEOUT.search(clean):
        return WaitTimeoutError('timed out waiting for %s: %s' % (what, first), stderr=clean, argv=argv)
    return KubectlError('kubectl failed on %s: %s' % (what, first), stderr=clean, argv=argv)


# API errors a bounded wait rides out until its own deadline: the server (or the network, or the
# load balancer in front of it) is briefly unavailable, not refusing the request for good.
_TRANSIENT = re.compile(
    r'Error from server \((InternalError|ServiceUnavailable|TooManyRequests|Timeout|ServerTimeout)\)|'
    r'\bEOF\b|connection reset by peer|broken pipe|http2: |TLS handshake timeout|'
    r'the server is currently unable to handle the request|rate limit|Too Many Requests|'
    r'the server was unable to return a response in the time allotted')


def is_transient(error):
    """True for a KubectlError a wait should retry: an unreachable API, a 5xx or 429, a dropped connection."""
    if isinstance(error, KubeConnectionError):
        return True
    if error.__class__ is not KubectlError:  # NotFound, Forbidden, Invalid, Kubeconfig, ...: retrying does not help
        return False
    return bool(_TRANSIENT.search(error.stderr or str(error)))


# ---------------------------------------------------------------- the kubectl wrapper

def _seconds(value):
    return '%ds' % int(value)


def _positional(name):
    """'--' then the name: kubectl never reads a name as a flag, whatever it holds."""
    return [] if name is None else ['--', name]


def _describe(kind, name=None, namespace=None):
    kind = kind.split('.')[0]
    if name is not None and kind.endswith('s'):
        kind = kind[:-1]
    if name is None:
        return '%s%s' % (kind, ' in namespace %s' % namespace if namespace else '')
    if namespace:
        return '%s %s/%s' % (kind, namespace, name)
    return '%s %s' % (kind, name)


class Kubectl(object):
    """Build kubectl argument lists, run them through `run`, map failures to KubectlError subclasses."""

    def __init__(self, run, binary='kubectl', kubeconfig=None, context=None, request_timeout=None):
        self._run = run
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.context = context
        self.request_timeout = request_timeout

    def capped(self, seconds):
        """This Kubectl with each request's timeout capped at `seconds` (at least 1): the time a wait has left."""
        cap = max(1, int(seconds + 0.999))
        timeout = min(self.request_timeout, cap) if self.request_timeout else cap
        return Kubectl(self._run, binary=self.binary, kubeconfig=self.kubeconfig, context=self.context,
                       request_timeout=timeout)

    # -- argv

    def base_argv(self, request_timeout=True):
        argv = [self.binary]
        if self.kubeconfig:
            argv += ['--kubeconfig', self.kubeconfig]
        if self.context:
            argv += ['--context', self.context]
        if request_timeout and self.request_timeout:
            argv += ['--request-timeout', _seconds(self.request_timeout)]
        return argv

    def get_argv(self, kind, name=None, namespace=None, field_selector=None, label_selector=None,
                 all_namespaces=False):
        argv = self.base_argv() + ['get', kind]
        if all_namespaces:
            argv.append('--all-namespaces')
        elif namespace:
            argv += ['--namespace', namespace]
        if field_selector:
            argv += ['--field-selector', field_selector]
        if label_selector:
            argv += ['--selector', label_selector]
        return argv + ['--output', 'json'] + _positional(name)

    def patch_argv(self, kind, name, patch, namespace=None, patch_type='merge', dry_run=False, subresource=None):
        argv = self.base_argv() + ['patch', kind]
        if namespace:
            argv += ['--namespace', namespace]
        if subresource:
            argv += ['--subresource', subresource]
        argv += ['--type', patch_type, '--patch', json.dumps(patch, sort_keys=True)]
        if dry_run:
            argv.append('--dry-run=server')
        return argv + ['--output', 'json'] + _positional(name)

    def apply_argv(self, verb, dry_run=False):
        argv = self.base_argv() + [verb, '--filename', '-']
        if dry_run:
            argv.append('--dry-run=server')
        return argv + ['--output', 'json']

    def delete_argv(self, kind, name, namespace=None, ignore_not_found=False):
        argv = self.base_argv() + ['delete', kind]
        if namespace:
            argv += ['--namespace', namespace]
        if ignore_not_found:
            argv.append('--ignore-not-found')
        return argv + ['--wait=false'] + _positional(name)

    def drain_argv(self, node, timeout=600, grace_period=-1, delete_emptydir_data=True,
                   ignore_daemonsets=True, disable_eviction=False, force=False, dry_run=False):
        argv = self.base_argv() + ['drain', '--timeout', _seconds(timeout),
                                   '--grace-period', str(int(grace_period))]
        if ignore_daemonsets:
            argv.append('--ignore-daemonsets')
        if delete_emptydir_data:
            argv.append('--delete-emptydir-data')
        if force:
            argv.append('--force')
        if disable_eviction:
            argv.append('--disable-eviction')
        if dry_run:
            argv.append('--dry-run=server')
        return argv + _positional(node)

    def wait_argv(self, kind, name, condition, timeout, namespace=None):
        # no --request-timeout: kubectl wait watches, and --timeout already bounds it
        argv = self.base_argv(request_timeout=False)
        argv += ['wait', '--for', condition, '--timeout', _seconds(timeout)]
        if namespace:
            argv += ['--namespace', namespace]
        return argv + _positional('%s/%s' % (kind, name))

    # -- running

    def call(self, argv, what, data=None):
        """Run argv; return stdout; raise a KubectlError subclass naming `what` on failure."""
        if data is None:
            rc, out, err = self._run(argv)
        else:
            rc, out, err = self._run(argv, data=data)
        if rc != 0:
            raise map_error(err or out, what, argv=argv)
        return out

    def _json(self, out, what):
        try:
            return json.loads(out)
        except ValueError:
            raise KubectlError('kubectl returned no JSON for %s: %s' % (what, redact(out, 200)))

    def get_json(self, kind, name=None, namespace=None, field_selector=None, label_selector=None,
                 all_namespaces=False):
        """The object (or the List) as decoded JSON; NotFoundError when a named object does not exist."""
        what = _describe(kind, name, namespace)
        argv = self.get_argv(kind, name, namespace, field_selector, label_selector, all_namespaces)
        return self._json(self.call(argv, what), what)

    def get_optional(self, kind, name, namespace=None):
        """The named object, or None when it does not exist."""
        try:
            return self.get_json(kind, name, namespace=namespace)
        except NotFoundError:
            return None

    def get_items(self, kind, namespace=None, field_selector=None, label_selector=None, all_namespaces=False):
        return self.get_json(kind, namespace=namespace, field_selector=field_selector,
                             label_selector=label_selector, all_namespaces=all_namespaces).get('items') or []

    def get_raw(self, path):
        argv = self.base_argv() + ['get', '--raw', path]
        return self._json(self.call(argv, 'API path %s' % path), 'API path %s' % path)

    def patch(self, kind, name, patch, namespace=None, patch_type='merge', dry_run=False, subresource=None):
        what = _describe(kind, name, namespace)
        argv = self.patch_argv(kind, name, patch, namespace, patch_type, dry_run, subresource)
        return self._json(self.call(argv, what), what)

    def create(self, obj, dry_run=False):
        return self._apply('create', obj, dry_run)

    def replace(self, obj, dry_run=False):
        """Replace the object; its metadata.resourceVersion, when set, is the server-side precondition."""
        return self._apply('replace', obj, dry_run)

    def _apply(self, verb, obj, dry_run):
        meta = obj.get('metadata') or {}
        what = _describe(obj.get('kind', 'object').lower(), meta.get('name'), meta.get('namespace'))
        out = self.call(self.apply_argv(verb, dry_run), what, data=json.dumps(obj, sort_keys=True))
        return self._json(out, what)

    def delete(self, kind, name, namespace=None, ignore_not_found=False):
        self.call(self.delete_argv(kind, name, namespace, ignore_not_found), _describe(kind, name, namespace))

    def wait(self, kind, name, condition, timeout, namespace=None):
        """kubectl wait --for CONDITION; WaitTimeoutError names the object, the condition and the timeout."""
        what = _describe(kind, name, namespace)
        argv = self.wait_argv(kind, name, condition, timeout, namespace)
        rc, out, err = self._run(argv)
        if rc != 0:
            mapped = map_error(err or out, what, argv=argv)
            if isinstance(mapped, WaitTimeoutError):
                raise WaitTimeoutError('%s did not reach %s within %ds' % (what, condition, int(timeout)),
                                       stderr=mapped.stderr, argv=argv)
            raise mapped
        return out

    def drain(self, node, timeout=600, grace_period=-1, delete_emptydir_data=True, ignore_daemonsets=True,
              disable_eviction=False, force=False, dry_run=False):
        """kubectl drain; returns stdout. DrainError (with refusals) when pods could not be evicted."""
        argv = self.drain_argv(node, timeout, grace_period, delete_emptydir_data, ignore_daemonsets,
                               disable_eviction, force, dry_run)
        rc, out, err = self._run(argv)
        if rc == 0:
            return out
        refusals = parse_drain_errors(err)
        if not refusals:
            mapped = map_error(err or out, 'node %s' % node, argv=argv)
            if mapped.code != KubectlError.code:  # connection, credentials, RBAC, NotFound: not a refusal
                raise mapped
        why = summarize_refusals(refusals) or redact(err or out, 500)
        raise DrainError('kubectl drain of node %s failed: %s' % (node, why),
                         stderr=redact(err), argv=argv, refusals=refusals, stdout=out)


def run_with(module):
    """A `run` for Kubectl around module.run_command: argument lists, LANG=C, stdin from `data`."""
    def run(argv, data=None):
        return module.run_command(argv, data=data, check_rc=False,
                                  environ_update={'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'})
    return run


def check_kubectl_options(params):
    """The common options (KUBECTL_OPTIONS) checked before kubectl runs; MemcgError names the option."""
    if params['request_timeout'] < 0:
        raise MemcgError('request_timeout must not be negative, got %d' % params['request_timeout'])
    for key in ('kubectl', 'kubeconfig', 'context'):
        if params.get(key) == '':
            raise MemcgError('%s must not be empty; leave it out for the default' % key)


def kubectl_for(module):
    """Kubectl built from the module's common options (kubectl, kubeconfig, context, request_timeout)."""
    params = module.params
    binary = params['kubectl']
    if '/' in binary:
        if not os.access(binary, os.X_OK):
            raise MemcgError('the kubectl binary %r does not exist or is not executable' % binary)
    else:
        found = module.get_bin_path(binary)
        if not found:
            raise MemcgError('the kubectl binary %r was not found in PATH; set the kubectl option to its path' % binary)
        binary = found
    return Kubectl(run_with(module), binary=binary, kubeconfig=params.get('kubeconfig'),
                   context=params.get('context'), request_timeout=params.get('request_timeout'))
