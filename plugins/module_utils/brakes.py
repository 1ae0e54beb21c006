# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout's brakes, as pure decisions: no I/O, inputs as arguments.

- The Prometheus brake (kured's alert brake): an instant query that must return no series. The
  URL is checked and split here, the answer parsed, and the series turned into the message that
  stops the rollout, naming the alerts. A brake that cannot be evaluated holds (fail-safe).
- The blocking-pod selector (kured's ``--blocking-pod-selector``): a label selector checked here
  against kubectl's grammar; the nodes of a batch that run a matching pod are kept out of it.
- The settings of all brakes, checked together before anything changes (``check_settings``).

Nothing here imports AnsibleModule; errors raise MemcgError naming the bad value. Credentials
never reach a message: URLs with user information are refused, and ``redact_url`` keeps only the
scheme, host, port and path of a URL.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re

try:
    from urllib.parse import urlencode, urlsplit  # novermin (Python 3; the fallback below is Python 2's)
except ImportError:  # Python 2
    from urllib import urlencode  # novermin
    from urlparse import urlsplit  # novermin

from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

#: the default query: every firing alert except the two kube-prometheus keeps firing on purpose
#: (Watchdog proves the alerting pipeline works, InfoInhibitor only inhibits info alerts)
DEFAULT_QUERY = 'ALERTS{alertstate="firing",alertname!~"Watchdog|InfoInhibitor"}'
#: the answer of one instant query is read up to this size
MAX_ANSWER_BYTES = 4 * 1024 * 1024
#: the series a stop message names (the rest are counted)
MAX_NAMED_SERIES = 10
#: one label value in a message is cut to this length
MAX_LABEL_CHARS = 80
#: a timeout beyond this is a mistake (the lock is renewed around the check, not during it)
MAX_TIMEOUT = 300

# ---------------------------------------------------------------- the Prometheus URL


def _text(value):
    return value if isinstance(value, (type(u''), type(''))) else None


def prometheus_url(url, option='kernel_upgrade_prometheus_url'):
    """The base URL split for a GET: {'scheme', 'host', 'port', 'path'}; MemcgError naming a bad one.

    http or https, a host, no user information (credentials in a URL end up in logs: use the bearer
    token), no query and no fragment. The path is the prefix Prometheus is served under (often '').
    """
    text = _text(url)
    if text is None or not text.strip():
        raise MemcgError('%s must be an http:// or https:// URL, got %r' % (option, url))
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise MemcgError('%s is not a valid URL (%s): %s' % (option, exc, redact_url(text)))
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise MemcgError('%s must be an http:// or https:// URL with a host, got %s' % (option, redact_url(text)))
    if '@' in parts.netloc:
        raise MemcgError('%s must not carry credentials (user:password@): they would be logged; give a bearer '
                         'token in kernel_upgrade_prometheus_bearer_token instead. Got %s'
                         % (option, redact_url(text)))
    if parts.query or parts.fragment or text.strip().endswith('?'):
        raise MemcgError('%s must be the base URL of Prometheus, without a query or fragment, got %s'
                         % (option, redact_url(text)))
    default_port = 443 if parts.scheme == 'https' else 80
    return {'scheme': parts.scheme, 'host': parts.hostname, 'port': port or default_port,
            'path': parts.path.rstrip('/')}


def redact_url(url):
    """scheme://host:port/path of a URL, for messages: never its user information, query or fragment."""
    text = _text(url) or ''
    try:
        parts = urlsplit(text.strip())
        host = parts.hostname or ''
        port = ':%d' % parts.port if parts.port else ''
    except ValueError:
        return '<an unparsable URL>'
    if not parts.scheme:
        return '<not a URL>'
    return '%s://%s%s%s' % (parts.scheme, host, port, parts.path)


def query_path(base, query):
    """The request path of the instant query (with the URL's prefix)."""
    return '%s/api/v1/query?%s' % (base['path'], urlencode({'query': query}))


# ---------------------------------------------------------------- the answer and the decision

def parse_answer(status, body):
    """The series of a Prometheus instant-query answer: [{'labels': {...}, 'value': str}].

    `status` is the HTTP status, `body` the answer's bytes or text. Raises MemcgError saying what
    went wrong: an error Prometheus reports (its errorType and error), an HTTP error without one,
    an answer that is not JSON, or a result that is not a list of series (a scalar or a string).
    """
    if isinstance(body, bytes):
        body = body.decode('utf-8', 'replace')
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        snippet = ' '.join((body or '').split())[:200]
        raise MemcgError('Prometheus answered HTTP %s without a JSON document%s'
                         % (status, ': %s' % snippet if snippet else ''))
    if doc.get('status') != 'success':
        raise MemcgError('Prometheus refused the query (HTTP %s, %s): %s'
                         % (status, doc.get('errorType') or 'error', doc.get('error') or 'no reason given'))
    if not 200 <= int(status) < 300:
        raise MemcgError('Prometheus answered HTTP %s' % status)
    data = doc.get('data') or {}
    kind = data.get('resultType')
    if kind not in ('vector', 'matrix'):
        raise MemcgError('the query returned a %s, not a list of series: write one that returns an instant '
                         'vector, such as %s' % (kind or 'nothing', DEFAULT_QUERY))
    series = []
    for item in data.get('result') or []:
        labels = dict((str(k), str(v)) for k, v in ((item or {}).get('metric') or {}).items())
        value = (item or {}).get('value') or ((item or {}).get('values') or [[None, None]])[-1]
        series.append({'labels': labels, 'value': str(value[1]) if value and len(value) > 1 else None})
    return series


def alertname_pattern(regex, option='kernel_upgrade_prometheus_alertname_regex'):
    """The compiled regex (anchored at both ends, as PromQL's =~), or None for ''/None."""
    if regex in (None, ''):
        return None
    if _text(regex) is None:
        raise MemcgError('%s must be a regular expression, got %r' % (option, regex))
    try:
        return re.compile(r'(?:%s)\Z' % regex)
    except re.error as exc:
        raise MemcgError('%s is not a valid regular expression (%s): %r' % (option, exc, regex))


def _cut(text):
    text = str(text)
    return text if len(text) <= MAX_LABEL_CHARS else text[:MAX_LABEL_CHARS - 3] + '...'


def describe_series(series):
    """One series for a message: 'NodeDown (instance=n9, severity=critical)', or '{job="x"}' without alertname."""
    labels = dict(series.get('labels') or {})
    alertname, metric = labels.pop('alertname', None), labels.pop('__name__', None)
    name = alertname or metric
    labels.pop('alertstate', None)
    inner = ', '.join('%s=%s' % (key, _cut(labels[key])) for key in sorted(labels))
    if name:
        return '%s (%s)' % (_cut(name), inner) if inner else _cut(name)
    return '{%s}' % inner


def brake_decision(series, query, alertname_regex=None, error=None):
    """Whether the Prometheus brake holds the rollout; pure.

    `series` is parse_answer's list (None when `error`), `error` why Prometheus could not be asked.
    With `alertname_regex` only series whose alertname matches it (the whole name) count.
    Returns {'engaged', 'message', 'alerts' (the counted series' names), 'counted', 'ignored'
    (names of the series the regex left out)}. An error engages the brake: what cannot be checked
    does not let the rollout go on.
    """
    if error:
        return {'engaged': True, 'counted': 0, 'alerts': [], 'ignored': [],
                'message': 'the Prometheus brake cannot be evaluated, so it holds (fail-safe): %s' % error}
    pattern = alertname_pattern(alertname_regex)
    counted, ignored = [], []
    for item in series or []:
        name = (item.get('labels') or {}).get('alertname')
        if pattern is None or (name is not None and pattern.match(name)):
            counted.append(item)
        else:
            ignored.append(name or describe_series(item))
    alerts = sorted(set((s.get('labels') or {}).get('alertname') or describe_series(s) for s in counted))
    result = {'engaged': bool(counted), 'counted': len(counted), 'alerts': alerts, 'ignored': sorted(set(ignored)),
              'message': None}
    if counted:
        named = sorted(describe_series(s) for s in counted)
        more = len(named) - MAX_NAMED_SERIES
        listed = '; '.join(named[:MAX_NAMED_SERIES]) + ('; and %d more' % more if more > 0 else '')
        result['message'] = ('the Prometheus brake is engaged: the query %s returned %d series%s: %s'
                             % (query, len(counted),
                                ' with an alertname matching %r' % alertname_regex if pattern else '', listed))
    return result


# ---------------------------------------------------------------- the blocking-pod selector

_NAME = r'[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?'
_PREFIX = r'[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*'
_KEY = r'(?:%s/)?%s' % (_PREFIX, _NAME)
_VALUE = r'(?:%s)?' % _NAME
_REQUIREMENTS = (
    re.compile(r'^\s*!?\s*(?P<key>%s)\s*$' % _KEY),
    re.compile(r'^\s*(?P<key>%s)\s*(?:==|=|!=)\s*%s\s*$' % (_KEY, _VALUE)),
    re.compile(r'^\s*(?P<key>%s)\s+(?:in|notin)\s*\(\s*%s(?:\s*,\s*%s)*\s*\)\s*$' % (_KEY, _VALUE, _VALUE)),
    re.compile(r'^\s*(?P<key>%s)\s*(?:<|>)\s*[0-9]+\s*$' % _KEY),
)


def _split_requirements(selector):
    parts, depth, current = [], 0, ''
    for char in selector:
        if char == '(':
            depth += 1
        elif char == ')':
            depth -= 1
        if char == ',' and depth == 0:
            parts.append(current)
            current = ''
        else:
            current += char
    parts.append(current)
    return parts, depth


def label_selector(selector, option='kernel_upgrade_blocking_pod_selector'):
    """The selector, checked against kubectl's label selector grammar; MemcgError names a bad one.

    Requirements separated by commas: key, !key, key=value, key==value, key!=value,
    key in (v1, v2), key notin (v1, v2), key>N, key<N; keys with an optional DNS prefix.
    """
    text = _text(selector)
    if text is None or not text.strip():
        raise MemcgError('%s must be a label selector such as app=backup, got %r' % (option, selector))
    parts, depth = _split_requirements(text)
    if depth != 0:
        raise MemcgError('%s has unbalanced parentheses: %r' % (option, selector))
    for part in parts:
        match = None
        for pattern in _REQUIREMENTS:
            match = pattern.match(part)
            if match:
                break
        if not match or len(match.group('key').split('/')[-1]) > 63 or len(match.group('key')) > 253 + 1 + 63:
            raise MemcgError('%s is not a label selector: %r does not parse (expected key, !key, key=value, '
                             'key!=value, key in (a,b) or key notin (a,b))' % (option, part.strip() or selector))
    return text.strip()


def blocking_pods(nodes, batch):
    """The nodes of `batch` that run a pod the blocking-pod selector matched: {node: ['ns/pod', ...]}; pure.

    `nodes` are k8s_node_info summaries whose `pods` are the pods the selector matched. Pods that
    finished (Succeeded, Failed) do not block, as in kured. Nodes without such pods are left out.
    """
    found = {}
    wanted = set(batch)
    for node in nodes or []:
        if node.get('name') not in wanted:
            continue
        pods = sorted('%s/%s' % (pod.get('namespace'), pod.get('name')) for pod in node.get('pods') or []
                      if pod.get('phase') not in ('Succeeded', 'Failed'))
        if pods:
            found[node['name']] = pods
    return found


def kept_out_message(node, pods, selector):
    """Why a node is kept out of its batch, naming the pods."""
    return ('kept out of this run: %d pod(s) matching kernel_upgrade_blocking_pod_selector %r run on %s: %s'
            % (len(pods), selector, node, ', '.join(pods)))


# ---------------------------------------------------------------- all settings, before anything changes

def _int_at_least(value, minimum):
    try:
        return int(value) >= minimum and not isinstance(value, bool) and str(int(value)) == str(value).strip()
    except (TypeError, ValueError):
        return False


def check_settings(settings):
    """Every problem of the brake settings, each naming the variable and its value ([] when all is well).

    `settings` holds the role's variables without the prefix: prometheus_url, prometheus_query,
    prometheus_alertname_regex, prometheus_timeout, prometheus_ca_path, blocking_pod_selector,
    soak_seconds, hooks_before_drain, hooks_after_ready (lists of absolute paths of files that exist
    on the controller: `exists` is the test, os.path.isfile by default).
    """
    problems = []

    def check(function, *args):
        try:
            function(*args)
        except MemcgError as exc:
            problems.append(str(exc))

    url = settings.get('prometheus_url') or ''
    if url:
        check(prometheus_url, url)
        query = settings.get('prometheus_query')
        if not _text(query) or not query.strip():
            problems.append('kernel_upgrade_prometheus_query must be a PromQL query, got %r' % (query,))
        check(alertname_pattern, settings.get('prometheus_alertname_regex'))
        timeout = settings.get('prometheus_timeout')
        if not _int_at_least(timeout, 1) or int(timeout) > MAX_TIMEOUT:
            problems.append('kernel_upgrade_prometheus_timeout must be a number of seconds from 1 to %d, got %r'
                            % (MAX_TIMEOUT, timeout))
        ca_path = settings.get('prometheus_ca_path') or ''
        if ca_path and not (settings.get('exists') or os.path.isfile)(ca_path):
            problems.append('kernel_upgrade_prometheus_ca_path: no such file on the controller: %r' % (ca_path,))
    if settings.get('blocking_pod_selector'):
        check(label_selector, settings['blocking_pod_selector'])
    soak = settings.get('soak_seconds')
    if not _int_at_least(soak, 0):
        problems.append('kernel_upgrade_soak_seconds must be a whole number of seconds, 0 or more, got %r' % (soak,))
    exists = settings.get('exists') or os.path.isfile
    for point in ('before_drain', 'after_ready'):
        option = 'kernel_upgrade_hooks_%s' % point
        hooks = settings.get('hooks_%s' % point)
        if hooks is None:
            continue
        if not isinstance(hooks, list):
            problems.append('%s must be a list of tasks files, got %r' % (option, hooks))
            continue
        for hook in hooks:
            if not _text(hook) or not os.path.isabs(hook):
                problems.append('%s: %r is not an absolute path of a tasks file on the controller' % (option, hook))
            elif not exists(hook):
                problems.append('%s: no such file on the controller: %s' % (option, hook))
    return problems
