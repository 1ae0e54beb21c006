# -*- coding: utf-8 -*-
"""The detect playbook on this machine's real kernel, with real dying memcgs made by the test."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

from conftest import REPO_ROOT, localhost_inventory, run_playbook
import memcg_lab

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'detect.yml')
DYING = 300
RUNNING_KERNEL_SEVERE = [{'match': '^' + re.escape(os.uname().release) + '$', 'stream': 'test',
                          'status': 'severe', 'reason': 'marked severe by the test'}]


def detect(env, tmp_path, thresholds, overrides=()):
    report_dir = tmp_path / 'report'
    result = run_playbook(env, PLAYBOOK, localhost_inventory(str(tmp_path)), {
        'detect_report_dir': str(report_dir),
        'detect_cpu_interval': 0.2,
        'detect_thresholds': thresholds,
        'detect_policy_overrides': list(overrides),
    })
    assert result.returncode == 0, result.stdout
    with open(report_dir / 'detect.json') as handle:
        report = json.load(handle)
    markdown = (report_dir / 'detect.md').read_text()
    assert len(report['nodes']) == 1, report
    return report['nodes'][0], report, markdown, result.stdout


@pytest.mark.usefixtures('require_root_v1')
def test_dying_memcgs_are_counted_and_drive_the_verdict(ansible_env, tmp_path):
    relaxed = {'warn_dying': 10 ** 6, 'warn_dying_ratio': 10 ** 6, 'critical_dying': 10 ** 7}
    before = detect(ansible_env, tmp_path, relaxed)[0]
    assert before['status'] == 'probed' and before['verdict'] == 'ok', before
    baseline = before['memcg']['dying']
    assert before['memcg']['total'] == before['memcg']['live'] + baseline

    with memcg_lab.MemcgLab() as lab:
        lab.add_dying(DYING)
        kernel_total = memcg_lab.memory_num_cgroups()

        warn_only = {'warn_dying': baseline + DYING // 2, 'warn_dying_ratio': 10 ** 6,
                     'critical_dying': baseline + 10 * DYING}
        node, report, markdown, output = detect(ansible_env, tmp_path, warn_only)
        rose = node['memcg']['dying'] - baseline
        assert 0.9 * DYING <= rose <= DYING + 20, (baseline, node['memcg'])
        assert abs(node['memcg']['total'] - kernel_total) <= 20
        assert node['verdict'] == 'warn', node
        assert any('warn_dying' in reason for reason in node['reasons']), node['reasons']
        assert report['summary']['warn'] == 1
        assert '| localhost | warn |' in markdown
        assert 'Memory cgroup detection report' in output  # printed for the job log

        critical = dict(warn_only, critical_dying=baseline + DYING // 2 + 1)
        node = detect(ansible_env, tmp_path, critical, RUNNING_KERNEL_SEVERE)[0]
        assert node['kernel']['status'] == 'severe'
        assert node['kernel']['upgrade_needed'] is True
        assert node['verdict'] == 'critical', node

        # On a fixed kernel the same count only warns: reads no longer scale with zombies.
        node = detect(ansible_env, tmp_path, critical)[0]
        assert node['kernel']['status'] == 'fixed'
        assert node['verdict'] == 'warn', node

        ratio = {'warn_dying': 10 ** 6, 'critical_dying': 10 ** 7,
                 'warn_dying_ratio_min': DYING // 2,
                 'warn_dying_ratio': max(1, (baseline + DYING) // (2 * node['memcg']['live']))}
        node = detect(ansible_env, tmp_path, ratio)[0]
        assert node['verdict'] == 'warn' and any('ratio' in r for r in node['reasons']), node
    assert not os.path.exists(lab.parent)


@pytest.mark.usefixtures('require_root_v1')
def test_fail_on_critical_fails_the_run_after_writing_the_report(ansible_env, tmp_path):
    report_dir = tmp_path / 'report'
    with memcg_lab.MemcgLab() as lab:
        lab.add_dying(10)
        result = run_playbook(ansible_env, PLAYBOOK, localhost_inventory(str(tmp_path)), {
            'detect_report_dir': str(report_dir), 'detect_cpu_interval': 0,
            'detect_thresholds': {'warn_dying': 0, 'critical_dying': 0},
            'detect_policy_overrides': RUNNING_KERNEL_SEVERE, 'detect_fail_on': 'critical'})
    assert result.returncode != 0, result.stdout
    assert 'detect_fail_on is critical' in result.stdout
    assert json.loads((report_dir / 'detect.json').read_text())['summary']['critical'] == 1


@pytest.mark.usefixtures('require_root_v1')
def test_one_probe_per_node_writes_the_textfile_and_check_mode_writes_nothing(ansible_env, tmp_path):
    """The probe writes the textfile itself; a node whose own textfile_dir is bad is a failed row."""
    textfile_dir = tmp_path / 'textfile'
    textfile_dir.mkdir()
    report_dir = tmp_path / 'report'
    inventory = localhost_inventory(str(tmp_path), 'badtext ansible_connection=local ansible_python_interpreter=%s '
                                    'detect_textfile_dir=relative/textfile\n[all:vars]\ndetect_textfile_dir=%s\n' % (
                                        sys.executable, textfile_dir))
    extra = {'detect_report_dir': str(report_dir), 'detect_cpu_interval': 0}

    checked = run_playbook(ansible_env, PLAYBOOK, inventory, extra, '--check')
    assert checked.returncode == 0, checked.stdout
    assert os.listdir(textfile_dir) == [] and not report_dir.exists()
    assert re.search(r'^localhost\s+: ok=\d+\s+changed=1 ', checked.stdout, re.M), checked.stdout

    result = run_playbook(ansible_env, PLAYBOOK, inventory, extra)
    assert result.returncode == 0, result.stdout
    # One task ran on the second node: the probe (failed, ignored). Everything else runs once.
    assert re.search(r'^badtext\s+: ok=1\s+changed=0\s+unreachable=0\s+failed=0\s+skipped=0\s+rescued=0\s+ignored=1',
                     result.stdout, re.M), result.stdout
    text = (textfile_dir / 'nodeops_memcg.prom').read_text()
    total = memcg_lab.memory_num_cgroups()
    reported = int(re.search(r'^nodeops_memcg_total (\d+)$', text, re.M).group(1))
    assert abs(reported - total) <= 20
    assert re.search(r'^nodeops_memcg_memory_stat_read_seconds\{cgroup="root"\} [0-9.e-]+$', text, re.M)
    assert '# TYPE nodeops_memcg_verdict gauge' in text
    assert os.listdir(textfile_dir) == ['nodeops_memcg.prom']

    report = json.loads((report_dir / 'detect.json').read_text())
    rows = {row['host']: row for row in report['nodes']}
    assert rows['badtext'] == {'host': 'badtext', 'status': 'failed',
                               'error': "textfile_dir must be an absolute path, got 'relative/textfile'"}
    assert rows['localhost']['status'] == 'probed'
    assert isinstance(rows['localhost']['installed_kernels'], list)
    assert rows['localhost']['kernel']['release'] == os.uname().release
    assert report['summary']['failed'] == 1 and report['summary']['probed'] == 1


def test_bad_report_dir_is_refused_before_probing(ansible_env, tmp_path):
    result = run_playbook(ansible_env, PLAYBOOK, localhost_inventory(str(tmp_path)),
                          {'detect_report_dir': 'relative/dir'})
    assert result.returncode != 0
    assert 'relative/dir' in result.stdout and 'absolute' in result.stdout
    assert 'Measure memory cgroups' not in result.stdout


def test_bad_stat_reads_is_refused_by_the_argument_spec(ansible_env, tmp_path):
    result = run_playbook(ansible_env, PLAYBOOK, localhost_inventory(str(tmp_path)),
                          {'detect_stat_reads': 9, 'detect_report_dir': ''})
    assert result.returncode != 0
    assert 'detect_stat_reads' in result.stdout
