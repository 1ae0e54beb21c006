# -*- coding: utf-8 -*-
"""CentOS 7 nodes: the playbooks through ansible-core 2.16 with the node's Python set to real CPython 2.7
and 3.6, and the clear failure the newest ansible-core gives on those Pythons.

Each host of the inventory is this machine over the local connection with its own interpreter
(centos7-py27, centos7-py36), so every playbook runs once for both Pythons and the tests read each
host's part: detect against real dying memcgs (memcg_lab), mitigate in check mode and for real on
fixture roots (with the self-healing timer installed under a prefix, whose job then runs on the node's
Python), and the node side of the upgrade (kernel_check, kernel_boot with the real GRUB tools on a
fixture /boot, the default node procedure in check mode). Then ansible-core 2.19 (the PATH's, as the
integration stage runs) runs detect on the same hosts: the report lists both as failed with the message
of plugins/plugin_utils/node_python.py. Five playbook runs in all (about 2 minutes on 2 busy cores).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess

import pytest

from conftest import REPO_ROOT, run_playbook
import memcg_lab
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree
from ansible_collections.nodeops.memcg.tests.unit.fixtures.boot_menus import (
    BOOKWORM_GRUB_CFG_SAVED, BOOKWORM_NEW, BOOKWORM_NEW_ID, BOOKWORM_OLD, BOOKWORM_OLD_ID, DEBIAN_DEFAULT_GRUB,
    grubenv_block)

PYTHONS = ('2.7', '3.6')
HOSTS = {'2.7': 'centos7-py27', '3.6': 'centos7-py36'}
DYING = 200
DETECT = os.path.join(REPO_ROOT, 'playbooks', 'detect.yml')
MITIGATE = os.path.join(REPO_ROOT, 'playbooks', 'mitigate.yml')
NODE_SIDE = os.path.join(REPO_ROOT, 'tests', 'integration', 'playbooks', 'node_side.yml')
DROP = '/proc/sys/vm/drop_caches'

pytestmark = [pytest.mark.usefixtures('require_root_v1'), pytest.mark.parametrize('version', PYTHONS)]


def inventory(directory, node_pythons, host_vars=None):
    """A YAML (JSON) inventory: one local host per node Python, with host_vars[version] beside it."""
    hosts = {}
    for version in PYTHONS:
        hosts[HOSTS[version]] = dict((host_vars or {}).get(version, {}),
                                     ansible_python_interpreter=node_pythons[version])
    path = os.path.join(str(directory), 'inventory.yml')
    with open(path, 'w') as handle:
        json.dump({'all': {'vars': {'ansible_connection': 'local'}, 'hosts': hosts}}, handle)
    return path


def succeeded(result):
    assert result.returncode == 0, result.stdout
    assert 'deserialization' not in result.stdout and 'MODULE FAILURE' not in result.stdout
    return result


def read(path):
    with open(str(path)) as handle:
        return handle.read()


def rows(report_file):
    return {row['host']: row for row in json.loads(read(report_file))['nodes']}


# ---------------------------------------------------------------- ansible-core 2.16, node Python 2.7/3.6

@pytest.fixture(scope='module')
def detected(ansible_216_env, node_pythons, tmp_path_factory):
    """detect over both hosts with DYING real dying memcgs: (report rows, output)."""
    work = tmp_path_factory.mktemp('detect')
    with memcg_lab.MemcgLab() as lab:
        lab.add_dying(DYING)
        result = run_playbook(ansible_216_env, DETECT, inventory(work, node_pythons), {
            'detect_report_dir': str(work / 'report'), 'detect_cpu_interval': 0.2,
            'detect_thresholds': {'warn_dying': DYING // 2, 'warn_dying_ratio': 10 ** 6, 'critical_dying': 10 ** 7}})
    return rows(work / 'report' / 'detect.json'), succeeded(result).stdout


def test_detect_probes_the_real_kernel(detected, node_pythons, version):
    """The lab's memcgs are among the dying ones (other tests on this machine make and remove memcgs
    meanwhile: the exact count against /proc/cgroups is test_detect_real's)."""
    report, output = detected
    row = report[HOSTS[version]]
    assert row['status'] == 'probed', row
    assert row['kernel']['release'] == os.uname().release
    assert row['memcg']['dying'] >= 0.9 * DYING, row['memcg']
    assert row['memcg']['total'] == row['memcg']['live'] + row['memcg']['dying']
    assert row['verdict'] == 'warn' and any('warn_dying' in reason for reason in row['reasons']), row
    assert '| %s | warn |' % HOSTS[version] in output


@pytest.fixture(scope='module')
def mitigated(ansible_216_env, node_pythons, tmp_path_factory):
    """mitigate in check mode, then for real, on a fixture root per host (6,000 memcgs: the gate opens);
    the real run also installs the self-healing timer (cron) under a prefix per host."""
    work = tmp_path_factory.mktemp('mitigate')
    host_vars = {}
    for version in PYTHONS:
        root = tree.build_node(work / ('root-' + version), memory_num_cgroups=6000, release='5.4.0-150-generic',
                               kubelet=None)
        tree.write(root, DROP, '')
        os.mkdir(str(work / ('prefix-' + version)))
        os.mkdir(str(work / ('textfile-' + version)))
        host_vars[version] = {'mitigate_root': root, 'mitigate_timer_prefix': str(work / ('prefix-' + version)),
                              'mitigate_textfile_dir': str(work / ('textfile-' + version))}
    path = inventory(work, node_pythons, host_vars)
    extra = {'mitigate_report_dir': str(work / 'report'), 'mitigate_batch_pause': 0, 'mitigate_settle_seconds': 0,
             'mitigate_max_parallel': 2}
    check = succeeded(run_playbook(ansible_216_env, MITIGATE, path, extra, '--check'))
    written_by_check = dict((version, read(host_vars[version]['mitigate_root'] + DROP)) for version in PYTHONS)
    report_by_check = os.path.exists(str(work / 'report'))
    real = succeeded(run_playbook(ansible_216_env, MITIGATE, path,
                                  dict(extra, mitigate_timer='present', mitigate_timer_scheduler='cron')))
    yield {'work': work, 'host_vars': host_vars, 'check': check.stdout, 'real': real.stdout,
           'written_by_check': written_by_check, 'report_by_check': report_by_check,
           'report': rows(work / 'report' / 'mitigate.json')}
    shutil.rmtree(str(work))


def test_mitigate_check_mode_changes_nothing(mitigated, version):
    assert mitigated['written_by_check'][version] == ''
    assert not mitigated['report_by_check']
    assert re.search(r'%s\s+\|\s*would_mitigate' % HOSTS[version], mitigated['check']), mitigated['check']


def test_mitigate_drops_caches_on_the_fixture_root(mitigated, version):
    assert read(mitigated['host_vars'][version]['mitigate_root'] + DROP) == '2'
    row = mitigated['report'][HOSTS[version]]
    # a fixture's figures do not move when drop_caches is written
    assert row['status'] == 'not_improved' and row['levels'] == [2], row
    assert row['before']['total'] == 6000


def test_heal_job_runs_on_the_node_python(mitigated, node_pythons, version):
    """The timer's job, as cron would start it: with the interpreter Ansible used on the node."""
    host_vars = mitigated['host_vars'][version]
    prefix = host_vars['mitigate_timer_prefix']
    job = [line for line in read(prefix + '/etc/cron.d/nodeops-memcg-heal').splitlines() if ' root ' in line][0]
    command = shlex.split(job.split(' root ', 1)[1])
    command = command[command.index('-t') + 1:command.index('--splay')]
    assert command[0] == node_pythons[version], job
    command.remove('--quiet')
    root = tree.build_node(mitigated['work'] / ('heal-root-' + version), memory_num_cgroups=68700)
    tree.write(root, DROP, '0\n')
    result = subprocess.run(command + ['--root', root], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('nodeops-memcg-heal: action=dropped level=2 verdict=critical '), result.stdout
    assert read(root + DROP) == '2'
    assert 'nodeops_memcg_dying 68692' in read(host_vars['mitigate_textfile_dir'] + '/nodeops_memcg.prom').splitlines()


def boot_tree(root):
    """A Debian /boot on bookworm's 6.1.0-17 with 6.1.0-18 installed, GRUB_DEFAULT=saved already (so no
    grub.cfg regeneration, which would run update-grub in a chroot)."""
    root = str(root)
    for release in (BOOKWORM_OLD, BOOKWORM_NEW):
        tree.write(root, '/boot/vmlinuz-' + release, 'kernel')
        tree.write(root, '/boot/initrd.img-' + release, 'initrd')
    tree.write(root, '/boot/grub/grub.cfg', BOOKWORM_GRUB_CFG_SAVED)
    tree.write(root, '/boot/grub/grubenv', grubenv_block())
    tree.write(root, '/etc/default/grub', DEBIAN_DEFAULT_GRUB.replace('\nGRUB_DEFAULT=0\n', '\nGRUB_DEFAULT=saved\n'))
    tree.write(root, '/etc/debian_version', '12.5\n')
    tree.write(root, '/proc/sys/kernel/osrelease', BOOKWORM_OLD + '\n')
    return root


def grubenv(root):
    return dict(line.split('=', 1) for line in read(root + '/boot/grub/grubenv').splitlines()
                if '=' in line and not line.startswith('#'))


@pytest.fixture(scope='module')
def node_side(ansible_216_env, node_pythons, tmp_path_factory):
    """tests/integration/playbooks/node_side.yml over both hosts: {version: what the host wrote}, roots."""
    if shutil.which('grub-reboot') is None:
        pytest.fail('grub-reboot is not installed (Debian grub2-common, tests/install-system-packages.sh)')
    work = tmp_path_factory.mktemp('node-side')
    package = work / 'linux-image-6.1.0-18-cloud-amd64_6.1.76-1_amd64.deb'
    package.write_text('not installed: the procedure runs in check mode')
    roots = dict((version, boot_tree(work / ('root-' + version))) for version in PYTHONS)
    os.mkdir(str(work / 'results'))
    path = inventory(work, node_pythons, dict(
        (version, {'boot_root': roots[version], 'boot_release': BOOKWORM_NEW}) for version in PYTHONS))
    result = succeeded(run_playbook(ansible_216_env, NODE_SIDE, path, {
        'node_side_package': str(package), 'node_side_results': str(work / 'results')}, '--check'))
    seen = dict((version, json.loads(read(work / 'results' / (HOSTS[version] + '.json')))) for version in PYTHONS)
    return seen, roots, result.stdout


def test_kernel_check_and_kernel_boot(node_side, node_pythons, version):
    seen, roots, dummy = node_side
    host = seen[version]
    assert host['python'] == node_pythons[version]
    assert '%(major)s.%(minor)s' % host['python_version'] == version
    assert host['kernel']['release'] == os.uname().release and host['kernel']['status'] == 'fixed'
    assert isinstance(host['kernel']['installed_kernels'], list)
    # check mode says what it would run; the real run runs the real GRUB tools on the fixture; then nothing to do
    assert host['boot_check']['changed'] is True
    assert [os.path.basename(c[0]) for c in host['boot_check']['commands']] == ['grub-set-default', 'grub-reboot']
    assert host['boot']['changed'] is True and host['boot']['entry_id'] == BOOKWORM_NEW_ID
    assert grubenv(roots[version]) == {'saved_entry': BOOKWORM_OLD_ID, 'next_entry': BOOKWORM_NEW_ID}
    assert host['boot_again']['changed'] is False


def test_node_procedure_in_check_mode(node_side, version):
    seen, roots, output = node_side
    assert not os.path.exists(roots[version] + '/var/tmp')  # check mode made nothing
    assert seen[version]['target'] == os.uname().release  # the running kernel is fixed: it stays
    assert output.count('would install linux-image-6.1.0-18-cloud-amd64_6.1.76-1_amd64.deb (local), then boot') == 2


# ---------------------------------------------------------------- the newest ansible-core, node Python 2.7/3.6

@pytest.fixture(scope='module')
def newest_core_detect(ansible_env, node_pythons, tmp_path_factory):
    work = tmp_path_factory.mktemp('newest-core')
    core = subprocess.run(['ansible', '--version'], env=ansible_env, stdout=subprocess.PIPE, text=True,
                          check=True).stdout.split('\n')[0]
    assert '2.16.' not in core, 'the PATH ansible must be the newest ansible-core: %s' % core
    result = run_playbook(ansible_env, DETECT, inventory(work, node_pythons),
                          {'detect_report_dir': str(work / 'report'), 'detect_cpu_interval': 0})
    assert result.returncode == 0, result.stdout  # detect records failed nodes; detect_fail_on defaults to never
    return rows(work / 'report' / 'detect.json'), result.stdout, core


def test_newest_core_names_the_node_python_and_the_fix(newest_core_detect, node_pythons, version):
    report, output, core = newest_core_detect
    row = report[HOSTS[version]]
    assert row['status'] == 'failed', row
    error = row['error']
    node_version = subprocess.run([node_pythons[version], '-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'],
                                  stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    assert error.startswith('nodeops.memcg.memcg_probe cannot run on this node: its Python is %s (%s)'
                            % (node_version, node_pythons[version])), error
    assert 'the controller runs ansible-core %s' % core.split('core ')[1].rstrip(']') in error, (error, core)
    assert 'use ansible-core 2.16' in error and 'execution-environment.yml' in error
    assert 'ansible_python_interpreter' in error
    assert 'deserialization' not in error
    assert '| %s | failed |' % HOSTS[version] in output
