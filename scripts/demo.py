"""The main job: a short pilot of the shipped complaint example on the embedded SQLite store.

Run from anywhere with only Python installed::

    python3 scripts/demo.py

It creates ``.venv`` with flowrun, makes a fresh project in ``demo-pilot/``
with ``flowrun init``, then plays a morning of a pilot: cases of the baseline
and the re-engineered process are started and stepped by operators of each
department through the same commands an operator types, with ``FLOWRUN_NOW``
setting the clock of each step. It ends with the inbox and a history.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _venv

_venv.ensure()

ROOT = _venv.ROOT
PROJECT = ROOT / "demo-pilot"
FLOWRUN = str(_venv.BIN / "flowrun")
T0 = datetime.fromisoformat("2026-03-02T09:00:00+01:00")


def flowrun(*args: str, at: timedelta, show: bool = True) -> str:
    """Run one flowrun command at pilot time T0 + ``at``, echoing it as an operator types it."""
    now = (T0 + at).isoformat()
    if show:
        print(f"\n$ FLOWRUN_NOW={now} flowrun {' '.join(_quote(a) for a in args)}", flush=True)
    env = {**os.environ, "FLOWRUN_NOW": now, "COLUMNS": "120"}
    proc = subprocess.run([FLOWRUN, *args], cwd=PROJECT, env=env, capture_output=True, text=True)
    if show:
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"flowrun {args[0]} failed with exit code {proc.returncode}")
    return proc.stdout


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg


def ref_of(instance: str, task_name: str, at: timedelta) -> str:
    inbox = json.loads(flowrun("tasks", "--instance", instance, "--json", at=at, show=False))
    for item in inbox:
        if item["name"] == task_name:
            return str(item["ref"])
    raise SystemExit(f"task {task_name!r} is not ready in instance {instance}")


def step(instance: str, task: str, actor: str, ready_min: int, wait_min: int, touch_min: int, **data: object) -> None:
    """An operator claims a task ``wait_min`` after it got ready and completes it ``touch_min`` later."""
    ref = ref_of(instance, task, timedelta(minutes=ready_min))
    flowrun("claim", ref, "--as", actor, at=timedelta(minutes=ready_min + wait_min))
    args = [f"{k}={v}" for k, v in data.items()]
    pairs = [x for a in args for x in ("--data", a)]
    flowrun("do", ref, "--as", actor, *pairs, at=timedelta(minutes=ready_min + wait_min + touch_min))


def answers(task: str, variant: str, rng: random.Random) -> dict[str, object]:
    """What the operators (and the customer) enter on each form, varied like real cases."""
    amount = rng.choice([20, 45, 80, 95, 120, 150, 260])
    if task == "Record complaint":
        return {
            "customer_name": rng.choice(NAMES),
            "category": rng.choice(CATEGORIES),
            "description": "Complaint received by phone",
            "amount_disputed": amount,
        }
    if task == "Record and assess complaint":
        return {
            "customer_name": rng.choice(NAMES),
            "category": rng.choice(CATEGORIES),
            "description": "Complaint received by phone",
            "amount_disputed": amount,
            "severity": rng.choice(["low", "medium", "high"]),
            "can_resolve_now": rng.random() < 0.75,
        }
    if task == "Analyse needs":
        return {"severity": rng.choice(["low", "medium", "high"]), "needs_specialist": rng.random() < 0.4}
    if task == "Specialist assessment":
        return {"finding": "Fault confirmed", "proposed_remedy": rng.choice(["refund", "repair", "replacement"])}
    if task == "Draft resolution":
        return {"remedy": "refund", "remedy_amount": amount, "summary": "Refund the disputed amount"}
    if task == "Approve resolution":
        return {"approved": rng.random() < 0.8}
    if task == "Reply to customer":
        return {"reply_channel": rng.choice(["phone", "email", "letter"]), "message": "Here is our answer"}
    if task in ("Resolve at first contact", "Confirm resolution with customer"):
        return {"remedy": "refund", "remedy_amount": amount, "message": "Refunded"}
    if task == "Inform customer of next steps":
        return {"contact_channel": "sms", "expected_days": rng.randint(1, 3)}
    if task == "Satisfaction survey":
        happy = variant == "reengineered"
        return {
            "satisfaction": rng.randint(3, 5) if happy else rng.randint(2, 4),
            "nps": rng.randint(7, 10) if happy else rng.randint(3, 9),
            "resolved_first_contact": happy and rng.random() < 0.8,
        }
    raise SystemExit(f"the demo has no answers for task {task!r}")


NAMES = ["Ann Lee", "Raj Patel", "Li Wei", "Marta Ruiz", "Tom Berg", "Ada Nwosu", "Sven Holm", "Ines Costa"]
CATEGORIES = ["billing", "product_fault", "service_delay"]
#: Waiting (minutes before someone picks a task up) per lane: handoffs to the back office wait longest.
WAITS = {
    "Call Centre": (10, 60),
    "Back Office": (30, 180),
    "Specialist": (60, 240),
    "Supervisor": (30, 120),
    "Customer": (30, 240),
    "Front Office": (0, 10),
}


def batch(variant: str, cases: int, rng: random.Random) -> None:
    """More cases of the pilot week, one a day at 09:00, stepped quietly through the same commands."""
    for day in range(1, cases + 1):
        at = timedelta(days=day)
        started = json.loads(flowrun("start", f"complaint:{variant}", "--pilot", "march", "--json", at=at, show=False))
        ready = started["ready"]
        while ready:
            task = ready[0]
            low, high = WAITS.get(task["lane"] or "", (5, 30))
            at += timedelta(minutes=rng.randint(low, high))
            actor = f"{(task['lane'] or 'ops').split()[0].lower()}-{rng.randint(1, 3)}"
            flowrun("claim", str(task["ref"]), "--as", actor, at=at, show=False)
            at += timedelta(minutes=rng.randint(3, 15))
            pairs = [x for k, v in answers(task["name"], variant, rng).items() for x in ("--data", f"{k}={v}")]
            done = json.loads(flowrun("do", str(task["ref"]), "--as", actor, "--json", *pairs, at=at, show=False))
            ready = [t for t in ready[1:] if t["ref"] not in {r["ref"] for r in done["ready"]}] + done["ready"]
        print(f"  {variant} case of day {day}: done", flush=True)


def main() -> None:
    if PROJECT.exists():
        shutil.rmtree(PROJECT)
    subprocess.run([FLOWRUN, "init", str(PROJECT)], check=True)
    flowrun("processes", at=timedelta())

    # Baseline: a billing complaint passed from call centre to back office and back.
    b1 = json.loads(flowrun("start", "complaint:baseline", "--pilot", "march", "--json", at=timedelta()))["id"]
    step(
        b1,
        "Record complaint",
        "alice",
        0,
        2,
        6,
        customer_name="Ann Lee",
        category="billing",
        description="Charged twice for March",
        amount_disputed=80,
    )
    step(b1, "Analyse needs", "bob", 8, 35, 10, severity="medium", needs_specialist="no")
    step(
        b1, "Draft resolution", "bob", 53, 20, 12, remedy="refund", remedy_amount=80, summary="Refund duplicate charge"
    )
    step(b1, "Reply to customer", "alice", 85, 45, 5, reply_channel="phone", message="Refund of 80 on its way")
    step(b1, "Satisfaction survey", "customer", 135, 60, 2, satisfaction=3, nps=6, resolved_first_contact="no")

    # Baseline: a product fault that needs a specialist and a supervisor's approval.
    b2 = json.loads(flowrun("start", "complaint:baseline", "--pilot", "march", "--json", at=timedelta(minutes=10)))[
        "id"
    ]
    step(
        b2,
        "Record complaint",
        "alice",
        10,
        3,
        7,
        customer_name="Raj Patel",
        category="product_fault",
        description="Kettle stopped working",
        amount_disputed=140,
    )
    step(b2, "Analyse needs", "bob", 20, 40, 8, severity="high", needs_specialist="yes")
    step(
        b2, "Specialist assessment", "sam", 68, 50, 25, finding="Heating element failed", proposed_remedy="replacement"
    )

    # Re-engineered: resolved by the front office at first contact.
    r1 = json.loads(flowrun("start", "complaint:reengineered", "--pilot", "march", "--json", at=timedelta(minutes=5)))[
        "id"
    ]
    step(
        r1,
        "Record and assess complaint",
        "fiona",
        5,
        1,
        8,
        customer_name="Li Wei",
        category="billing",
        description="Late fee charged in error",
        amount_disputed=25,
        severity="low",
        can_resolve_now="yes",
    )
    step(
        r1,
        "Resolve at first contact",
        "fiona",
        14,
        0,
        4,
        remedy="refund",
        remedy_amount=25,
        message="Late fee refunded",
    )
    step(r1, "Satisfaction survey", "customer", 18, 30, 2, satisfaction=5, nps=10, resolved_first_contact="yes")

    # Re-engineered: the specialist and the customer update run in parallel.
    r2 = json.loads(flowrun("start", "complaint:reengineered", "--pilot", "march", "--json", at=timedelta(minutes=30)))[
        "id"
    ]
    step(
        r2,
        "Record and assess complaint",
        "fiona",
        30,
        2,
        9,
        customer_name="Marta Ruiz",
        category="product_fault",
        description="Washing machine leaks",
        amount_disputed=300,
        severity="high",
        can_resolve_now="no",
    )
    step(r2, "Inform customer of next steps", "fiona", 41, 1, 3, contact_channel="sms", expected_days=2)

    print("\nThe rest of the pilot fortnight: 10 more cases of each variant, stepped the same way ...")
    rng = random.Random(2026)
    batch("baseline", 10, rng)
    batch("reengineered", 10, rng)
    flowrun("compare", "complaint", at=timedelta(days=12))

    flowrun("tasks", at=timedelta(minutes=150))
    flowrun("history", b1, at=timedelta(minutes=200))
    flowrun("history", r1, at=timedelta(minutes=200))
    flowrun("show", r2, at=timedelta(minutes=200))
    print(
        f"\nThe pilot's database is {PROJECT.relative_to(ROOT)}/.flowrun/flowrun.db; "
        f"try: cd {PROJECT.relative_to(ROOT)} && ../.venv/bin/flowrun tasks"
    )


if __name__ == "__main__":
    main()
