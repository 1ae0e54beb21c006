# -*- coding: utf-8 -*-
"""The diagnose playbook on this machine's real kernel: stand-in kubelets, real perf, real memcg churn.

One playbook run (in check mode: the diagnosis is read-only and must run the same) over four local
hosts, asserted many ways:
  busy-perf  a stand-in kubelet reading memory.stat in a loop, sampled with perf   -> confirmed
  busy-proc  the same stand-in, sampled through /proc only (the fallback)          -> confirmed
  idle       a sleeping stand-in; perf sees no samples and falls back to /proc     -> not this
  slow       a fixture node whose memory.stat never answers (a FIFO)               -> bounded in time
while a child makes dying memcgs at a known rate, which every host must measure within 20%.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT, run_playbook
import memcg_lab

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'diagnose.yml')
STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'standin_kubelet.py')
CHURN_PER_SECOND = 10
DURATION = 3
SLOW_TIMEOUT = 8
# The machine is shared by several test runs on 2 cores (load averages of 20-40 seen): a busy loop
# may get little CPU, so "busy" is anything over 0.5% of a CPU here (the idle stand-in uses none).
THRESHOLDS = {'busy_cpu_percent': 0.5}


def slow_node(root):
    """A fixture node (an EL7 kernel, 60,000 memcgs) whose root memory.stat is a FIFO: reads never return."""
    files = {
        'proc/sys/kernel/osrelease': '3.10.0-1160.el7.x86_64\n',
        'proc/self/mountinfo': '30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n',
        'proc/cgroups': '#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t4\t60000\t1\n',
    }
    for path, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
        with open(os.path.join(root, path), 'w') as handle:
            handle.write(text)
    memory = os.path.join(root, 'sys/fs/cgroup/memory')
    os.makedirs(os.path.join(memory, 'kubepods'))
    os.mkfifo(os.path.join(memory, 'memory.stat'))


@pytest.fixture
def standins():
    mount = memcg_lab.memory_hierarchy()
    procs = {
        'busy': subprocess.Popen([sys.executable, STANDIN, 'read', os.path.join(mount, 'memory.stat')]),
        'idle': subprocess.Popen([sys.executable, STANDIN, 'idle']),
    }
    time.sleep(0.3)  # let them rename themselves
    yield dict((name, proc.pid) for name, proc in procs.items())
    for proc in procs.values():
        proc.kill()
        proc.wait()


@pytest.mark.usefixtures('require_root_v1')
def test_diagnose_fleet_in_check_mode(ansible_env, tmp_path, standins):
    slow_root = str(tmp_path / 'slow-root')
    slow_node(slow_root)
    remote_tmp = tmp_path / 'remote-tmp'
    remote_tmp.mkdir()
    report_dir = tmp_path / 'report'
    inventory = tmp_path / 'inventory.ini'
    inventory.write_text(
        '[nodes]\n'
        'busy-perf diagnose_kubelet_pid=%(busy)d diagnose_method=perf\n'
        'busy-proc diagnose_kubelet_pid=%(busy)d diagnose_method=proc\n'
        'idle diagnose_kubelet_pid=%(idle)d diagnose_method=auto\n'
        'slow diagnose_root=%(slow)s diagnose_kubelet_name=no-such-kubelet diagnose_duration=1 diagnose_timeout=%(timeout)d\n'
        '[nodes:vars]\nansible_connection=local\nansible_python_interpreter=%(python)s\n'
        'diagnose_duration=%(duration)d\ndiagnose_timeout=30\n'
        % dict(standins, slow=slow_root, timeout=SLOW_TIMEOUT, duration=DURATION, python=sys.executable))
    env = dict(ansible_env, ANSIBLE_REMOTE_TMP=str(remote_tmp), ANSIBLE_FORKS='4')
    with memcg_lab.MemcgLab() as lab:
        lab.start_churn(CHURN_PER_SECOND)
        time.sleep(0.5)
        started = time.monotonic()
        result = run_playbook(env, PLAYBOOK, str(inventory), {
            'diagnose_report_dir': str(report_dir), 'diagnose_thresholds': THRESHOLDS}, '--check')
        wall = time.monotonic() - started
        lab.stop_churn()
    assert not os.path.exists(lab.parent)
    assert result.returncode == 0, result.stdout
    assert 'Memory cgroup diagnosis report' in result.stdout
    report = json.loads((report_dir / 'diagnose.json').read_text())
    nodes = dict((row['host'], row) for row in report['nodes'])
    markdown = (report_dir / 'diagnose.md').read_text()

    perf = nodes['busy-perf']
    assert perf['conclusion'] == 'confirmed', perf
    assert perf['evidence']['method'] == 'perf' and perf['evidence']['share_percent'] >= 25, perf['evidence']
    seen = [item['function'] for item in perf['evidence']['stat_functions_seen']]
    assert 'memcg1_stat_format' in seen or 'memory_stat_show' in seen, seen
    assert perf['kernel']['generation'] == '6.x'

    proc = nodes['busy-proc']
    assert proc['conclusion'] == 'confirmed', proc
    assert proc['evidence']['method'] == 'proc', proc['evidence']
    assert proc['evidence']['open_files'][0]['path'].endswith('/memory.stat')
    assert proc['kubelet']['system_percent'] > proc['kubelet']['user_percent']

    idle = nodes['idle']
    assert idle['conclusion'] == 'not this', idle
    assert idle['evidence']['tried'] == ['perf', 'proc'] and idle['evidence']['method'] == 'proc', idle['evidence']
    assert 'perf recorded no samples' in idle['evidence']['error']

    # Every host measured the same churn over its own interval.
    expected = CHURN_PER_SECOND * 3600
    for host in ('busy-perf', 'busy-proc', 'idle'):
        rates = nodes[host]['rates']
        assert rates['interval_s'] >= DURATION
        for key in ('created_per_hour', 'dying_per_hour'):
            assert abs(rates[key] - expected) <= 0.2 * expected, (host, key, rates)
        forecast = nodes[host]['forecast']
        assert forecast['hours_back_after_drop'] is not None and forecast['id_limit'] is None, forecast

    slow = nodes['slow']
    assert slow['conclusion'] == 'unknown' and not slow['kubelet']['found'], slow
    assert slow['read_latency'][0]['level'] == 'root' and slow['read_latency'][0]['status'] == 'timeout', slow
    assert [level['status'] for level in slow['read_latency'][1:]] == ['skipped'], slow['read_latency']
    assert slow['timing']['within_budget'] and slow['timing']['stopped_early'], slow['timing']
    assert SLOW_TIMEOUT - 2 <= slow['timing']['elapsed_s'] <= SLOW_TIMEOUT, slow['timing']
    assert slow['forecast']['id_limit'] == 65535 and slow['forecast']['hours_to_critical'] == 0, slow['forecast']
    for host in nodes:  # every module kept its own budget (the play itself took `wall` s on a shared machine)
        assert nodes[host]["timing"]["within_budget"], (host, nodes[host]["timing"], wall)

    assert report['summary'] == dict(report['summary'], hosts=4, diagnosed=4, confirmed=2, unknown=1, **{'not this': 1})
    assert '| busy-perf | confirmed |' in markdown and '| idle | not this |' in markdown
    node_md = (report_dir / 'diagnose-busy-perf.md').read_text()
    assert 'Conclusion: confirmed' in node_md and 'memory.stat read time per level' in node_md
    assert json.loads((report_dir / 'diagnose-slow.json').read_text())['conclusion'] == 'unknown'
    # Nothing left behind: perf's files lived in the module's own temporary directory.
    assert not list(remote_tmp.iterdir()), list(remote_tmp.iterdir())
    assert not list(tmp_path.glob('**/perf.data'))


@pytest.mark.usefixtures('require_root_v1')
def test_module_on_the_centos7_node_pythons(ansible_216_env, node_pythons, tmp_path, standins):
    """memcg_diagnose through ansible-core 2.16 on Python 2.7 (perf) and 3.6 (/proc): both confirm the busy stand-in."""
    inventory = tmp_path / 'inventory.ini'
    inventory.write_text('py27 ansible_python_interpreter=%s diagnose_method=perf\n'
                         'py36 ansible_python_interpreter=%s diagnose_method=proc\n'
                         '[all:vars]\nansible_connection=local\n' % (node_pythons['2.7'], node_pythons['3.6']))
    env = dict(ansible_216_env, ANSIBLE_FORKS='2')
    args = {'kubelet_pid': standins['busy'], 'duration': 2, 'timeout': 30, 'method': '{{ diagnose_method }}',
            'thresholds': THRESHOLDS}
    result = subprocess.run(['ansible', 'all', '-i', str(inventory), '-m', 'nodeops.memcg.memcg_diagnose',
                             '-a', json.dumps(args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout
    hosts = {}  # the default ad-hoc output: `host | SUCCESS => {json}` per host
    for found in re.finditer(r'^(\S+) \| SUCCESS => ', result.stdout, re.MULTILINE):
        hosts[found.group(1)] = json.JSONDecoder().raw_decode(result.stdout[found.end():])[0]
    for host, method in (('py27', 'perf'), ('py36', 'proc')):
        assert hosts[host]['conclusion'] == 'confirmed', (host, hosts[host]['reasons'], hosts[host]['evidence'].get('error'))
        assert hosts[host]['evidence']['method'] == method, (host, hosts[host]['evidence'])
        assert hosts[host]['timing']['within_budget'], hosts[host]['timing']
