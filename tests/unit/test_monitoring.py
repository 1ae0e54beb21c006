# -*- coding: utf-8 -*-
"""monitoring/: the PrometheusRule manifest is generated from the rule file and in sync with it;
every alert carries the annotations an on-call needs and a runbook link to a section that exists.
promtool itself runs in tests/integration/test_prometheus_rules.py.
"""

from __future__ import annotations

import importlib.util
import json
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


# ---------------------------------------------------------------- Grafana dashboard

DASHBOARD = os.path.join(MONITORING, 'grafana', 'nodeops-memcg.json')
PANEL_TYPES = {'row', 'stat', 'timeseries', 'bargauge', 'table', 'gauge', 'text'}


@pytest.fixture(scope='module')
def dashboard():
    with open(DASHBOARD, encoding='utf-8') as handle:
        return json.load(handle)


def test_the_dashboard_is_an_importable_grafana_dashboard(dashboard):
    for key, kind in (('title', str), ('uid', str), ('schemaVersion', int), ('panels', list), ('templating', dict),
                      ('time', dict)):
        assert isinstance(dashboard.get(key), kind), key
    assert 'id' not in dashboard or dashboard['id'] is None, 'an exported id would clash on import'
    assert re.match(r'^[a-zA-Z0-9_-]{1,40}$', dashboard['uid'])
    ids = [panel['id'] for panel in dashboard['panels']]
    assert len(ids) == len(set(ids)), 'panel ids must be unique'
    variables = {var['name']: var for var in dashboard['templating']['list']}
    assert variables['datasource']['type'] == 'datasource' and variables['datasource']['query'] == 'prometheus'
    occupied = set()
    for panel in dashboard['panels']:
        assert panel['type'] in PANEL_TYPES, panel['type']
        grid = panel['gridPos']
        assert grid['w'] >= 1 and grid['h'] >= 1 and grid['x'] >= 0 and grid['x'] + grid['w'] <= 24, panel['title']
        cells = {(x, y) for x in range(grid['x'], grid['x'] + grid['w']) for y in range(grid['y'], grid['y'] + grid['h'])}
        assert not cells & occupied, 'panel %r overlaps another' % panel['title']
        occupied |= cells
        if panel['type'] == 'row':
            continue
        assert panel['datasource'] == {'type': 'prometheus', 'uid': '${datasource}'}, panel['title']
        assert panel['targets'], panel['title']
        ref_ids = [target['refId'] for target in panel['targets']]
        assert len(ref_ids) == len(set(ref_ids)), panel['title']
        for target in panel['targets']:
            used = set(re.findall(r'\$(\w+)', target['expr']))
            assert used <= set(variables), (panel['title'], used)


def test_the_dashboard_covers_what_the_issue_lists(dashboard):
    exprs = ' '.join(target['expr'] for panel in dashboard['panels'] for target in panel.get('targets', []))
    for needed in ('nodeops_memcg:nodes:count', 'nodeops_memcg:nodes_kernel_not_fixed:count', 'nodeops_memcg_dying',
                   'nodeops_memcg_live', 'nodeops_memcg_memory_stat_read_seconds', 'nodeops_memcg_kubelet_cpu_ratio',
                   'nodeops_memcg_slab_bytes', 'nodeops_memcg_dentries', 'nodeops_memcg:dying:predict_linear_24h'):
        assert needed in exprs, needed
    recorded = {rule['record'] for group in yaml.safe_load(read(RULES))['groups'] for rule in group['rules']
                if 'record' in rule}
    used = set(re.findall(r'nodeops_memcg:[\w:]+', exprs))
    assert used <= recorded, 'the dashboard uses recording rules the rule file does not have: %s' % (used - recorded)
