# -*- coding: utf-8 -*-
"""The AWX surveys (awx/surveys/*.json) against the roles' argument specs, so they cannot drift apart.

Each survey question must name an option of its role's `main` entry point, with a survey type that
hands the role a value of the option's type, choices the option accepts, and a default that both
AWX and the role accept. AWX drops a default that fails its own validation without a word (the
variable then goes unset at launch), so the AWX rules are applied here too.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re

import pytest
import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.nodeops.memcg.plugins.plugin_utils import rollout

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SURVEYS = {'detect': 'detect', 'mitigate': 'mitigate', 'upgrade': 'kernel_upgrade'}  # survey -> role
QUESTION_KEYS = {'question_name', 'question_description', 'variable', 'type', 'required'}
# The question types AWX knows, and the Python types it accepts as their values (awx/main/constants.py).
AWX_TYPES = {'text': str, 'textarea': str, 'password': str, 'multiplechoice': str, 'multiselect': list,
             'integer': int, 'float': (float, int)}
# Role option types each question type can feed. AWX has no boolean question: a bool option is a
# multiple choice of 'true'/'false', strings the argument spec and `| bool` both read as booleans.
COMPATIBLE = {'text': {'str', 'raw', 'path'}, 'textarea': {'str', 'raw'}, 'password': {'str', 'raw'},
              'integer': {'int'}, 'float': {'float'}, 'multiplechoice': {'str', 'bool'},
              'multiselect': {'list'}}
BOOL_CHOICES = {'true', 'false'}


def load_survey(name):
    with open(os.path.join(REPO_ROOT, 'awx', 'surveys', name + '.json')) as handle:
        return json.load(handle)


def role_options(role):
    with open(os.path.join(REPO_ROOT, 'roles', role, 'meta', 'argument_specs.yml')) as handle:
        return yaml.safe_load(handle)['argument_specs']['main']['options']


def choice_list(question):
    """AWX takes choices as a list or as one string, one choice a line."""
    choices = question.get('choices')
    if isinstance(choices, str):
        return [choice for choice in choices.splitlines() if choice.strip()]
    return list(choices or [])


def awx_errors(question, value):
    """What AWX says about a value for a question (awx SurveyJobTemplateMixin._survey_element_validation)."""
    kind, low, high = question['type'], question.get('min'), question.get('max')
    if not isinstance(value, AWX_TYPES[kind]) or isinstance(value, bool):
        return ['%r is not a %s answer' % (value, kind)]
    errors = []
    if kind in ('text', 'textarea', 'password'):
        if low not in ('', None) and len(value) < int(low):
            errors.append('%r shorter than %s' % (value, low))
        if high not in ('', None) and len(value) > int(high):
            errors.append('%r longer than %s' % (value, high))
    elif kind in ('integer', 'float'):
        if low not in ('', None) and value < low:
            errors.append('%r below %s' % (value, low))
        if high not in ('', None) and value > high:
            errors.append('%r above %s' % (value, high))
    elif kind == 'multiplechoice' and value not in choice_list(question):
        errors.append('%r not one of %s' % (value, choice_list(question)))
    elif kind == 'multiselect':
        errors.extend('%r not one of %s' % (item, choice_list(question)) for item in value if item not in choice_list(question))
    return errors


CASES = [(survey, question['variable']) for survey in SURVEYS for question in load_survey(survey)['spec']]


def question_of(survey, variable):
    return next(q for q in load_survey(survey)['spec'] if q['variable'] == variable)


@pytest.mark.parametrize('survey', sorted(SURVEYS))
def test_survey_is_an_awx_survey_spec(survey):
    spec = load_survey(survey)
    assert isinstance(spec['name'], str) and spec['name']
    assert isinstance(spec['description'], str) and spec['description']
    assert isinstance(spec['spec'], list) and spec['spec']
    variables = [question['variable'] for question in spec['spec']]
    assert len(variables) == len(set(variables)), 'a variable is asked twice'
    for question in spec['spec']:
        assert QUESTION_KEYS <= set(question), '%s misses %s' % (question.get('variable'), QUESTION_KEYS - set(question))
        assert question['type'] in AWX_TYPES, question
        assert isinstance(question['required'], bool), question
        assert re.match(r'^[a-z_][a-z0-9_]*$', question['variable']), question['variable']
        if question['type'] in ('multiplechoice', 'multiselect'):
            assert len(choice_list(question)) >= 2, question
        if question['type'] in ('integer', 'float') and 'min' in question and 'max' in question:
            assert question['min'] <= question['max'], question


@pytest.mark.parametrize('survey,variable', CASES)
def test_question_feeds_a_role_option_of_a_compatible_type(survey, variable):
    question = question_of(survey, variable)
    options = role_options(SURVEYS[survey])
    assert variable in options, '%s is not an option of role %s (entry point main)' % (variable, SURVEYS[survey])
    option = options[variable]
    option_type = option.get('type', 'str')
    assert option_type in COMPATIBLE[question['type']], (
        '%s: a %s question cannot feed a %s option' % (variable, question['type'], option_type))
    choices = choice_list(question)
    if option_type == 'bool':
        assert set(choices) <= BOOL_CHOICES, choices
    elif option.get('choices') and question['type'] in ('multiplechoice', 'multiselect'):
        assert set(choices) <= set(option['choices']), '%s: %s not all in %s' % (variable, choices, option['choices'])
    elif option.get('choices') and question['type'] == 'integer':
        # every answer min..max must be a choice of the option
        assert set(range(question['min'], question['max'] + 1)) <= set(option['choices']), variable
    elif question['type'] == 'multiplechoice':
        pytest.fail('%s: the option has no choices to check the multiple choice against' % variable)
    if question['type'] == 'multiselect':
        assert option.get('elements', 'str') == 'str', variable


@pytest.mark.parametrize('survey,variable', CASES)
def test_default_is_an_answer_awx_and_the_role_both_accept(survey, variable):
    question = question_of(survey, variable)
    if question.get('default') is None:
        assert not question['required'], '%s: a required question needs a default for scheduled runs' % variable
        return
    default = question['default']
    assert awx_errors(question, default) == [], variable
    result = ArgumentSpecValidator(role_options(SURVEYS[survey])).validate({variable: default})
    assert result.error_messages == [], result.error_messages


@pytest.mark.parametrize('survey', sorted(SURVEYS))
def test_all_defaults_together_pass_the_role_argument_spec(survey):
    """The extra vars of a scheduled (unprompted) launch: every default at once."""
    defaults = {q['variable']: q['default'] for q in load_survey(survey)['spec'] if q.get('default') is not None}
    result = ArgumentSpecValidator(role_options(SURVEYS[survey])).validate(defaults)
    assert result.error_messages == []


def test_bool_answers_reach_the_role_as_booleans():
    result = ArgumentSpecValidator(role_options('kernel_upgrade')).validate(
        {'kernel_upgrade_allow_control_plane': 'false'})
    assert result.validated_parameters['kernel_upgrade_allow_control_plane'] is False


def test_batch_default_and_limits_are_valid_batches():
    question = question_of('upgrade', 'kernel_upgrade_batch')
    assert rollout.batch_size(question['default'], 10) == 1
    assert question['max'] >= len('100%')
    with pytest.raises(Exception, match='kernel_upgrade_batch'):
        rollout.batch_size('0', 10)


def test_awx_validation_mirror_rejects_what_awx_rejects():
    text = {'type': 'text', 'min': 1, 'max': 4}
    assert awx_errors(text, '100%') == [] and awx_errors(text, '') and awx_errors(text, '12345')
    assert awx_errors({'type': 'integer', 'min': 0, 'max': 5}, 6)
    assert awx_errors({'type': 'integer'}, True)
    assert awx_errors({'type': 'multiplechoice', 'choices': 'a\nb'}, 'c')
    assert awx_errors({'type': 'multiselect', 'choices': ['a', 'b']}, ['a']) == []


class _UnsafeLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    """Reads Ansible's !unsafe tag as a plain string."""


_UnsafeLoader.add_constructor('!unsafe', lambda loader, node: loader.construct_scalar(node))


REMEDIATION = 'nodeops.memcg remediation'


def load_configure():
    with open(os.path.join(REPO_ROOT, 'awx', 'configure.yml')) as handle:
        return yaml.load(handle, Loader=_UnsafeLoader)  # noqa: S506 - a SafeLoader subclass


def tasks_of(playbook, module):
    return [task[module] for play in playbook for task in play.get('tasks', []) if module in task]


def resolve(playbook, value):
    """A value, or the play variable a bare '{{ name }}' names."""
    match = re.match(r'^\{\{\s*(\w+)\s*\}\}$', str(value))
    return playbook[0]['vars'][match.group(1)] if match else value


def test_configure_gives_each_job_template_its_survey_and_playbook():
    playbook = load_configure()
    text = open(os.path.join(REPO_ROOT, 'awx', 'configure.yml')).read()
    templates = playbook[0]['vars']['nodeops_memcg_awx_job_templates']
    assert {t['survey'] for t in templates} == set(SURVEYS)
    for template in templates:
        assert os.path.isfile(os.path.join(REPO_ROOT, template['playbook'])), template['playbook']
    assert "lookup('ansible.builtin.file', 'surveys/' ~ item.survey ~ '.json')" in text
    job_template = tasks_of(playbook, 'awx.awx.job_template')[0]
    assert job_template['survey_enabled'] is True


def workflow(playbook, name):
    return next(w for w in tasks_of(playbook, 'awx.awx.workflow_job_template') if w['name'] == name)


def test_workflow_extra_data_is_asked_by_the_node_templates_survey():
    """AWX accepts a node's extra_data only for variables its job template's survey asks."""
    playbook = load_configure()
    names = {t['name']: t['survey'] for t in playbook[0]['vars']['nodeops_memcg_awx_job_templates']}
    nodes = {node['identifier']: node for node in workflow(playbook, REMEDIATION)['workflow_nodes']}
    kinds = [node['unified_job_template']['type'] for node in nodes.values()]
    assert 'workflow_approval' in kinds, 'an approval node guards the upgrade'
    approval = next(node for node in nodes.values() if node['unified_job_template']['type'] == 'workflow_approval')
    timeout = resolve(playbook, approval['unified_job_template']['timeout'])
    assert int(timeout) > 0, 'an approval without timeout waits forever'
    for node in nodes.values():
        for target in sum((node.get('related', {}).get(k, []) for k in ('success_nodes', 'failure_nodes', 'always_nodes')), []):
            assert target['identifier'] in nodes
        if not node.get('extra_data'):
            continue
        survey = names[node['unified_job_template']['name']]
        asked = {q['variable'] for q in load_survey(survey)['spec']}
        assert set(node['extra_data']) <= asked, node['identifier']
        for variable, value in node['extra_data'].items():
            assert awx_errors(question_of(survey, variable), value) == [], variable


def test_window_schedule_answers_the_workflow_survey_with_valid_values():
    """A schedule's extra_data, like a node's, only counts for variables the survey asks."""
    playbook = load_configure()
    remediation = workflow(playbook, REMEDIATION)
    assert "surveys/upgrade.json" in remediation['survey_spec']
    schedule = next(s for s in tasks_of(playbook, 'awx.awx.schedule') if s['unified_job_template'] == REMEDIATION)
    answers = {key: resolve(playbook, value) for key, value in schedule['extra_data'].items()}
    assert set(answers) <= {q['variable'] for q in load_survey('upgrade')['spec']}
    for variable, value in answers.items():
        assert awx_errors(question_of('upgrade', variable), value) == [], variable
    result = ArgumentSpecValidator(role_options('kernel_upgrade')).validate(answers)
    assert result.error_messages == []


def test_detect_and_mitigate_are_sliced_and_merged_the_upgrade_never_sliced():
    """docs/awx.md: detect and mitigate run as sliced jobs, each slice names its report after its job
    id, and in every workflow the sliced job is followed, always, by the merge of its kind only;
    the upgrade (one cluster lock, max_unavailable over the whole fleet) is one job."""
    playbook = load_configure()
    templates = {t['name']: t for t in playbook[0]['vars']['nodeops_memcg_awx_job_templates']}
    assert int(resolve(playbook, '{{ nodeops_memcg_awx_job_slice_count }}')) > 1
    assert tasks_of(playbook, 'awx.awx.job_template')[0]['job_slice_count'] == '{{ item.job_slice_count }}'
    sliced = {}
    for name, template in templates.items():
        if template['playbook'] in ('playbooks/detect.yml', 'playbooks/mitigate.yml'):
            kind = template['survey']
            sliced[name] = kind
            assert template['job_slice_count'] == '{{ nodeops_memcg_awx_job_slice_count }}', name
            assert template['extra_vars'][kind + '_report_slice'] == '{{ awx_job_id }}', name
        else:
            assert template['job_slice_count'] == 1, name
    assert sorted(sliced.values()) == ['detect', 'mitigate']
    merges = {name: t['extra_vars']['merge_reports_kind'] for name, t in templates.items()
              if t['playbook'] == 'playbooks/merge_reports.yml'}
    assert sorted(merges.values()) == ['detect', 'mitigate']
    flows = tasks_of(playbook, 'awx.awx.workflow_job_template')
    assert {w['name'] for w in flows} == {REMEDIATION, 'nodeops.memcg detect fleet'}
    for flow in flows:
        nodes = {node['identifier']: node for node in flow['workflow_nodes']}
        for node in nodes.values():
            kind = sliced.get(node['unified_job_template']['name'])
            if kind is None:
                continue
            related = node['related']
            assert related['success_nodes'] == [] and related['failure_nodes'] == [], node['identifier']
            [after] = related['always_nodes']
            assert merges[nodes[after['identifier']]['unified_job_template']['name']] == kind, node['identifier']
    hourly = next(s for s in tasks_of(playbook, 'awx.awx.schedule') if s['name'] == 'nodeops.memcg detect hourly')
    assert hourly['unified_job_template'] == 'nodeops.memcg detect fleet'
