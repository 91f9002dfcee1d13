"""Page files are run by Streamlit with "magic" on: a bare string below the module docstring (an
attribute docstring, say) is drawn on the page. None may have one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PAGES = sorted((Path(__file__).resolve().parents[2] / "pages").glob("*.py"))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_no_bare_string_below_the_docstring(page):
    body = ast.parse(page.read_text()).body
    drawn = [node.lineno for node in body[1:]
             if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)]
    assert not drawn, f"{page.name}: module-level strings at lines {drawn} would be drawn on the page"
