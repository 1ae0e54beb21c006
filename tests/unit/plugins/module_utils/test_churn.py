# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import gzip

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils import churn
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.plugins.module_utils.k8s.times import format_time
from ansible_collections.nodeops.memcg.tests.k8s_fake.pprof import canned_profile

NOW = 1800000000.0


def pod(name, node='n1', namespace='default', owner=None, restarts=0, age=10 ** 6):
    meta = {'name': name, 'namespace': namespace, 'creationTimestamp': format_time(NOW - age)}
    if owner:
        kind, name_ = owner.split('/')
        meta['ownerReferences'] = [{'kind': kind, 'name': name_, 'controller': True}]
    return {'metadata': meta, 'spec': {'nodeName': node},
            'status': {'containerStatuses': [{'restartCount': restarts}], 'initContainerStatuses': [{'restartCount': 1}]}}


def event(pod_name, node='n1', namespace='default', reason='Started', count=None, series=None, kind='Pod'):
    found = {'involvedObject': {'kind': kind, 'name': pod_name, 'namespace': namespace}, 'reason': reason,
             'source': {'host': node}}
    if count is not None:
        found['count'] = count
    if series is not None:
        found.update(series={'count': series}, source={}, reportingInstance=node)
    return found


@pytest.mark.parametrize('kind, name, expected', [
    ('Job', 'backup-28900000', ('CronJob', 'backup')),
    ('Job', 'migrate', ('Job', 'migrate')),
    ('ReplicaSet', 'web-7d9f8b6c5d', ('Deployment', 'web')),
    ('DaemonSet', 'node-exporter', ('DaemonSet', 'node-exporter')),
])
def test_owner_of(kind, name, expected):
    assert churn.owner_of('ns', kind, name) == expected


def test_rank_sources_counts_and_orders_by_container_starts():
    pods = [pod('backup-28900000-abcde', owner='Job/backup-28900000', age=60),
            pod('web-7d9f8b6c5d-x1y2z', owner='ReplicaSet/web-7d9f8b6c5d', restarts=9),
            pod('bare', age=30),
            pod('elsewhere-abcde', node='n2', owner='Job/elsewhere', age=1)]
    events = [event('backup-28900000-abcde', count=1), event('backup-28899000-fghij', series=4),
              event('backup-28899000-fghij', reason='Pulled', count=50), event('x', node='n2', count=50),
              event('loner-qwert'), event('n1', kind='Node')]
    found = churn.rank_sources(pods, events, 'n1', NOW, recent_s=3600)
    rows = [(s['owner_kind'], s['owner_name'], s['pods'], s['job_pods'], s['restarts'], s['recent_pods'],
             s['started_events'], s['score']) for s in found['sources']]
    assert rows == [('Deployment', 'web', 1, 0, 10, 0, 0, 10),
                    ('CronJob', 'backup', 1, 1, 1, 1, 5, 5),
                    ('Pod', 'bare', 1, 0, 1, 1, 0, 2),
                    ('Job or other', 'loner', 0, 0, 0, 0, 1, 1)]
    assert found['namespaces'] == [{'namespace': 'default', 'score': 18}]
    assert found['look_first'][0] == ('default Deployment/web: 10 container restarts; containers restart: '
                                      'every restart makes a new memcg; fix the crash loop.')
    assert 'every run makes new pod and container memcgs' in found['look_first'][1]
    assert len(found['look_first']) == 3


def test_rank_sources_on_an_empty_node():
    assert churn.rank_sources([], [], 'n1', NOW) == {'sources': [], 'namespaces': [], 'look_first': []}


def test_parse_pprof_of_the_canned_profile_gzipped_and_plain():
    blob = canned_profile()
    expected = {'samples': 2, 'memory_stat_share_percent': 80.0,
                'top': [{'function': 'syscall.Syscall', 'flat': 80.0, 'cum': 80.0},
                        {'function': 'runtime.gcBgMarkWorker', 'flat': 20.0, 'cum': 20.0}]}
    assert churn.parse_pprof(blob) == expected
    assert churn.parse_pprof(gzip.decompress(blob)) == expected


@pytest.mark.parametrize('blob, message', [
    (b'\x1f\x8bnot gzip at all', 'not valid gzip'),
    (b'\x0a\x05ab', 'truncated'),
    (b'\x0b', 'unknown protobuf wire type 3'),
])
def test_parse_pprof_refuses_garbage(blob, message):
    with pytest.raises(MemcgError) as error:
        churn.parse_pprof(blob)
    assert message in str(error.value)
