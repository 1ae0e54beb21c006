# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils import mitigation, probe
from ansible_collections.nodeops.memcg.plugins.module_utils.errors import MemcgError
from ansible_collections.nodeops.memcg.tests.unit.fixtures import memcg_tree as tree

OLD = 1000000000  # an mtime far in the past: any write moves it
FIXED_KERNEL = '5.4.0-100-generic'  # fixed: dying memcgs give warn at most
LIVE = len(tree.KUBEPODS_V1)
NO_REAPER = mitigation.discover_reaper('/nonexistent')


def node(tmp_path, dying=6000, reaper=None, release=FIXED_KERNEL):
    """A v1 node with `dying` dying memcgs, a drop_caches file, and optionally the memcg reaper.

    reaper: None (absent) or a dict of reaper file -> content.
    """
    root = tree.build_node(tmp_path, memory_num_cgroups=LIVE + dying, release=release, cmdline='ro quiet\0')
    files = {'/proc/sys/vm/drop_caches': '0\n'}
    for name, text in (reaper or {}).items():
        files[mitigation.REAPER_DIR + '/' + name] = text
    for path, text in files.items():
        os.utime(tree.write(root, path, text), (OLD, OLD))
    return root


def reaper_files(background='0\n'):
    files = {'reap': '', 'scan_interval': '5\n', 'pages_scan': '1310720\n', 'verbose': '0\n'}
    if background is not None:
        files['reap_background'] = background
    return files


def state_of(root, path):
    """(content, mtime) of a file under root."""
    full = os.path.join(root, path.lstrip('/'))
    with open(full) as handle:
        return handle.read(), os.stat(full).st_mtime


def untouched(root, path, content):
    return state_of(root, path) == (content, OLD)


class Calls(object):
    """Records the side effects run_mitigation() is handed."""

    def __init__(self):
        self.log = []

    def sync(self):
        self.log.append(('sync',))

    def sleep(self, seconds):
        self.log.append(('sleep', seconds))


def run(root, calls=None, **kwargs):
    calls = calls or Calls()
    kwargs.setdefault('settle_seconds', 0.5)
    return mitigation.run_mitigation(root, kwargs.pop('level', 2), calls.sync, calls.sleep, **kwargs)


# validate

def test_validate_returns_the_merged_thresholds():
    assert mitigation.validate() == probe.DEFAULT_THRESHOLDS
    assert mitigation.validate(3, 'critical', 'never', 0, 2.5, 0, {'warn_dying': 7})['warn_dying'] == 7


@pytest.mark.parametrize('kwargs, message', [
    ({'level': 4}, 'level must be one of 1, 2, 3, got 4'),
    ({'level': 0}, 'got 0'),
    ({'level': True}, 'got True'),
    ({'level': '2'}, "got '2'"),
    ({'min_verdict': 'major'}, "min_verdict must be one of warn, critical, got 'major'"),
    ({'min_verdict': 'ok'}, "got 'ok'"),
    ({'reaper_mode': 'sometimes'}, "reaper must be one of before, instead, never, got 'sometimes'"),
    ({'settle_seconds': -1}, 'settle_seconds must be between 0 and 300, got -1'),
    ({'settle_seconds': 301}, 'settle_seconds must be between 0 and 300, got 301'),
    ({'settle_seconds': float('inf')}, 'settle_seconds must be a finite number, got inf'),
    ({'settle_seconds': float('nan')}, 'settle_seconds must be a finite number, got nan'),
    ({'settle_seconds': 'soon'}, "settle_seconds must be a finite number, got 'soon'"),
    ({'cpu_interval_s': -0.5}, 'cpu_interval must be between 0 and 60 seconds, got -0.5'),
    ({'cpu_interval_s': float('inf')}, 'cpu_interval must be a finite number, got inf'),
    ({'cpu_interval_s': 61}, 'cpu_interval must be between 0 and 60 seconds, got 61'),
    ({'read_timeout_s': 0.2}, 'read_timeout must be over critical_read_ms (1.0 s)'),
    ({'read_timeout_s': float('nan')}, 'read_timeout must be a finite number, got nan'),
    ({'stat_reads': 6}, 'stat_reads must be between 0 and 5, got 6'),
    ({'thresholds': {'warn_dying': -3}}, 'warn_dying must not be negative, got -3'),
    ({'thresholds': {'warn_dyin': 3}}, "unknown threshold 'warn_dyin'"),
])
def test_validate_names_the_bad_value(kwargs, message):
    with pytest.raises(MemcgError) as caught:
        mitigation.validate(**kwargs)
    assert message in str(caught.value)


# gate

@pytest.mark.parametrize('verdict, min_verdict, force, is_open', [
    ('ok', 'warn', False, False),
    ('warn', 'warn', False, True),
    ('critical', 'warn', False, True),
    ('ok', 'critical', False, False),
    ('warn', 'critical', False, False),
    ('critical', 'critical', False, True),
    ('ok', 'warn', True, True),
    ('warn', 'critical', True, True),
])
def test_gate_opens_from_min_verdict_or_force(verdict, min_verdict, force, is_open):
    result = mitigation.gate(verdict, min_verdict, force, ['a reason'])
    assert result['open'] is is_open
    assert result['forced'] is force
    assert result['verdict'] == verdict and result['min_verdict'] == min_verdict
    assert result['reasons'] == ['a reason']
    if force:  # both forced cases are below min_verdict
        assert result['decision'] == 'Verdict %s is below min_verdict %s, but force is set.' % (verdict, min_verdict)
    elif is_open:
        assert result['decision'] == 'Verdict %s reaches min_verdict %s.' % (verdict, min_verdict)
    else:
        assert result['decision'] == 'Verdict %s is below min_verdict %s.' % (verdict, min_verdict)


def test_gate_rejects_unknown_verdicts():
    with pytest.raises(MemcgError) as caught:
        mitigation.gate('bad', 'warn')
    assert "'bad'" in str(caught.value)
    with pytest.raises(MemcgError) as caught:
        mitigation.gate('warn', 'ok')
    assert "min_verdict must be one of warn, critical, got 'ok'" in str(caught.value)


# plan

REAPER = {'available': True, 'path': mitigation.REAPER_DIR, 'reap_background': 0,
          'scan_interval': 5, 'pages_scan': 1310720}


@pytest.mark.parametrize('is_open, reaper, mode, reap, drop', [
    (True, REAPER, 'before', True, True),
    (True, REAPER, 'instead', True, False),
    (True, REAPER, 'never', False, True),
    (True, NO_REAPER, 'before', False, True),
    (True, NO_REAPER, 'instead', False, True),  # no reaper: drop after all
    (False, REAPER, 'before', False, False),
    (False, REAPER, 'instead', False, False),
    (False, NO_REAPER, 'never', False, False),
])
def test_plan_reaper_modes(is_open, reaper, mode, reap, drop):
    actions = mitigation.plan({'open': is_open}, reaper, mode)
    assert actions == {'reap': reap, 'drop': drop, 'enable_background': False}


def test_plan_background_is_not_gated_and_idempotent():
    closed = {'open': False}
    assert mitigation.plan(closed, REAPER, 'never', True)['enable_background'] is True
    assert mitigation.plan(closed, dict(REAPER, reap_background=1), 'never', True)['enable_background'] is False
    assert mitigation.plan(closed, REAPER, 'never', False)['enable_background'] is False
    assert mitigation.plan(closed, NO_REAPER, 'never', True)['enable_background'] is False
    with pytest.raises(MemcgError) as caught:
        mitigation.plan(closed, dict(REAPER, reap_background=None), 'never', True)
    assert 'reap_background is missing' in str(caught.value)


def test_plan_sentences():
    opened = mitigation.gate('warn', 'warn')
    actions = {'reap': True, 'drop': True, 'enable_background': False}
    assert mitigation.plan_sentence(opened, actions, 2) == (
        'Verdict warn reaches min_verdict warn: would reap zombie memory cgroups with the memcg reaper, '
        'would drop caches (level 2).')
    assert mitigation.plan_sentence(opened, dict(actions, drop=False), 2, True, True, 'instead') == (
        'Verdict warn reaches min_verdict warn: reaped zombie memory cgroups with the memcg reaper, '
        'caches not dropped (reaper: instead).')
    assert mitigation.plan_sentence(opened, dict(actions, reap=False), 3, True, False, 'instead') == (
        'Verdict warn reaches min_verdict warn: dropped caches (level 3), '
        'no memcg reaper on this kernel (reaper: instead), so caches are dropped.')
    closed = mitigation.gate('ok', 'warn')
    nothing = {'reap': False, 'drop': False, 'enable_background': True}
    assert mitigation.plan_sentence(closed, nothing, 2) == (
        'Verdict ok is below min_verdict warn: would enable background reaping (reap_background 1), '
        'nothing dropped (force: true drops anyway).')
    forced = mitigation.gate('ok', 'critical', True)
    assert mitigation.plan_sentence(forced, {'reap': False, 'drop': True, 'enable_background': False}, 1, True) == (
        'Verdict ok is below min_verdict critical, but force is set: dropped caches (level 1).')


# snapshot and delta

FACTS = {
    'memcg': {'total': 6008, 'live': 8, 'dying': 6000, 'source': 'proc_cgroups_minus_live_dirs'},
    'slab': {'slab_kb': 1000, 'sreclaimable_kb': 900, 'sunreclaim_kb': 100},
    'dentry': {'nr_dentry': 5000, 'nr_unused': 4000, 'nr_negative': 0},
    'read_latency': {'root': {'path': '/sys/fs/cgroup/memory/memory.stat', 'reads': 1, 'ms': [2.5],
                              'max_ms': 2.5, 'slow': False}, 'kubepods': None},
    'verdict': 'warn',
}


def test_snapshot_keeps_the_compared_figures():
    assert mitigation.snapshot(FACTS) == {
        'memcg': {'total': 6008, 'live': 8, 'dying': 6000},
        'slab': {'slab_kb': 1000, 'sreclaimable_kb': 900, 'sunreclaim_kb': 100},
        'dentry': {'nr_dentry': 5000, 'nr_unused': 4000},
        'root_read_ms': 2.5, 'root_read_timed_out': False,
        'verdict': 'warn',
    }
    untimed = dict(FACTS, read_latency={'root': None, 'kubepods': None}, memcg={'total': None})
    snap = mitigation.snapshot(untimed)
    assert snap['root_read_ms'] is None and snap['memcg'] == {'total': None, 'live': None, 'dying': None}


def test_delta_is_after_minus_before():
    before = mitigation.snapshot(FACTS)
    after = mitigation.snapshot(dict(
        FACTS, memcg={'total': 3008, 'live': 8, 'dying': 3000},
        slab={'slab_kb': 400, 'sreclaimable_kb': 290, 'sunreclaim_kb': 110},
        dentry={'nr_dentry': 900, 'nr_unused': 100},
        read_latency={'root': dict(FACTS['read_latency']['root'], max_ms=1.2)}))
    assert mitigation.delta(before, after) == {
        'dying': -3000, 'total': -3000, 'slab_kb': -600, 'sreclaimable_kb': -610, 'sunreclaim_kb': 10,
        'nr_dentry': -4100, 'root_read_ms': -1.3}
    assert mitigation.delta(before, None) is None
    untimed = dict(after, root_read_ms=None, memcg={'total': None, 'live': None, 'dying': None})
    changed = mitigation.delta(before, untimed)
    assert changed['root_read_ms'] is None and changed['dying'] is None and changed['slab_kb'] == -600


# files under root

def test_write_value_writes_exactly_the_value(tmp_path):
    root = node(tmp_path)
    full = mitigation.drop_caches(root, 3)
    assert full == os.path.join(root, 'proc/sys/vm/drop_caches')
    assert state_of(root, mitigation.DROP_CACHES)[0] == '3'


def test_write_value_never_creates_a_file(tmp_path):
    with pytest.raises(MemcgError) as caught:
        mitigation.write_value(str(tmp_path), '/proc/sys/vm/drop_caches', 2)
    assert str(tmp_path / 'proc/sys/vm/drop_caches') in str(caught.value)
    assert not (tmp_path / 'proc').exists()


def test_drop_caches_refuses_a_bad_level(tmp_path):
    root = node(tmp_path)
    with pytest.raises(MemcgError) as caught:
        mitigation.drop_caches(root, 4)
    assert 'got 4' in str(caught.value)
    assert untouched(root, mitigation.DROP_CACHES, '0\n')


def test_discover_reaper(tmp_path):
    assert NO_REAPER == {'available': False, 'path': mitigation.REAPER_DIR, 'reap_background': None,
                         'scan_interval': None, 'pages_scan': None}
    root = node(tmp_path, reaper=reaper_files('1\n'))
    assert mitigation.discover_reaper(root) == {'available': True, 'path': mitigation.REAPER_DIR,
                                                'reap_background': 1, 'scan_interval': 5, 'pages_scan': 1310720}
    os.remove(os.path.join(root, mitigation.REAPER_DIR.lstrip('/'), 'reap'))
    assert mitigation.discover_reaper(root)['available'] is False


def test_reaper_paths_are_under_root():
    paths = mitigation.reaper_paths('/host')
    assert paths['dir'] == '/host/sys/kernel/mm/memcg_reaper'
    assert paths['reap'] == '/host/sys/kernel/mm/memcg_reaper/reap'
    assert paths['reap_background'] == '/host/sys/kernel/mm/memcg_reaper/reap_background'
    assert mitigation.reaper_paths('/')['pages_scan'] == '/sys/kernel/mm/memcg_reaper/pages_scan'


def test_is_real_root(tmp_path):
    assert mitigation.is_real_root('/') and mitigation.is_real_root('')
    assert not mitigation.is_real_root(str(tmp_path))
    os.symlink('/', str(tmp_path / 'host'))
    assert mitigation.is_real_root(str(tmp_path / 'host'))


# run_mitigation on fixture trees

def test_check_mode_decides_and_writes_nothing(tmp_path):
    root = node(tmp_path, reaper=reaper_files('0\n'))
    calls = Calls()
    result = run(root, calls, check_mode=True, reaper_background=True)
    assert result['changed'] is True
    assert result['would_drop'] is True and result['dropped'] is False
    assert result['reaper']['would_reap'] is True and result['reaper']['reaped'] is False
    assert result['reaper']['background'] == {'requested': True, 'before': 0, 'after': 1}
    assert result['after'] is None and result['delta'] is None
    assert result['before']['memcg'] == {'total': LIVE + 6000, 'live': LIVE, 'dying': 6000}
    assert result['gate']['decision'].startswith('Verdict warn reaches min_verdict warn: would enable')
    assert calls.log == []
    assert untouched(root, mitigation.DROP_CACHES, '0\n')
    assert untouched(root, mitigation.REAPER_DIR + '/reap', '')
    assert untouched(root, mitigation.REAPER_DIR + '/reap_background', '0\n')


def test_real_run_drops_settles_and_measures_again(tmp_path):
    root = node(tmp_path, dying=6000)
    released = []

    class Releasing(Calls):
        def sleep(self, seconds):
            # the kernel frees memcgs while we wait: the after-measurement must see it
            Calls.sleep(self, seconds)
            tree.write(root, '/proc/cgroups', tree.PROC_CGROUPS_CENTOS7.format(memory=LIVE + 500))
            tree.write(root, '/proc/meminfo', tree.MEMINFO.replace('1301220', '301220').replace('1412332', '412332'))
            released.append(state_of(root, mitigation.DROP_CACHES)[0])

    calls = Releasing()
    result = run(root, calls, level=2, settle_seconds=1.5)
    assert released == ['2']  # dropped before the settle wait
    assert calls.log == [('sleep', 1.5)]  # root is not /: no sync
    assert result['changed'] is True and result['dropped'] is True and result['would_drop'] is True
    assert result['level'] == 2
    assert state_of(root, mitigation.DROP_CACHES)[0] == '2'
    assert result['after']['memcg'] == {'total': LIVE + 500, 'live': LIVE, 'dying': 500}
    assert result['delta']['dying'] == -5500 and result['delta']['total'] == -5500
    assert result['delta']['slab_kb'] == -1000000 and result['delta']['sreclaimable_kb'] == -1000000
    assert result['delta']['sunreclaim_kb'] == 0
    assert result['after']['verdict'] == 'ok'
    assert result['sync'] == {'requested': True, 'ran': False,
                              'note': 'root is %s, not /: sync skipped (a tree under another root needs none)' % root}
    assert result['gate']['decision'] == (
        'Verdict warn reaches min_verdict warn: dropped caches (level 2).')


def test_sync_runs_first_when_root_is_the_real_root(tmp_path, monkeypatch):
    root = node(tmp_path)
    seen = []

    class Syncing(Calls):
        def sync(self):
            Calls.sync(self)
            seen.append(state_of(root, mitigation.DROP_CACHES)[0])

    monkeypatch.setattr(mitigation, 'is_real_root', lambda path: True)
    calls = Syncing()
    result = run(root, calls, level=1)
    assert calls.log == [('sync',), ('sleep', 0.5)]
    assert seen == ['0\n']  # sync ran before the write
    assert result['sync'] == {'requested': True, 'ran': True, 'note': 'ran sync before drop_caches'}
    assert state_of(root, mitigation.DROP_CACHES)[0] == '1'

    result = run(node(tmp_path / 'other'), Calls(), sync=False)
    assert result['sync']['ran'] is False and result['sync']['note'].startswith('sync is false')

    calls = Calls()
    result = run(node(tmp_path / 'reaper', reaper=reaper_files()), calls, reaper_mode='instead')
    assert calls.log == [('sleep', 0.5)]  # reaping alone needs no sync
    assert result['sync'] == {'requested': True, 'ran': False, 'note': 'nothing to drop, so no sync'}


def test_a_failing_sync_stops_before_any_write(tmp_path, monkeypatch):
    root = node(tmp_path, reaper=reaper_files())

    class Failing(Calls):
        def sync(self):
            raise MemcgError('sync failed with rc 1')

    monkeypatch.setattr(mitigation, 'is_real_root', lambda path: True)
    with pytest.raises(MemcgError) as caught:
        run(root, Failing(), reaper_background=True)
    assert str(caught.value) == 'sync failed with rc 1'
    assert untouched(root, mitigation.DROP_CACHES, '0\n')
    assert untouched(root, mitigation.REAPER_DIR + '/reap', '')
    assert untouched(root, mitigation.REAPER_DIR + '/reap_background', '0\n')


def test_after_measurement_reads_memory_stat_at_most_stat_reads_times(tmp_path):
    root = node(tmp_path)
    seen = []

    def collect(**kwargs):
        facts = probe.collect(**kwargs)
        seen.append((kwargs['stat_reads'], kwargs['cpu_interval_s'], facts['read_latency']['root']['reads']))
        return facts

    result = run(root, stat_reads=2, cpu_interval_s=0.2, collect_fn=collect, kubelet_pid=999999)
    assert seen == [(2, 0.2, 2), (2, 0, 2)]  # before samples kubelet, after does not
    assert result['after']['root_read_ms'] is not None


def test_stat_reads_zero_times_nothing(tmp_path):
    result = run(node(tmp_path), stat_reads=0)
    assert result['before']['root_read_ms'] is None and result['after']['root_read_ms'] is None
    assert result['delta']['root_read_ms'] is None


def test_gated_off_below_min_verdict(tmp_path):
    root = node(tmp_path, dying=10)
    calls = Calls()
    result = run(root, calls)
    assert result['gate']['verdict'] == 'ok' and result['gate']['open'] is False
    assert result['changed'] is False and result['dropped'] is False and result['would_drop'] is False
    assert result['after'] is None and result['delta'] is None
    assert result['gate']['decision'] == (
        'Verdict ok is below min_verdict warn: nothing dropped (force: true drops anyway).')
    assert calls.log == []
    assert untouched(root, mitigation.DROP_CACHES, '0\n')


def test_warn_is_below_min_verdict_critical(tmp_path):
    root = node(tmp_path, dying=6000)
    result = run(root, min_verdict='critical')
    assert result['gate']['verdict'] == 'warn' and result['changed'] is False
    assert untouched(root, mitigation.DROP_CACHES, '0\n')
    # the same count on a severe kernel is critical: the gate opens
    result = run(node(tmp_path / 'el7', dying=30000, release='3.10.0-1160.el7.x86_64'), min_verdict='critical')
    assert result['gate']['verdict'] == 'critical' and result['dropped'] is True


def test_force_overrides_the_gate(tmp_path):
    root = node(tmp_path, dying=10)
    result = run(root, force=True, level=3)
    assert result['gate']['verdict'] == 'ok' and result['gate']['forced'] is True
    assert result['changed'] is True and result['dropped'] is True
    assert state_of(root, mitigation.DROP_CACHES)[0] == '3'
    assert result['delta']['dying'] == 0


@pytest.mark.parametrize('mode, reaped, dropped', [
    ('before', True, True),
    ('instead', True, False),
    ('never', False, True),
])
def test_reaper_modes_on_a_reaper_kernel(tmp_path, mode, reaped, dropped):
    root = node(tmp_path, reaper=reaper_files('0\n'))
    order = []

    class Watching(Calls):
        def sleep(self, seconds):
            order.append((state_of(root, mitigation.REAPER_DIR + '/reap')[0],
                          state_of(root, mitigation.DROP_CACHES)[0]))

    result = run(root, Watching(), reaper_mode=mode)
    assert result['changed'] is True
    assert result['reaper']['available'] is True and result['reaper']['mode'] == mode
    assert result['reaper']['reaped'] is reaped and result['reaper']['would_reap'] is reaped
    assert result['dropped'] is dropped and result['would_drop'] is dropped
    assert result['reaper']['scan_interval'] == 5 and result['reaper']['pages_scan'] == 1310720
    assert result['reaper']['background'] == {'requested': False, 'before': 0, 'after': 0}
    assert order == [('1' if reaped else '', '2' if dropped else '0\n')]
    assert result['after'] is not None
    if not reaped:
        assert untouched(root, mitigation.REAPER_DIR + '/reap', '')
    if not dropped:
        assert untouched(root, mitigation.DROP_CACHES, '0\n')
        assert result['sync']['ran'] is False


def test_reaper_instead_without_a_reaper_drops(tmp_path):
    root = node(tmp_path)
    result = run(root, reaper_mode='instead', reaper_background=True)
    assert result['reaper']['available'] is False and result['reaper']['reaped'] is False
    assert result['reaper']['background'] == {'requested': True, 'before': None, 'after': None}
    assert result['dropped'] is True
    assert 'no memcg reaper on this kernel' in result['gate']['decision']


def test_reaper_background_is_switched_on_once(tmp_path):
    root = node(tmp_path, dying=10, reaper=reaper_files('0\n'))
    result = run(root, reaper_background=True)
    assert result['gate']['open'] is False
    assert result['changed'] is True and result['dropped'] is False and result['reaper']['reaped'] is False
    assert result['reaper']['background'] == {'requested': True, 'before': 0, 'after': 1}
    assert state_of(root, mitigation.REAPER_DIR + '/reap_background')[0] == '1'
    assert result['after'] is None  # nothing dropped or reaped: no second measurement
    os.utime(os.path.join(root, mitigation.REAPER_DIR.lstrip('/'), 'reap_background'), (OLD, OLD))

    again = run(root, reaper_background=True)
    assert again['changed'] is False
    assert again['reaper']['background'] == {'requested': True, 'before': 1, 'after': 1}
    assert untouched(root, mitigation.REAPER_DIR + '/reap_background', '1')


def test_a_failed_write_says_what_was_already_done(tmp_path):
    root = node(tmp_path, reaper=reaper_files())
    os.remove(os.path.join(root, 'proc/sys/vm/drop_caches'))
    with pytest.raises(MemcgError) as caught:
        run(root)
    message = str(caught.value)
    assert 'cannot open %s/proc/sys/vm/drop_caches for writing' % root in message
    assert message.endswith('(already done: reaper triggered)')


@pytest.mark.parametrize('kwargs, message', [
    ({'level': 4}, 'got 4'),
    ({'min_verdict': 'major'}, "'major'"),
    ({'settle_seconds': -2.0}, 'got -2.0'),
    ({'thresholds': {'critical_dying': -1}}, 'critical_dying must not be negative, got -1'),
    ({'reaper_mode': 'always'}, "'always'"),
])
def test_bad_input_fails_before_anything_is_read_or_written(tmp_path, kwargs, message):
    root = node(tmp_path, reaper=reaper_files())
    calls = Calls()
    measured = []

    def collect(**kw):
        measured.append(kw)
        return probe.collect(**kw)

    with pytest.raises(MemcgError) as caught:
        run(root, calls, collect_fn=collect, force=True, **kwargs)
    assert message in str(caught.value)
    assert measured == [] and calls.log == []
    assert untouched(root, mitigation.DROP_CACHES, '0\n')
    assert untouched(root, mitigation.REAPER_DIR + '/reap', '')
