"""DMN decision tables: structure and expressions."""

from __future__ import annotations

from flowrun.engine.validate._common import Context, shorten, split_fix


def check_dmn(ctx: Context) -> None:
    """A DMN file parses with SpiffWorkflow's DMN parser and has a decision table."""
    from SpiffWorkflow.exceptions import SpiffWorkflowException

    from flowrun.engine._parser import FlowrunParser

    decisions = ctx.root.xpath("/*/*[local-name()='decision']")
    if not decisions:
        ctx.add(ctx.root, "the DMN file defines no decision", "draw a decision table in the DMN modeler")
        return
    if len(decisions) > 1:
        names = ", ".join(str(d.get("id")) for d in decisions)
        ctx.add(
            decisions[1],
            f"the file has {len(decisions)} decisions ({shorten(names)}), and flowrun reads one decision per file",
            "move each decision into a .dmn file of its own",
        )
        return
    try:
        parser = FlowrunParser()
        parser.add_dmn_xml(ctx.root, filename=ctx.display)
        dmn = next(iter(parser.dmn_parsers.values()))
        dmn.parse()
        if not dmn.decision.decisionTables:
            ctx.add(decisions[0], "the decision has no decision table", "flowrun runs decision tables; draw one")
    except (SpiffWorkflowException, KeyError, ValueError, AttributeError, TypeError, IndexError, SyntaxError) as exc:
        node = ctx.root
        ident = getattr(exc, "id", "")
        if ident:
            node = next(iter(ctx.root.xpath("//*[@id=$i]", i=ident)), ctx.root)
        text = str(exc).split("\n")[0] or exc.__class__.__name__
        if isinstance(exc, KeyError):
            text = f"missing attribute {text}"
        message, fix = split_fix(text, "fix the decision in the DMN modeler")
        ctx.add(node, f"the DMN cannot be parsed: {message}", fix)
