"""docs/deployments/packages.md: the table of what version specifiers accept.

deployments/semver_table.py prints it with `packaging`; the page includes the
committed snippets/deployments/semver_table.md, which must be that output. The
claims the page's prose makes about the table are checked against pip's own
vendored `packaging`, the copy that decides real installs.
"""

from __future__ import annotations

import pytest
from kit.examples import assert_output_is_shown, run_program
from kit.process import ROOT
from packaging.specifiers import SpecifierSet
from pip._vendor.packaging.specifiers import SpecifierSet as PipSpecifierSet

SHOWN = ROOT / "snippets/deployments/semver_table.md"
VERSIONS = ["1.3.9", "1.4.0", "1.4.2", "1.4.2.post1", "1.4.10", "1.5.0", "1.9.1", "2.0.0"]


def test_the_page_shows_the_table_the_program_prints() -> None:
    output = run_program("deployments/semver_table.py")
    assert_output_is_shown(output, SHOWN)


def test_pip_decides_as_the_table_says() -> None:
    """Each column, filtered by pip's own copy of packaging, is the set the table marks."""
    rows = [line.split(" | ") for line in SHOWN.read_text().splitlines()[2:-1]]
    published = [row[0].removeprefix("| ") for row in rows]
    specifiers = ["~=1.4.2", "==1.4.*", ">=1.4,<2"]
    for column, specifier in enumerate(specifiers, start=1):
        marked = [row[0].removeprefix("| ") for row in rows if row[column].startswith("yes")]
        assert list(PipSpecifierSet(specifier).filter(published)) == marked, specifier


@pytest.mark.parametrize("version", VERSIONS)
def test_compatible_release_is_at_least_and_same_minor(version: str) -> None:
    """`~=1.4.2` means `>=1.4.2, ==1.4.*`, as the page says."""
    assert (version in PipSpecifierSet("~=1.4.2")) == (
        version in PipSpecifierSet(">=1.4.2,==1.4.*")
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_compatible_release_of_two_parts_leaves_the_minor_free(version: str) -> None:
    """`~=1.4` means `>=1.4, ==1.*`."""
    assert (version in PipSpecifierSet("~=1.4")) == (version in PipSpecifierSet(">=1.4,==1.*"))


def test_less_than_2_keeps_out_the_pre_releases_of_2_even_when_asked() -> None:
    assert list(PipSpecifierSet(">=1.4,<2").filter(["2.0.0rc1"], prereleases=True)) == []


def test_contains_says_a_pre_release_matches_where_filter_skips_it() -> None:
    """The page's note: packaging's contains() answers True, filter() (pip's choice) skips it."""
    assert SpecifierSet(">=1.4,<2").contains("1.5.0b1")
    assert PipSpecifierSet(">=1.4,<2").contains("1.5.0b1")
    assert list(PipSpecifierSet(">=1.4,<2").filter(["1.5.0b1", "1.5.0"])) == ["1.5.0"]


def test_a_pre_release_is_chosen_only_when_asked_or_alone() -> None:
    specifier = PipSpecifierSet(">=1.4,<2")
    assert list(specifier.filter(["1.5.0b1", "1.5.0"])) == ["1.5.0"]
    assert list(specifier.filter(["1.5.0b1", "1.5.0"], prereleases=True)) == ["1.5.0b1", "1.5.0"]
    assert list(specifier.filter(["1.5.0b1"])) == ["1.5.0b1"]  # nothing final fits
