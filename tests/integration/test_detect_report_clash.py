# -*- coding: utf-8 -*-
"""Two detect runs writing the same report directory: the later writer does not overwrite silently.

The detect playbook probes a fixture node whose root memory.stat is a FIFO. The test waits until
the probe has opened it (a non-blocking open for writing succeeds only once a reader is there),
writes another run's detect.json into the report directory, then closes the FIFO so that the
probe reads an empty file and the run goes on. The run must leave the other report as it is,
write its own beside it and say so.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time

import pytest

from conftest import REPO_ROOT, localhost_inventory
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'detect.yml')
OTHER_RUN = {'schema_version': 1, 'generated_at': '2099-01-01T00:00:00Z', 'summary': {}, 'nodes': [],
             'written_by': 'the other run'}


def open_writer(fifo, deadline):
    """A write end of fifo once a reader has it open; None when the deadline passes first."""
    while time.monotonic() < deadline:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
        time.sleep(0.05)
    return None


@pytest.mark.usefixtures('require_root_v1')
def test_a_report_written_meanwhile_by_another_run_is_kept(ansible_env, tmp_path):
    root = tree.build_node(tmp_path / 'node', memory_num_cgroups=100, kubelet=None)
    fifo = os.path.join(root, 'sys/fs/cgroup/memory/memory.stat')
    os.unlink(fifo)
    os.mkfifo(fifo)
    report_dir = tmp_path / 'report'
    command = ['ansible-playbook', '-i', localhost_inventory(str(tmp_path)), PLAYBOOK, '-e', json.dumps({
        'detect_root': root, 'detect_report_dir': str(report_dir), 'detect_cpu_interval': 0,
        'detect_list_installed_kernels': False, 'detect_print_report': False})]
    run = subprocess.Popen(command, env=ansible_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        writer = open_writer(fifo, time.monotonic() + 240)
        assert writer is not None, 'the probe never opened memory.stat'
        report_dir.mkdir(exist_ok=True)  # the other run made it
        (report_dir / 'detect.json').write_text(json.dumps(OTHER_RUN))
        os.close(writer)  # end of file for the probe: it goes on
        output = run.communicate(timeout=300)[0]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, output
    assert json.loads((report_dir / 'detect.json').read_text()) == OTHER_RUN
    ours = sorted(name for name in os.listdir(report_dir) if name.startswith('detect-'))
    assert len(ours) == 2 and ours[0].endswith('.json') and ours[1] == ours[0][:-5] + '.md', ours
    report = json.loads((report_dir / ours[0]).read_text())
    assert ours[0] == 'detect-%s.json' % report['generated_at'].replace('-', '').replace(':', '')
    assert report['nodes'][0]['host'] == 'localhost' and report['nodes'][0]['status'] == 'probed'
    assert 'WARNING: another detect run wrote %s/detect.json while this one was probing' % report_dir \
        in ' '.join(output.split()), output
    assert 'is %s/%s (and .md)' % (report_dir, ours[0]) in ' '.join(output.split())
