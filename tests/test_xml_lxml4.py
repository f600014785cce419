"""flowrun.engine.xml under lxml 4.x, whose parser defaults differ from lxml 5 and later.

``pyproject.toml`` allows ``lxml>=4.9``, but the development venv has a current
lxml. Point ``FLOWRUN_LXML4_PYTHON`` at a Python that has ``lxml<5`` installed
(e.g. ``.venv-lxml4/bin/python``) and this test runs a probe in that interpreter,
with the repository on ``PYTHONPATH``: the billion laughs, external entity and
DOCTYPE files are refused, a normal diagram parses, and flowrun's parser does
not expand or fetch entities even if the DOCTYPE check were bypassed. When that
interpreter also has SpiffWorkflow and RestrictedPython, whole diagrams are
loaded with ``load_model`` as well.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "tests" / "data" / "events"
PYTHON = os.environ.get("FLOWRUN_LXML4_PYTHON", "")

pytestmark = pytest.mark.skipif(
    not PYTHON,
    reason="FLOWRUN_LXML4_PYTHON is not set; point it at a Python with lxml<5 installed "
    "(e.g. .venv-lxml4/bin/python) to check flowrun.engine.xml under lxml 4",
)

BODY = (EVENTS / "timer_catch.bpmn").read_text(encoding="utf-8").split("\n", 1)[1]


def _lol() -> str:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol;" if i == 1 else f"&lol{i - 1};") * 10}">' for i in range(1, 10)
    ]
    return '<?xml version="1.0"?>\n<!DOCTYPE lolz [' + "".join(entities) + "]>\n" + BODY.replace("Ship order", "&lol9;")


def _xxe() -> str:
    doctype = '<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    return '<?xml version="1.0"?>\n' + doctype + BODY.replace("Ship order", "&xxe;")


HOSTILE = {
    "lol.bpmn": _lol().encode(),
    "xxe.bpmn": _xxe().encode(),
    "doctype.bpmn": ('<?xml version="1.0"?>\n<!DOCTYPE definitions>\n' + BODY).encode(),
    "lol16.bpmn": _lol().replace('version="1.0"?>', 'version="1.0" encoding="UTF-16"?>').encode("utf-16"),
}

PROBE = r"""
import json, sys
from pathlib import Path
from lxml import etree

folder, events = Path(sys.argv[1]), Path(sys.argv[2])
out = {"lxml": list(etree.LXML_VERSION), "libxml2": list(etree.LIBXML_VERSION), "refused": {}, "bypass": {}}
from flowrun.engine import xml as fx
from flowrun.errors import ModelError

for path in sorted(folder.glob("*.bpmn")):
    try:
        fx.parse_bytes(path.read_bytes(), path.name)
        out["refused"][path.name] = None
    except ModelError as exc:
        out["refused"][path.name] = str(exc)

normal = fx.parse_bytes((events / "timer_catch.bpmn").read_bytes(), "timer_catch.bpmn").getroot()
out["normal"] = [normal.tag, normal.find("{http://www.omg.org/spec/BPMN/20100524/MODEL}process").get("id")]
utf16 = fx.parse_bytes((events / "utf16_names.bpmn").read_bytes(), "utf16_names.bpmn").getroot()
out["utf16"] = utf16.find("{http://www.omg.org/spec/BPMN/20100524/MODEL}process").get("name")

# Defence in depth: flowrun's parser settings on their own, as if the DOCTYPE check were skipped.
make_parser = getattr(fx, "_parser", None)
if make_parser is not None:
    for name in ("lol.bpmn", "xxe.bpmn"):
        try:
            root = etree.fromstring((folder / name).read_bytes(), make_parser())
            text = etree.tostring(root)
            out["bypass"][name] = {"size": len(text), "passwd": b"root:" in text}
        except etree.XMLSyntaxError as exc:
            out["bypass"][name] = {"error": str(exc)}

try:
    import SpiffWorkflow, RestrictedPython  # noqa: F401
except ImportError:
    out["load_model"] = None
else:
    from flowrun.engine import load_model
    out["load_model"] = {
        name: load_model(events / name, name).process_id for name in ("timer_catch.bpmn", "utf16_names.bpmn")
    }
print(json.dumps(out))
"""


def test_xml_safety_under_lxml4(tmp_path: Path) -> None:
    for name, data in HOSTILE.items():
        (tmp_path / name).write_bytes(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [PYTHON, "-c", PROBE, str(tmp_path), str(EVENTS)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, f"the probe failed in {PYTHON}:\n{proc.stderr}"
    out = json.loads(proc.stdout)
    assert out["lxml"][0] == 4, f"FLOWRUN_LXML4_PYTHON has lxml {out['lxml']}, not 4.x"

    for name in HOSTILE:
        message = out["refused"][name]
        assert message is not None, f"{name} was parsed under lxml {out['lxml']}"
        assert "DOCTYPE" in message
        assert message.startswith(name)

    assert out["normal"] == ["{http://www.omg.org/spec/BPMN/20100524/MODEL}definitions", "timer_catch"]
    assert out["utf16"] == "Réclamation — 苦情処理"
    for name, seen in out["bypass"].items():
        assert "error" in seen or (seen["size"] < 1_000_000 and not seen["passwd"]), (name, seen)
    if out["load_model"] is not None:
        assert out["load_model"] == {"timer_catch.bpmn": "timer_catch", "utf16_names.bpmn": "utf16_names"}
