# -*- coding: utf-8 -*-
"""The shipped alert and recording rules, checked and unit-tested by the real promtool (Debian's
`prometheus` package): the rule file, and the rule groups of the generated PrometheusRule manifest.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from conftest import REPO_ROOT

RULES = os.path.join(REPO_ROOT, 'monitoring', 'prometheus', 'nodeops-memcg.rules.yml')
MANIFEST = os.path.join(REPO_ROOT, 'monitoring', 'prometheus', 'nodeops-memcg.prometheusrule.yml')
RULES_TEST = os.path.join(REPO_ROOT, 'tests', 'integration', 'prometheus', 'rules_test.yml')


@pytest.fixture(scope='module')
def promtool():
    path = shutil.which('promtool')
    if path is None:
        pytest.fail('promtool is missing: install the Debian package prometheus (tests/install-system-packages.sh)')
    return path


def load(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def run(*command):
    return subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
                          check=False)


def test_promtool_checks_the_rule_file_and_the_manifest_groups(promtool, tmp_path):
    checked = run(promtool, 'check', 'rules', RULES)
    assert checked.returncode == 0, checked.stdout
    count = sum(len(group['rules']) for group in load(RULES)['groups'])
    assert 'SUCCESS: %d rules found' % count in checked.stdout, checked.stdout

    # the Operator manifest's spec is a rule file of its own: promtool must accept it too
    extracted = tmp_path / 'from-manifest.rules.yml'
    extracted.write_text(yaml.safe_dump({'groups': load(MANIFEST)['spec']['groups']}))
    checked = run(promtool, 'check', 'rules', str(extracted))
    assert checked.returncode == 0 and 'SUCCESS: %d rules found' % count in checked.stdout, checked.stdout


def test_promtool_rule_tests_pass(promtool):
    tested = run(promtool, 'test', 'rules', RULES_TEST)
    assert tested.returncode == 0, tested.stdout
    assert 'SUCCESS' in tested.stdout, tested.stdout


def test_every_alert_has_a_firing_and_a_silent_case():
    alerts = [rule['alert'] for group in load(RULES)['groups'] for rule in group['rules'] if 'alert' in rule]
    fires, silent = set(), set()
    for group in load(RULES_TEST)['tests']:
        instances = {series['series'].split('instance="')[1].split('"')[0] for series in group['input_series']}
        for case in group.get('alert_rule_test', []):
            firing = {alert['exp_labels']['instance'] for alert in case['exp_alerts']}
            if firing:
                fires.add(case['alertname'])
            # silent: a case expecting nothing, or a node with series that is not among the firing ones
            if not firing or instances - firing:
                silent.add(case['alertname'])
    assert sorted(set(alerts) - fires) == [], 'alerts without a firing test'
    assert sorted(set(alerts) - silent) == [], 'alerts without a test where they stay silent'
