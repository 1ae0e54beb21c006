# -*- coding: utf-8 -*-
# Copyright (c) nodeops.memcg contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.nodeops.memcg.plugins.module_utils.versions import (
    dpkg_parse,
    dpkg_vercmp,
    parse_upstream,
    release_vercmp,
    release_version,
    rpm_vercmp,
    upstream_vercmp,
)

# rpm's own suite (tests/rpmvercmp.at), then kernel releases as EL ships them.
RPM_CASES = [
    ('1.0', '1.0', 0),
    ('1.0', '2.0', -1),
    ('2.0', '1.0', 1),
    ('2.0.1', '2.0.1', 0),
    ('2.0', '2.0.1', -1),
    ('2.0.1', '2.0', 1),
    ('2.0.1a', '2.0.1a', 0),
    ('2.0.1a', '2.0.1', 1),
    ('2.0.1', '2.0.1a', -1),
    ('5.5p1', '5.5p1', 0),
    ('5.5p1', '5.5p2', -1),
    ('5.5p2', '5.5p1', 1),
    ('5.5p10', '5.5p10', 0),
    ('5.5p1', '5.5p10', -1),
    ('5.5p10', '5.5p1', 1),
    ('10xyz', '10.1xyz', -1),
    ('10.1xyz', '10xyz', 1),
    ('xyz10', 'xyz10', 0),
    ('xyz10', 'xyz10.1', -1),
    ('xyz10.1', 'xyz10', 1),
    ('xyz.4', 'xyz.4', 0),
    ('xyz.4', '8', -1),
    ('8', 'xyz.4', 1),
    ('xyz.4', '2', -1),
    ('2', 'xyz.4', 1),
    ('5.5p2', '5.6p1', -1),
    ('5.6p1', '5.5p2', 1),
    ('5.6p1', '6.5p1', -1),
    ('6.5p1', '5.6p1', 1),
    ('6.0.rc1', '6.0', 1),
    ('6.0', '6.0.rc1', -1),
    ('10b2', '10a1', 1),
    ('10a2', '10b2', -1),
    ('1.0aa', '1.0aa', 0),
    ('1.0a', '1.0aa', -1),
    ('1.0aa', '1.0a', 1),
    ('10.0001', '10.0001', 0),
    ('10.0001', '10.1', 0),
    ('10.1', '10.0001', 0),
    ('10.0001', '10.0039', -1),
    ('10.0039', '10.0001', 1),
    ('4.999.9', '5.0', -1),
    ('5.0', '4.999.9', 1),
    ('20101121', '20101121', 0),
    ('20101121', '20101122', -1),
    ('20101122', '20101121', 1),
    ('2_0', '2_0', 0),
    ('2.0', '2_0', 0),
    ('2_0', '2.0', 0),
    # RhBug:178798: separators only
    ('a', 'a', 0),
    ('a+', 'a+', 0),
    ('a+', 'a_', 0),
    ('a_', 'a+', 0),
    ('+a', '+a', 0),
    ('+a', '_a', 0),
    ('_a', '+a', 0),
    ('+_', '+_', 0),
    ('_+', '+_', 0),
    ('_+', '_+', 0),
    ('+', '_', 0),
    ('_', '+', 0),
    # tilde sorts before everything, even the end
    ('1.0~rc1', '1.0~rc1', 0),
    ('1.0~rc1', '1.0', -1),
    ('1.0', '1.0~rc1', 1),
    ('1.0~rc1', '1.0~rc2', -1),
    ('1.0~rc2', '1.0~rc1', 1),
    ('1.0~rc1~git123', '1.0~rc1~git123', 0),
    ('1.0~rc1~git123', '1.0~rc1', -1),
    ('1.0~rc1', '1.0~rc1~git123', 1),
    # caret sorts after the end, before anything else
    ('1.0^', '1.0^', 0),
    ('1.0^', '1.0', 1),
    ('1.0', '1.0^', -1),
    ('1.0^git1', '1.0^git1', 0),
    ('1.0^git1', '1.0', 1),
    ('1.0', '1.0^git1', -1),
    ('1.0^git1', '1.0^git2', -1),
    ('1.0^git2', '1.0^git1', 1),
    ('1.0^git1', '1.01', -1),
    ('1.01', '1.0^git1', 1),
    ('1.0^20160101', '1.0^20160101', 0),
    ('1.0^20160101', '1.0.1', -1),
    ('1.0.1', '1.0^20160101', 1),
    ('1.0^20160101^git1', '1.0^20160101^git1', 0),
    ('1.0^20160102', '1.0^20160101^git1', 1),
    ('1.0^20160101^git1', '1.0^20160102', -1),
    ('1.0~rc1^git1', '1.0~rc1^git1', 0),
    ('1.0~rc1^git1', '1.0~rc1', 1),
    ('1.0~rc1', '1.0~rc1^git1', -1),
    ('1.0^git1~pre', '1.0^git1~pre', 0),
    ('1.0^git1', '1.0^git1~pre', 1),
    ('1.0^git1~pre', '1.0^git1', -1),
    # kernel releases: never by string
    ('4.18.0-147.5.1', '4.18.0-176', -1),
    ('147.5.1', '176', -1),
    ('193', '176', 1),
    ('176', '176', 0),
    ('3.10.0-1160.el7', '3.10.0-957.el7', 1),
    ('3.10.0-957.el7', '3.10.0-1160.el7', -1),
    ('4.18.0-553.5.1.el8_10', '4.18.0-553.el8_10', 1),
    ('4.18.0-193.28.1.el8_2', '4.18.0-193.el8', 1),
    ('5.4.17-2136.330.7.5.el8uek', '5.4.17-2136.330.7.el8uek', 1),
    ('1.0', '1.0.0', -1),
]

# dpkg --compare-versions gives the same answers (checked with dpkg 1.21).
DPKG_CASES = [
    ('0', '0', 0),
    ('0', '00', 0),
    ('0:0-0', '0', 0),
    ('0:0', '0', 0),
    ('1.0', '1.0', 0),
    ('1.0', '1.1', -1),
    ('1.10', '1.9', 1),
    ('1:1.0', '2.0', 1),
    ('1:0.1', '1:0.2', -1),
    ('2:1.0', '1:9.9', 1),
    ('0:1.0', '1.0', 0),
    ('1.0~rc1', '1.0', -1),
    ('1.0~rc1', '1.0~rc2', -1),
    ('1.0~~', '1.0~', -1),
    ('1.0~', '1.0', -1),
    ('1.0~~a', '1.0~', -1),
    ('1.0', '1.0+b1', -1),
    ('1.0+b1', '1.0.1', -1),
    ('1.0a', '1.0', 1),
    ('1.0a', '1.0b', -1),
    ('1.0a', '1.0+', -1),
    ('1.0a', '1.0.', -1),
    ('1.0A', '1.0a', -1),
    ('1.0.', '1.0+', 1),
    ('1.0-1', '1.0-2', -1),
    ('1.0-10', '1.0-9', 1),
    ('1.0-1', '1.0', 1),
    ('1.0-0', '1.0', 0),
    ('1.0-1ubuntu1', '1.0-1', 1),
    ('1.0-1~bpo1', '1.0-1', -1),
    ('1.0-a', '1.0-b', -1),
    ('1.0-1.1', '1.0-1', 1),
    ('1.0-0001', '1.0-1', 0),
    ('1-2-3', '1-2-4', -1),
    ('1-2-3', '1-3', 1),  # upstream 1-2 > 1
    ('5.4.0-42.46~18.04.1', '5.4.0-42.46', -1),
    ('5.4.0-42.46~18.04.1', '5.4.0-42.46~18.04.2', -1),
    ('5.4.0-150.167~18.04.1', '5.4.0-42.46~18.04.1', 1),
    ('4.15.0-213.224', '5.4.0-42.46~18.04.1', -1),
    ('4.19.304-1', '4.19.289-2', 1),
    ('5.10.209-2', '5.10.209-2~bpo10+1', 1),
    ('5.10.179-1~deb10u1', '5.10.179-1', -1),
    ('6.1.76-1', '6.1.76-1+b1', -1),
    (' 1.0-1', '1.0-1 ', 0),
]


@pytest.mark.parametrize('a, b, expected', RPM_CASES)
def test_rpm_vercmp(a, b, expected):
    assert rpm_vercmp(a, b) == expected


@pytest.mark.parametrize('a, b, expected', DPKG_CASES)
def test_dpkg_vercmp(a, b, expected):
    assert dpkg_vercmp(a, b) == expected
    swapped_left, swapped_right = b, a
    assert dpkg_vercmp(swapped_left, swapped_right) == -expected


@pytest.mark.parametrize('version, parsed', [
    ('0', (0, '0', '')),
    ('1:0', (1, '0', '')),
    ('0:0-0-0', (0, '0-0', '0')),
    ('0:0:0-0', (0, '0:0', '0')),
    ('5.4.0-42.46~18.04.1', (0, '5.4.0', '42.46~18.04.1')),
])
def test_dpkg_parse(version, parsed):
    assert dpkg_parse(version) == parsed


@pytest.mark.parametrize('version', ['', '  ', 'a:0-0', ':1.0', '0:', '-0', '0:-0'])
def test_dpkg_parse_rejects(version):
    with pytest.raises(ValueError) as err:
        dpkg_parse(version)
    assert repr(version) in str(err.value)


@pytest.mark.parametrize('text, parsed', [
    ('5.4.0-150-generic', (5, 4, 0)),
    ('6.18', (6, 18, 0)),
    ('4.19.91-27.al7.x86_64', (4, 19, 91)),
    ('3.10.0-1160.el7.x86_64', (3, 10, 0)),
    ('garbage', None),
    ('5', None),
])
def test_parse_upstream(text, parsed):
    assert parse_upstream(text) == parsed


@pytest.mark.parametrize('a, b, expected', [
    ('4.16', '4.16.0', 0),
    ('4.15.18', '4.16', -1),
    ('5.10', '5.2', 1),
    ('5.1.21', '5.2', -1),
    ((5, 13), '5.13.0', 0),
    ('6.18.44-fc-v657', '5.2', 1),
])
def test_upstream_vercmp(a, b, expected):
    assert upstream_vercmp(a, b) == expected


def test_upstream_vercmp_names_bad_value():
    with pytest.raises(ValueError, match="'five'"):
        upstream_vercmp('five', '5.2')


# Kernel releases as uname -r prints them, ordered the way the node procedure ranks its candidates.
@pytest.mark.parametrize('a, b, family, expected', [
    ('5.4.99-1.el7.elrepo.x86_64', '5.4.278-1.el7.elrepo.x86_64', 'el', -1),
    ('4.18.0-240.el8.x86_64', '4.18.0-240.1.1.el8_3.x86_64', 'el', -1),
    # the regex ranking this replaces tied these two
    ('4.18.0-240.el8.x86_64', '4.18.0-240.el8_2.x86_64', 'el', -1),
    ('4.18.0-240.el8_2.x86_64', '4.18.0-240.1.1.el8_3.x86_64', 'el', -1),
    ('4.18.0-1160.el8.x86_64', '4.18.0-176.el8.x86_64', 'el', 1),
    ('3.10.0-1160.el7.x86_64', '3.10.0-1160.el7.x86_64', 'el', 0),
    ('5.10.215-203.850.amzn2.x86_64', '5.10.210-201.855.amzn2.x86_64', 'el', 1),
    ('6.1.0-17-cloud-amd64', '6.1.0-18-cloud-amd64', 'debian', -1),
    ('6.1.0-9-amd64', '6.1.0-18-amd64', 'debian', -1),
    ('5.10.0-0.deb10.27-amd64', '5.10.0-0.deb10.28-amd64', 'debian', -1),
    ('5.4.0-150-generic', '5.4.0-1100-aws', 'debian', -1),
    # flavours of one build: no order between them
    ('5.4.0-150-generic', '5.4.0-150-lowlatency', 'debian', 0),
    ('4.15.0-213-generic', '5.4.0-150-generic', 'debian', -1),
])
def test_release_vercmp(a, b, family, expected):
    assert release_vercmp(a, b, family) == expected
    swapped = (b, a)
    assert release_vercmp(swapped[0], swapped[1], family) == -expected


@pytest.mark.parametrize('release, version', [
    ('6.1.0-18-cloud-amd64', '6.1.0-18'),
    ('5.10.0-0.deb10.28-amd64', '5.10.0-0.deb10.28'),
    ('5.4.0-150-generic', '5.4.0-150'),
    ('6.1.0-18', '6.1.0-18'),
])
def test_release_version_drops_the_debian_flavour(release, version):
    assert release_version(release, 'debian') == version
    assert release_version(release, 'el') == release


def test_release_vercmp_names_an_unknown_family():
    with pytest.raises(ValueError) as caught:
        release_vercmp('1.0', '1.1', 'suse')
    assert "'suse'" in str(caught.value)
