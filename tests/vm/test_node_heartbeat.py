# -*- coding: utf-8 -*-
"""The guest as a node of the fake Kubernetes API: its Ready condition follows the guest."""

from __future__ import annotations

import time

from conftest import record
from guest import NodeHeartbeat

pytest_plugins = ['ansible_collections.nodeops.memcg.tests.k8s_fake.fixtures']


def _ready(node):
    return {c['type']: c['status'] for c in node['status']['conditions']}['Ready'] == 'True'


def _wait(predicate, timeout):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.5)


def test_ready_follows_the_guest_through_a_reboot(guest, fake_kube, vm_image, request):
    fake_kube.add_node(guest.name, kernel=vm_image.old_release, ready=False)
    with NodeHeartbeat(guest, fake_kube, guest.name, interval=2) as beat:
        _wait(lambda: _ready(fake_kube.node(guest.name)), 60)
        first_boot = fake_kube.node(guest.name)['status']['nodeInfo']['bootID']
        assert first_boot == guest.boot_id()
        start = time.monotonic()
        guest.run('systemd-run --on-active=1 /bin/systemctl reboot')
        _wait(lambda: not _ready(fake_kube.node(guest.name)), 120)
        record(request, 'API NotReady after reboot command', time.monotonic() - start)
        _wait(lambda: _ready(fake_kube.node(guest.name)), 600)
        record(request, 'API Ready again after reboot command', time.monotonic() - start)
    info = fake_kube.node(guest.name)['status']['nodeInfo']
    assert info['bootID'] != first_boot and info['kernelVersion'] == vm_image.old_release
    assert [ready for _t, ready, _k, _b in beat.reports] == [True, False, True]
