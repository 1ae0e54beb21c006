# -*- coding: utf-8 -*-
"""monitoring/: the PrometheusRule manifest is generated from the rule file and in sync with it;
every alert carries the annotations an on-call needs and a runbook link to a section that exists.
promtool itself runs in tests/integration/test_prometheus_rules.py.
"""

from __future__ import annotations

import importlib.util
import os
import re

import pytest
import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MONITORING = os.path.join(REPO_ROOT, 'monitoring')
RULES = os.path.join(MONITORING, 'prometheus', 'nodeops-memcg.rules.yml')
MANIFEST = os.path.join(MONITORING, 'prometheus', 'nodeops-memcg.prometheusrule.yml')
GUIDE = os.path.join(REPO_ROOT, 'docs', 'metrics.md')
RUNBOOK_PREFIX = 'https://github.com/nodeops/memcg/blob/main/docs/metrics.md#'


def read(path):
    with open(path, encoding='utf-8') as handle:
        return handle.read()


@pytest.fixture(scope='module')
def generator():
    spec = importlib.util.spec_from_file_location('nodeops_memcg_prometheusrule', os.path.join(MONITORING, 'prometheusrule.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alerts():
    return [rule for group in yaml.safe_load(read(RULES))['groups'] for rule in group['rules'] if 'alert' in rule]


def github_anchor(heading):
    """The id GitHub gives a Markdown heading."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def test_the_manifest_is_generated_from_the_rule_file(generator):
    assert read(MANIFEST) == generator.render(read(RULES)), 'stale: run python monitoring/prometheusrule.py'
    assert generator.main(['--check']) == 0
    manifest = yaml.safe_load(read(MANIFEST))
    assert (manifest['apiVersion'], manifest['kind']) == ('monitoring.coreos.com/v1', 'PrometheusRule')
    assert manifest['spec']['groups'] == yaml.safe_load(read(RULES))['groups']


def test_the_check_fails_on_a_manifest_that_drifted(generator, tmp_path, monkeypatch, capsys):
    drifted = tmp_path / 'manifest.yml'
    drifted.write_text(read(MANIFEST).replace('> 5000', '> 6000', 1))
    monkeypatch.setattr(generator, 'MANIFEST', str(drifted))
    assert generator.main(['--check']) == 1
    assert 'is stale' in capsys.readouterr().err


def test_the_alerts_the_issue_asks_for_are_there():
    names = {rule['alert'] for rule in alerts()}
    assert names >= {
        'NodeopsMemcgStatReadSlow', 'NodeopsMemcgStatReadVerySlow', 'NodeopsMemcgDyingHigh',
        'NodeopsMemcgDyingCritical', 'NodeopsMemcgDyingForecast', 'NodeopsMemcgIdLimitForecast',
        'NodeopsMemcgKernelNotFixed', 'NodeopsMemcgKmemLeakSuspected', 'NodeopsMemcgJobFailing',
        'NodeopsMemcgJobStale', 'NodeopsMemcgKubeletSystemCpuHigh'}
    forecasts = [rule['expr'] for rule in alerts() if rule['alert'].endswith('Forecast')]
    assert forecasts and all('predict_linear(' in expr for expr in forecasts)


@pytest.mark.parametrize('rule', alerts(), ids=lambda rule: rule['alert'])
def test_every_alert_names_node_and_number_and_links_its_runbook(rule):
    annotations = rule['annotations']
    assert rule['labels']['severity'] in ('info', 'warning', 'critical')
    assert '$labels.instance' in annotations['summary']
    assert '$labels.instance' in annotations['description'] and '$value' in annotations['description']
    assert annotations['runbook_url'] == RUNBOOK_PREFIX + rule['alert'].lower()
    headings = [github_anchor(line.lstrip('#')) for line in read(GUIDE).splitlines() if line.startswith('#')]
    assert rule['alert'].lower() in headings, 'docs/metrics.md has no section for %s' % rule['alert']
