"""The rig's BLE transport has no branch on simulated versus real benches: only the adapter (and with it
bleak's backend) differs. Checked on the source: the transport modules import nothing from simulator/ and
never look at the bench's target or a simulated flag."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RIG_DUT = Path(__file__).resolve().parents[2] / "rig" / "dut"
TRANSPORT_MODULES = ["ble_link.py", "ble_central.py", "ble_rogue.py", "bleak_bumble.py", "ble_uuids.py",
                     "commands.py", "client.py"]
TARGET_WORDS = {"simulated", "simulator", "target", "virtual", "is_sim", "sim"}


@pytest.mark.parametrize("module", TRANSPORT_MODULES)
def test_the_transport_module_never_asks_which_bench_it_is_on(module: str) -> None:
    tree = ast.parse((RIG_DUT / module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert not (node.module or "").startswith("simulator"), f"{module} imports {node.module}"
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("simulator") for a in node.names), module
        if isinstance(node, ast.Name | ast.Attribute | ast.arg):
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else node.arg
            assert name.lower() not in TARGET_WORDS, f"{module} line {node.lineno} uses {name!r}"
