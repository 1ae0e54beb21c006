#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: prometheus_brake
short_description: Ask Prometheus whether a rollout must stop, with one instant query that must return no series
version_added: 1.1.0
description:
  - The alert brake of the rolling kernel upgrade, as kured has it - one HTTP GET of
    C(<url>/api/v1/query) with O(query); every series the answer holds engages the brake
    (RV(engaged)), and RV(message) names them (the alert name and its labels).
  - With O(alertname_regex) only the series whose C(alertname) label matches it (the whole name, as
    PromQL's C(=~)) count; the others are returned in RV(ignored).
  - A Prometheus that cannot be asked (unreachable, no answer within O(timeout), an HTTP error, a
    redirect, an answer that is not a successful instant query) engages the brake too - what cannot
    be checked does not let a rollout go on - with the reason in RV(error). The module fails only
    for bad options.
  - One request, no retries, no redirects followed (so the token never goes anywhere else), no
    proxy - the GET goes straight to O(url). Standard library only.
  - Run it where Prometheus is reachable, usually the controller (C(delegate_to) localhost,
    C(become) false).
author:
  - nodeops.memcg contributors (@nodeops)
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode asks the same query.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  platform:
    support: full
    platforms: posix
    description: Runs on the host the task runs on.
options:
  url:
    description:
      - Base URL of Prometheus, C(http://) or C(https://), with the path prefix it is served under if
        any (for example C(https://prometheus.example.com/prometheus)).
      - User information (C(user:password@)), a query or a fragment is refused before anything is
        sent - credentials in a URL end up in logs; give O(bearer_token) instead.
    type: str
    required: true
  query:
    description:
      - The PromQL instant query that must return no series for the rollout to go on.
      - The default is every firing alert except C(Watchdog) and C(InfoInhibitor), which
        kube-prometheus keeps firing on purpose.
    type: str
    default: 'ALERTS{alertstate="firing",alertname!~"Watchdog|InfoInhibitor"}'
  alertname_regex:
    description:
      - Only series whose C(alertname) label matches this regular expression (anchored at both ends)
        engage the brake. Empty - every series does.
    type: str
    default: ''
  timeout:
    description:
      - Seconds the whole request may take (connect, send, answer), from 1 to 300.
    type: int
    default: 10
  bearer_token:
    description:
      - "Sent in the header C(Authorization: Bearer <token>). Never logged, never in a message."
    type: str
  ca_path:
    description:
      - A CA bundle (PEM) to verify an C(https://) Prometheus with; the system's CAs when not set.
        Certificates are always verified.
    type: path
seealso:
  - name: Rolling kernel upgrade, brakes
    description: Where the kernel_upgrade role checks the brake, and what it does when it is engaged.
    link: https://github.com/nodeops/memcg/blob/main/docs/kernel-upgrade.md
  - name: kured's Prometheus alert brake
    description: The idea this follows (C(--prometheus-url), C(--alert-filter-regexp)).
    link: https://kured.dev/docs/configuration/
'''

EXAMPLES = r'''
- name: Stop the rollout while any alert fires in the cluster's Prometheus
  nodeops.memcg.prometheus_brake:
    url: http://prometheus.monitoring.svc:9090
  register: brake
  delegate_to: localhost
  become: false

- name: Fail when the brake is engaged
  ansible.builtin.assert:
    that: not brake.engaged
    fail_msg: "{{ brake.message }}"

- name: Only critical node alerts count, through an authenticating proxy
  nodeops.memcg.prometheus_brake:
    url: https://prometheus.example.com/prom
    query: ALERTS{alertstate="firing",severity="critical"}
    alertname_regex: Node.*|Kube(let|Node).*
    bearer_token: "{{ vault_prometheus_token }}"
    ca_path: /etc/pki/internal-ca.pem
    timeout: 5
  delegate_to: localhost
  become: false
'''

RETURN = r'''
engaged:
  description: True when the brake holds the rollout - a counted series, or an error.
  returned: always
  type: bool
  sample: true
message:
  description: Why the brake is engaged, naming the query and each counted series; null when it is not.
  returned: always
  type: str
  sample: >-
    the Prometheus brake is engaged: the query ALERTS{alertstate="firing"} returned 1 series:
    NodeDown (instance=n9, severity=critical)
error:
  description: Why Prometheus could not be asked (the brake is then engaged); null otherwise.
  returned: always
  type: str
  sample: "could not query Prometheus at http://127.0.0.1:9090: no answer within 10s"
alerts:
  description: The C(alertname) of each counted series (or the series' labels where it has none), sorted.
  returned: always
  type: list
  elements: str
  sample: [NodeDown]
counted:
  description: How many series engage the brake.
  returned: always
  type: int
  sample: 1
ignored:
  description: The alert names of the series O(alertname_regex) left out.
  returned: always
  type: list
  elements: str
  sample: [KubeCPUOvercommit]
series:
  description: Every series of the answer (at most 100), each with its labels and value.
  returned: always
  type: list
  elements: dict
  sample: [{labels: {alertname: NodeDown, alertstate: firing, instance: n9}, value: '1'}]
url:
  description: The URL asked, without credentials, query or fragment.
  returned: always
  type: str
  sample: http://prometheus.monitoring.svc:9090
query:
  description: The query asked.
  returned: always
  type: str
  sample: ALERTS{alertstate="firing",alertname!~"Watchdog|InfoInhibitor"}
'''

import socket
import ssl
import time
import traceback

try:
    import http.client as http_client  # novermin (Python 3; the fallback below is Python 2's)
except ImportError:  # Python 2
    import httplib as http_client  # novermin

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeops.memcg.plugins.module_utils import brakes
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError

#: series returned in RV(series); the message and the counts cover all of them
MAX_RETURNED_SERIES = 100


def fetch(base, path, timeout, token=None, ca_path=None, clock=time.time):
    """One GET of path on the base URL; (HTTP status, body bytes). MemcgError says what went wrong."""
    deadline = clock() + timeout
    if base['scheme'] == 'https':
        # novermin: ssl contexts are in Python 2.7.9 and 3.4 on (vermin does not know 2.7.9)
        context = ssl.create_default_context(cafile=ca_path) if ca_path else ssl.create_default_context()  # novermin
        conn = http_client.HTTPSConnection(base['host'], base['port'], timeout=timeout, context=context)  # novermin
    else:
        conn = http_client.HTTPConnection(base['host'], base['port'], timeout=timeout)
    headers = {'Accept': 'application/json', 'User-Agent': 'nodeops.memcg-kernel-upgrade'}
    if token:
        headers['Authorization'] = 'Bearer %s' % token
    try:
        conn.request('GET', path, headers=headers)
        response = conn.getresponse()
        if 300 <= response.status < 400:
            raise MemcgError('Prometheus redirected the query (HTTP %d to %s); set the URL it redirects to, the '
                             'token is never sent on' % (response.status,
                                                         brakes.redact_url(response.getheader('Location') or '')))
        chunks, size = [], 0
        while True:
            if clock() > deadline:
                raise MemcgError('the answer took longer than %ds' % timeout)
            chunk = response.read(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > brakes.MAX_ANSWER_BYTES:
                raise MemcgError('the answer is larger than %d bytes: narrow the query' % brakes.MAX_ANSWER_BYTES)
            chunks.append(chunk)
        return response.status, b''.join(chunks)
    except socket.timeout:
        raise MemcgError('no answer within %ds' % timeout)
    except ssl.SSLError as exc:
        raise MemcgError('TLS failed: %s' % exc)
    except (socket.error, http_client.HTTPException) as exc:
        raise MemcgError('%s: %s' % (type(exc).__name__, exc))
    finally:
        conn.close()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str', required=True),
            query=dict(type='str', default=brakes.DEFAULT_QUERY),
            alertname_regex=dict(type='str', default=''),
            timeout=dict(type='int', default=10),
            bearer_token=dict(type='str', no_log=True),
            ca_path=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        base = brakes.prometheus_url(params['url'], option='url')
        if not params['query'] or not params['query'].strip():
            raise MemcgError('query must be a PromQL query, got %r' % params['query'])
        brakes.alertname_pattern(params['alertname_regex'], option='alertname_regex')
        if not 1 <= params['timeout'] <= brakes.MAX_TIMEOUT:
            raise MemcgError('timeout must be between 1 and %d seconds, got %d' % (brakes.MAX_TIMEOUT, params['timeout']))
        if params['ca_path'] and base['scheme'] != 'https':
            raise MemcgError('ca_path is for an https:// URL, got %s' % brakes.redact_url(params['url']))
    except MemcgError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())
    else:
        module.exit_json(changed=False, **ask(base, params))


def ask(base, params):
    """The brake's result for the module's options (the URL already checked): Prometheus errors engage it."""
    where = brakes.redact_url(params['url'])
    series, error = [], None
    try:
        status, body = fetch(base, brakes.query_path(base, params['query']), params['timeout'],
                             params['bearer_token'], params['ca_path'])
        series = brakes.parse_answer(status, body)
    except MemcgError as exc:
        error = 'could not query Prometheus at %s: %s' % (where, exc)
    decision = brakes.brake_decision(series, params['query'], params['alertname_regex'], error)
    return dict(engaged=decision['engaged'], message=decision['message'], error=error, alerts=decision['alerts'],
                counted=decision['counted'], ignored=decision['ignored'], series=series[:MAX_RETURNED_SERIES],
                url=where, query=params['query'])


if __name__ == '__main__':
    main()
