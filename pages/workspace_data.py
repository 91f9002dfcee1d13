"""Workspace & data: open or create a workspace, import data or generate the demo, browse images."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app import loaders
from app.demo import demo_banner
from app.navigation import ensure_frame
from app.state import current_workspace, require_category, set_workspace_path, workspace_path
from app.uploads import upload_section
from pipeline.data.import_plan import LAYOUT_NAMES
from pipeline.data.importer import IMPORT_LAYOUTS, import_into_workspace, plan_imports
from pipeline.data.samples import DataError
from pipeline.data.synth import SynthSettings
from pipeline.demo import add_demo_data
from pipeline.errors import UserError
from pipeline.methods import METHODS
from pipeline.workspace import Workspace, WorkspaceError

# Optional session override of the demo generator's counts (tests use tiny demos).
DEMO_SETTINGS_KEY = "demo_settings"
# The plans read by "Check folder", waiting for the Import button.
IMPORT_PLANS_KEY = "import_plans"


def _open_section() -> None:
    with st.form("open_workspace"):
        path = st.text_input("Workspace folder", value=workspace_path(), help="Everything you do is saved here (SQLite + files).")
        create = st.checkbox("Create it if it does not exist", value=True)
        if st.form_submit_button("Open workspace", type="primary"):
            if not path.strip():
                st.error("Enter the folder of the workspace to open or create.")
                return
            try:
                Workspace.open(path, create=create)
            except WorkspaceError as err:
                st.error(str(err))
            else:
                set_workspace_path(path)
                st.rerun()


def _demo_section(ws: Workspace) -> None:
    st.markdown("**Demo data**: synthetic parts with known rules and both defect kinds, generated once (under a minute).")
    if st.button("Generate / add the demo data", key="demo_button"):
        overrides = st.session_state.get(DEMO_SETTINGS_KEY, {})
        settings = SynthSettings(out=ws.path / "demo_data", **overrides)
        with st.spinner("Generating the demo categories…"):
            generated = add_demo_data(ws, settings)
        made = f"generated {', '.join(generated)}" if generated else "already present"
        st.success(f"Demo data {made} in `{settings.out}`.")
        st.page_link("pages/train.py", label="Next: fit the instant detector on the Train page (seconds)",
                     icon=":material/arrow_forward:")


def _import_section(ws: Workspace) -> None:
    with st.form("import_data"):
        st.markdown("**Import data** — MVTec LOCO AD (`train/good`, `validation/good`, `test/...`) or a folder of such "
                    "categories, a plain folder with `good/` (and optional `bad/`), `images/` + `masks/` folders, or "
                    "YOLO segmentation labels (`images/` + `labels/`). The last two are copied into the workspace.")
        folder = st.text_input("Data folder", key="import_folder")
        layout = st.selectbox("Layout", IMPORT_LAYOUTS, key="import_layout", format_func=_layout_label)
        name = st.text_input("Category name (optional)", key="import_name",
                             help="For image + mask and YOLO sets; default: the folder's name.")
        if st.form_submit_button("Check folder"):
            _plan(folder.strip(), layout, name.strip() or None)
    _pending_import(ws)
    upload_section(ws)


def _layout_label(layout: str) -> str:
    return "detect automatically" if layout == "auto" else LAYOUT_NAMES[layout]


def _plan(folder: str, layout: str, name: str | None) -> None:
    """Read the folder and keep the plans for the Import button; nothing is written yet."""
    st.session_state.pop(IMPORT_PLANS_KEY, None)
    if not folder:
        st.error("Enter the data folder to import.")
        return
    if not Path(folder).is_dir():
        st.error(f"Folder `{folder}` does not exist.")
        return
    try:
        with st.spinner("Reading every image…"):
            found = plan_imports(Path(folder), layout, name)
    except DataError as err:
        st.error(str(err))
        return
    for error in found.errors:
        st.error(error)
    if found.plans:
        st.session_state[IMPORT_PLANS_KEY] = found.plans


def _pending_import(ws: Workspace) -> None:
    """The checked plans, then the button that registers (and for some layouts copies) them."""
    plans = st.session_state.get(IMPORT_PLANS_KEY)
    if not plans:
        return
    for plan in plans:
        st.code(plan.summary(), language=None)
    if not st.button("Import", key="import_button", type="primary"):
        return
    del st.session_state[IMPORT_PLANS_KEY]
    for plan in plans:
        try:
            with st.spinner(f"Importing `{plan.name}`…"):
                import_into_workspace(ws, plan)
        except UserError as err:  # e.g. a file changed or vanished since the check
            st.error(f"`{plan.name}` not imported: {err}")
            continue
        st.success(f"Imported `{plan.name}`: {plan.n_good + plan.n_defective} images, {len(plan.bad_files)} unreadable.")


def _overview(ws: Workspace) -> None:
    rows = []
    for record in ws.categories():
        try:
            data = loaders.category_data(ws, record.name)
        except DataError as err:
            rows.append({"category": record.name, "layout": record.layout, "problem": str(err)})
            continue
        counts = data.counts()
        row = {"category": record.name, "layout": data.layout}
        for split in ("train", "validation", "test"):
            for kind, n in sorted(counts.get(split, {}).items()):
                row[f"{split}/{kind}"] = n
        row.update({"unreadable": len(data.bad_files), "grayscale": len(data.grayscale), "folder": str(record.data_root)})
        rows.append(row)
    if rows:
        st.dataframe(pd.DataFrame(rows).fillna(0), hide_index=True, key="category_table")


def _bad_file_report(ws: Workspace, category: str) -> None:
    data = loaders.category_data(ws, category)
    if data.bad_files:
        st.warning(f"{len(data.bad_files)} file(s) could not be read and are skipped:")
        st.dataframe(pd.DataFrame([{"file": str(b.path), "reason": b.reason} for b in data.bad_files]), hide_index=True)
    if data.grayscale:
        st.warning(
            f"{len(data.grayscale)} grayscale image(s) were converted to RGB. Colour rules (e.g. cable colour) "
            "cannot be checked on them; accuracy is not supported for grayscale input."
        )
        st.caption(", ".join(p.name for p in data.grayscale[:20]))
    if not data.bad_files and not data.grayscale:
        st.caption("All files readable, all in colour.")


def _image_grid(ws: Workspace, category: str) -> None:
    data = loaders.category_data(ws, category)
    groups = sorted({(s.split, s.kind) for s in data.samples})
    label = st.selectbox("Images", groups, format_func=lambda g: f"{g[0]} / {g[1]}", key="grid_group")
    samples = data.select(*label)
    per_page = 24
    pages = max(1, -(-len(samples) // per_page))
    page = st.number_input("Page", 1, pages, 1, key="grid_page") if pages > 1 else 1
    shown = samples[(page - 1) * per_page: page * per_page]
    cols = st.columns(6)
    for i, sample in enumerate(shown):
        cols[i % 6].image(loaders.thumbnail(str(sample.path)), caption=sample.path.name)
    st.caption(f"{len(samples)} images in {label[0]}/{label[1]}")


def workspace_data_page() -> None:
    st.title("Workspace & data")
    demo_banner(current_workspace())
    _open_section()
    ws = current_workspace()
    if ws is None:
        st.info("Open or create a workspace to start.")
        return
    left, right = st.columns(2)
    with left:
        _demo_section(ws)
    with right:
        _import_section(ws)
    st.subheader("Categories")
    _overview(ws)
    if not ws.categories():
        st.info("No data yet: generate the demo data or import a folder above.")
        return
    category = require_category(ws, key="data_category")
    try:
        _bad_file_report(ws, category)
        _image_grid(ws, category)
    except DataError as err:
        st.error(str(err))
    _next_step(ws, category)


def _next_step(ws: Workspace, category: str) -> None:
    """Train when nothing is fitted for the category yet; otherwise review the results."""
    if not any(ws.model_record(category, method) for method in METHODS):
        st.page_link("pages/train.py", label="Next: build a detector on the Train page", icon=":material/arrow_forward:")
        return
    st.page_link("pages/inspect.py", label="Next: inspect the heat maps, worst first", icon=":material/arrow_forward:")
    st.page_link("pages/evaluate.py", label="Or: ROC curves, AUROC, threshold and the HTML report on Evaluate",
                 icon=":material/monitoring:")


ensure_frame()
workspace_data_page()
