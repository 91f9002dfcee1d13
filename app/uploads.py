"""The upload box of the Workspace & data page: a zip or image files from the browser, checked, then imported.

Same two steps as the folder import (check shows what was found, Import registers); the work
is in ``pipeline.data.uploads``, this only draws it and keeps the checked upload between runs.
"""

from __future__ import annotations

import streamlit as st

from pipeline.data.images import IMAGE_SUFFIXES
from pipeline.data.safe_zip import MB
from pipeline.data.uploads import (
    UPLOADS_FOLDER, StagedUpload, UploadedFile, UploadError, UploadLimits, commit_upload, discard_upload,
    stage_upload,
)
from pipeline.errors import UserError
from pipeline.workspace import Workspace

UPLOAD_LABEL = "Upload images (zip or files)"
"""The uploader's label; browser tests find the widget by it."""

UPLOAD_KEY = "upload_files"
CHECK_BUTTON_LABEL = "Check upload"
IMPORT_UPLOAD_KEY = "upload_import_button"
PENDING_UPLOAD_KEY = "pending_upload"
"""The checked ``StagedUpload`` waiting for its Import button."""

UPLOAD_TYPES = ["zip"] + sorted(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES)


def upload_limits() -> UploadLimits:
    """The library's limits with the upload size Streamlit allows (``server.maxUploadSize``, MB)."""
    return UploadLimits(max_upload_bytes=int(st.get_option("server.maxUploadSize")) * MB)


def upload_section(ws: Workspace) -> None:
    """The upload form, then the checked upload and its Import button."""
    limit_mb = upload_limits().max_upload_bytes // MB
    with st.form("upload_data"):
        st.markdown(
            f"**Upload** from this browser — one zip in any layout above (a single top folder is unwrapped), or "
            f"several image files, which become one category of good images. Up to {limit_mb} MB. Stored in the "
            f"workspace: `{UPLOADS_FOLDER}/<category>` (`data/<category>` for mask and YOLO sets)."
        )
        files = st.file_uploader(UPLOAD_LABEL, type=UPLOAD_TYPES, accept_multiple_files=True, key=UPLOAD_KEY)
        name = st.text_input("New category name", key="upload_name",
                             help="Default: the zip's single folder, else the zip's name. Needed for image files.")
        if st.form_submit_button(CHECK_BUTTON_LABEL):
            _stage(ws, [UploadedFile(f.name, f.getvalue()) for f in files or []], name.strip() or None)
    _pending_upload(ws)


def _stage(ws: Workspace, files: list[UploadedFile], name: str | None) -> None:
    """Unpack and read the upload into a hidden folder; a previous unconfirmed upload is dropped."""
    previous = st.session_state.pop(PENDING_UPLOAD_KEY, None)
    if previous is not None:
        discard_upload(previous)
    try:
        with st.spinner("Unpacking and reading every image…"):
            staged = stage_upload(ws, files, name, upload_limits())
    except UploadError as err:
        st.error(str(err))
        return
    st.session_state[PENDING_UPLOAD_KEY] = staged


def _pending_upload(ws: Workspace) -> None:
    staged: StagedUpload | None = st.session_state.get(PENDING_UPLOAD_KEY)
    if staged is None:
        return
    st.code(staged.summary(), language=None)
    if not st.button("Import", key=IMPORT_UPLOAD_KEY, type="primary"):
        return
    del st.session_state[PENDING_UPLOAD_KEY]
    plan = staged.plan
    try:
        with st.spinner(f"Storing `{plan.name}` in the workspace…"):
            commit_upload(ws, staged)
    except UserError as err:  # the name taken meanwhile, or the staged folder gone
        st.error(f"`{plan.name}` not imported: {err}")
        return
    st.success(f"Imported `{plan.name}`: {plan.n_good + plan.n_defective} images, {len(plan.bad_files)} unreadable; "
               f"stored in `{staged.target}`.")
