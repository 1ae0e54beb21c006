# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate the PrometheusRule manifest from the Prometheus rule file (the one source).

    python monitoring/prometheusrule.py          rewrite prometheus/nodeops-memcg.prometheusrule.yml
    python monitoring/prometheusrule.py --check  exit 1 when the manifest is not what the rules give

Runs on the controller (PyYAML comes with ansible-core). tests/unit/test_monitoring.py runs the check.
"""

from __future__ import annotations

import argparse
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, 'prometheus', 'nodeops-memcg.rules.yml')
MANIFEST = os.path.join(HERE, 'prometheus', 'nodeops-memcg.prometheusrule.yml')

HEADER = ('# Generated from nodeops-memcg.rules.yml by monitoring/prometheusrule.py: do not edit.\n'
          '# A PrometheusRule for the Prometheus Operator; the labels match kube-prometheus\' default\n'
          '# ruleSelector (prometheus: k8s, role: alert-rules): change them to fit your Prometheus.\n')


class _IndentedDumper(yaml.SafeDumper):
    """Indents list items under their key, as yamllint (ansible-lint) wants."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def render(rules_text):
    """The manifest text for the content of a Prometheus rule file."""
    groups = yaml.safe_load(rules_text)['groups']
    manifest = {
        'apiVersion': 'monitoring.coreos.com/v1',
        'kind': 'PrometheusRule',
        'metadata': {
            'name': 'nodeops-memcg',
            'namespace': 'monitoring',
            'labels': {'app.kubernetes.io/name': 'nodeops-memcg', 'app.kubernetes.io/part-of': 'nodeops.memcg',
                       'prometheus': 'k8s', 'role': 'alert-rules'},
        },
        'spec': {'groups': groups},
    }
    # long expressions and annotations fold at 120 columns (a plain scalar reads back the same)
    return HEADER + yaml.dump(manifest, Dumper=_IndentedDumper, sort_keys=False, default_flow_style=False, width=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true', help='compare only; exit 1 when the manifest is stale')
    args = parser.parse_args(argv)
    with open(RULES, encoding='utf-8') as handle:
        wanted = render(handle.read())
    if args.check:
        with open(MANIFEST, encoding='utf-8') as handle:
            if handle.read() != wanted:
                sys.stderr.write('%s is stale: run python monitoring/prometheusrule.py\n' % MANIFEST)
                return 1
        return 0
    with open(MANIFEST, 'w', encoding='utf-8') as handle:
        handle.write(wanted)
    return 0


if __name__ == '__main__':
    sys.exit(main())
