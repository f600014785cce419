"""Safe reading of BPMN and DMN files.

Diagrams come from anywhere. Whatever lxml version is installed, they are
parsed with entity resolution, DTD loading and network access off, and any
DOCTYPE is refused before parsing (which also stops "billion laughs" entity
expansion). Files are read as bytes, so the XML declaration decides the
encoding and UTF-8 and UTF-16 names survive.

It also holds the BPMN model namespace and :func:`local_name`, which every
module reading BPMN elements uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxml import etree

from flowrun.errors import ModelError

#: The namespace of BPMN 2.0 model elements (``<bpmn:definitions>``, ``<bpmn:process>``, ...).
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
#: The prefix of a BPMN element's tag as lxml spells it: ``BPMN_TAG + "process"``.
BPMN_TAG = "{" + BPMN_NS + "}"

#: Larger files are refused without parsing (the largest real-world export seen is ~200 KB).
MAX_BYTES = 16 * 1024 * 1024

_DOCTYPE_MARKERS = tuple(
    "<!DOCTYPE".encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
) + tuple("<!ENTITY".encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be"))


def local_name(tag: object) -> str:
    """An element's tag without its namespace (``userTask``); "" for comments and processing instructions."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _parser() -> Any:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )


def read_bytes(path: Path, display: str) -> bytes:
    """Read a diagram file, refusing missing, unreadable and oversized files."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelError(
            "file not found; check the path in flowrun.yaml or on the command line", file=display
        ) from None
    except OSError as exc:
        raise ModelError(f"cannot read the file ({exc.strerror})", file=display) from None
    if size > MAX_BYTES:
        raise ModelError(
            f"the file is {size // 1024} KiB, more than the {MAX_BYTES // 1024 // 1024} MiB "
            "flowrun accepts for one diagram; split it into several files",
            file=display,
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the file ({exc.strerror})", file=display) from None


def parse_bytes(data: bytes, display: str) -> Any:
    """Parse XML bytes into an lxml tree, or raise a located :class:`ModelError`."""
    if any(marker in data for marker in _DOCTYPE_MARKERS):
        raise ModelError(
            "the file declares a DOCTYPE or entities, which flowrun refuses for safety; "
            "save it again from the modeler (BPMN files need no DOCTYPE)",
            file=display,
        )
    if not data.strip():
        raise ModelError("the file is empty; save the diagram again from the modeler", file=display)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        msg = exc.msg or str(exc)
        raise ModelError(
            f"not well-formed XML ({msg}); open the file in a modeler or an XML editor and fix it",
            file=display,
            line=line,
        ) from None
    except (ValueError, LookupError) as exc:
        raise ModelError(f"cannot decode the file ({exc}); save it as UTF-8", file=display) from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise ModelError("the file declares a DOCTYPE, which flowrun refuses for safety", file=display)
    return tree
