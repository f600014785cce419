"""``flowrun instances`` filters and says when the list is cut; ``compare --pilot`` refuses a pilot with no cases."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import CliCall
from tests.helpers import cli_json


def start(cli: CliCall, project_dir: Path, target: str, *args: str) -> str:
    return str(cli_json(cli(project_dir, "start", target, "--json", *args))["id"])


def ids(cli: CliCall, project_dir: Path, *args: str) -> list[str]:
    return [r["id"] for r in cli_json(cli(project_dir, "instances", "--json", *args))]


def test_filters_by_process_variant_pilot_and_status(cli, project_dir):
    north = start(cli, project_dir, "complaint:baseline", "--pilot", "north")
    south = start(cli, project_dir, "complaint:reengineered", "--pilot", "south")
    other = start(cli, project_dir, "complaint:baseline")
    assert cli(project_dir, "cancel", other, "--reason", "test call").exit_code == 0
    assert set(ids(cli, project_dir, "--process", "complaint")) == {north, south, other}
    assert set(ids(cli, project_dir, "--variant", "baseline")) == {north, other}
    assert ids(cli, project_dir, "--pilot", "south") == [south]
    assert ids(cli, project_dir, "--status", "cancelled") == [other]
    assert ids(cli, project_dir, "--process", "complaint", "--variant", "baseline", "--status", "running") == [north]


def test_unknown_process_or_variant_lists_the_known_ones(cli, project_dir):
    start(cli, project_dir, "complaint:baseline")
    family = cli(project_dir, "instances", "--process", "complain")
    assert family.exit_code == 1
    assert "no process family 'complain'" in family.stderr
    assert "complaint" in family.stderr
    variant = cli(project_dir, "instances", "--variant", "basline")
    assert variant.exit_code == 1
    assert "baseline" in variant.stderr
    assert "reengineered" in variant.stderr


def test_a_cut_list_says_how_many_there_are(cli, project_dir):
    for _ in range(4):
        start(cli, project_dir, "complaint:baseline")
    result = cli(project_dir, "instances", "--limit", "3")
    assert result.exit_code == 0, result.stderr
    assert "4 instance(s)" in result.stdout
    assert result.stderr.strip() == "3 of 4 shown; use --limit"
    whole = cli(project_dir, "instances")
    assert whole.stderr == ""


def test_compare_with_an_unknown_pilot_is_an_error_listing_the_pilots(cli, project_dir):
    start(cli, project_dir, "complaint:baseline", "--pilot", "north")
    start(cli, project_dir, "complaint:reengineered", "--pilot", "south")
    result = cli(project_dir, "compare", "complaint", "--pilot", "west")
    assert result.exit_code == 1, result.stdout
    assert result.stderr.startswith("error: ")
    assert "no cases of pilot 'west'" in result.stderr
    assert "north, south" in result.stderr
    assert result.stdout == ""
