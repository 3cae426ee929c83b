"""Module layout: the import cycles that were removed stay removed.

Each check runs in a fresh interpreter, so modules already imported by other
tests (or by conftest) cannot hide a cycle.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_CHECK = textwrap.dedent(
    """
    import importlib, sys
    importlib.import_module({module!r})
    leaked = [name for name in {forbidden!r} if name in sys.modules]
    assert not leaked, f"importing {module} also imported {{leaked}}"
    """
)


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("snncost.hardware.profile", ["snncost.hardware.loading"]),
        ("snncost.report.plots", ["snncost.report.cost_report"]),
        ("snncost.report.formatting", ["snncost.report.cost_report", "snncost.report.plots"]),
        ("snncost.hardware.yamlfile", ["snncost.hardware.profile", "snncost.hardware.loading"]),
    ],
)
def test_module_does_not_import(module: str, forbidden: list[str]) -> None:
    code = _CHECK.format(module=module, forbidden=forbidden)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_old_private_helpers_are_gone() -> None:
    """One way to do each thing: the formatting helpers live only in report.formatting."""
    import snncost.evaluation
    import snncost.report.cost_report as cost_report

    for name in ("_num", "_md_table", "_text_table", "_csv_text", "_latex_ratio"):
        assert not hasattr(cost_report, name), name
    for name in ("_load_model", "_resolve_data", "_Data", "_model_name", "_is_nir"):
        assert not hasattr(snncost.evaluation, name), name
