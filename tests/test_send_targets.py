"""``flowrun send``: a message reaches exactly one case (by id, key or correlation); a signal reaches all."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import Result

from flowrun import app
from flowrun.app.correlation import matches
from tests.conftest import ON_POSTGRES
from tests.helpers import cli_json, db_path, query

EVENTS = Path(__file__).parent / "data" / "events"


def add(project_dir: Path, *names: str) -> None:
    for name in names:
        shutil.copy(EVENTS / f"{name}.bpmn", project_dir / "processes" / f"{name}.bpmn")


def set_key(project_dir: Path, instance: str, key: str) -> None:
    """Give a case its business key in the database (as ``flowrun start --key`` stores it)."""
    if ON_POSTGRES:
        query(project_dir, "UPDATE instances SET business_key = ? WHERE id = ? RETURNING id", key, instance)
        return
    conn = sqlite3.connect(db_path(project_dir))
    with conn:
        conn.execute("UPDATE instances SET business_key = ? WHERE id = ?", (key, instance))
    conn.close()


def refused(result: Result, *needles: str) -> str:
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
    return result.stderr


def waiting(project: app.Project, instance: str) -> bool:
    return any(w.waits_for == "message:payment_received" for w in app.show(project, instance).waiting_for)


def three_orders(project: app.Project, project_dir: Path) -> list[str]:
    add(project_dir, "message_catch")
    ids = [app.start(project, "message_catch", {"order": n, "customer": f"C-{n}"}).instance for n in (1041, 1042, 1043)]
    for iid, key in zip(ids, ("K-1", "K-2", "K-3"), strict=True):
        set_key(project_dir, iid, key)
    return ids


def test_a_message_fitting_several_cases_is_refused_with_their_list(cli, project, project_dir):
    """Without a target, a message two cases wait for goes to neither; the error lists id, key and family."""
    ids = three_orders(project, project_dir)
    text = refused(cli(project_dir, "send", "payment_received"), "fits 3 waiting cases", "--all", "--correlate")
    for iid, key in zip(ids, ("K-1", "K-2", "K-3"), strict=True):
        assert f"{iid[:8]}  {key}  message_catch:default" in text
    assert all(waiting(project, i) for i in ids)


def test_correlate_delivers_to_the_one_case_comparing_typed_values(cli, project, project_dir):
    """``--correlate order=1042`` matches the number 1042; the other cases keep waiting."""
    first, second, third = three_orders(project, project_dir)
    out = cli_json(cli(project_dir, "send", "payment_received", "--correlate", "order=1042", "--json"))
    assert [r["instance"] for r in out] == [second]
    assert (waiting(project, first), waiting(project, second), waiting(project, third)) == (True, False, True)


def test_several_correlations_must_all_match(cli, project, project_dir):
    first, second, _ = three_orders(project, project_dir)
    refused(
        cli(project_dir, "send", "payment_received", "--correlate", "order=1041", "--correlate", "customer=C-1042"),
        "matches order=1041, customer=C-1042",
        "the cases waiting for it",
    )
    assert waiting(project, first)
    args = ("--correlate", "order=1041", "--correlate", "customer=C-1041")
    out = cli_json(cli(project_dir, "send", "payment_received", "--json", *args))
    assert [r["instance"] for r in out] == [first]


def test_no_correlated_case_names_the_cases_that_wait(cli, project, project_dir):
    ids = three_orders(project, project_dir)
    before = query(project_dir, "SELECT id, version FROM instances ORDER BY id")
    text = refused(cli(project_dir, "send", "payment_received", "--correlate", "order=9999"), "order=9999")
    assert all(i[:8] in text for i in ids)
    assert query(project_dir, "SELECT id, version FROM instances ORDER BY id") == before


def test_key_delivers_to_that_case(cli, project, project_dir):
    first, second, _ = three_orders(project, project_dir)
    out = cli_json(cli(project_dir, "send", "payment_received", "--key", "K-1", "--json"))
    assert [r["instance"] for r in out] == [first]
    refused(cli(project_dir, "send", "payment_received", "--key", "K-1"), "matches key 'K-1'", second[:8])
    refused(cli(project_dir, "send", "payment_received", "--key", "K-404"), "no case has the key 'K-404'")


def test_all_delivers_to_every_fitting_case(cli, project, project_dir):
    ids = three_orders(project, project_dir)
    out = cli_json(cli(project_dir, "send", "payment_received", "--all", "--json", "--data", "paid=yes"))
    assert sorted(r["instance"] for r in out) == sorted(ids)
    assert all(app.show(project, i).data["paid"] == "yes" for i in ids)


def test_a_signal_still_reaches_everyone_waiting(cli, project, project_dir):
    add(project_dir, "signal_catch")
    ids = [app.start(project, "signal_catch").instance for _ in range(2)]
    out = cli_json(cli(project_dir, "send", "product_recall", "--signal", "--json"))
    assert sorted(r["instance"] for r in out) == sorted(ids)


def test_correlate_needs_var_equals_value(cli, project_dir):
    result = cli(project_dir, "send", "payment_received", "--correlate", "order")
    assert result.exit_code == 2
    assert "--correlate" in result.stderr


@pytest.mark.parametrize(
    ("value", "text", "expected"),
    [
        (1042, "1042", True),
        (1042, "1042.0", True),
        (1042.5, "1042.5", True),
        (1042, "1043", False),
        (1042, "C-1042", False),
        ("1042", "1042", True),
        ("C-1042", "c-1042", False),
        (True, "true", True),
        (True, "1", False),
        (False, "False", True),
        (None, "null", True),
        ({"id": 7}, '{"id": 7}', True),
    ],
)
def test_correlation_compares_values_as_typed(value, text, expected):
    assert matches({"v": value}, "v", text) is expected


def test_correlation_reaches_into_objects():
    data = {"customer": {"id": 7, "name": "Ann"}}
    assert matches(data, "customer.id", "7")
    assert not matches(data, "customer.age", "7")
    assert not matches(data, "missing", "null")
