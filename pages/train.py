"""Train: fit a method as a background job (stage, step, ETA, loss curves; cancel, resume), then evaluate.

The job runs in its own process (``pipeline.jobs``): closing the tab or stopping Streamlit does not
stop it, and everything shown here is read back from the workspace, so reopening the page shows it.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import loaders
from app.navigation import ensure_frame
from app.state import require_category, require_workspace, select_method
from app.widgets import StreamlitProgress, duration
from pipeline.device import DeviceError, cuda_summary, describe_device, resolve_device
from pipeline.evaluation.evaluate import evaluate_method
from pipeline.jobs import cancel_job, current_job, job_log, launch_fit_job, list_jobs, resume_job, running_job
from pipeline.methods import METHODS
from pipeline.methods.fusion import FusionSettings
from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.pseudolabels.confidence import weighting_enabled
from pipeline.methods.zeroshot.method import prompt_word, set_object_word, unavailable_reason
from pipeline.methods.zeroshot.spec import ZEROSHOT
from pipeline.workspace import JobRecord, Workspace, WorkspaceError

# How often the job panel rereads the job while one runs.
POLL_S = 2.0
NOTICE_KEY = "train_notice"
# Metric record keys that are not curves (the x axis, bookkeeping).
NOT_PLOTTED = {"stage", "step", "epoch", "lr", "seconds", "resumed_from_step"}
RESUMABLE = ("failed", "cancelled")


# --- settings ------------------------------------------------------------------------------

def _device_choice() -> str:
    gpus = loaders.cuda_devices()
    options = ["auto", "cpu"] + (["cuda"] if gpus else [])
    choice = st.selectbox("Device", options, key="train_device", help="auto: the GPU when there is one, else the CPU")
    try:
        runs_on = describe_device(resolve_device(choice))
    except DeviceError as err:
        st.error(str(err))
        return choice
    gpu_line = f"CUDA GPU: {', '.join(gpus)}." if gpus else f"No CUDA GPU: {cuda_summary()}."
    st.caption(f"Runs on {runs_on}. {gpu_line}")
    return choice


def _settings() -> tuple[str, str, int]:
    cols = st.columns(3)
    with cols[0]:
        profile = st.selectbox("Profile", ["quick", "paper"], key="train_profile",
                               help="quick: CPU-friendly (fewer steps, embedded backbone); "
                                    "paper: the thesis settings, GPU expected")
    with cols[1]:
        device = _device_choice()
    with cols[2]:
        seed = int(st.number_input("Seed", 0, 2**31 - 1, 0, key="train_seed"))
    return profile, device, seed


def _training_length(method: str, profile: str) -> dict:
    # The training settings changed from the profile (``fit --set``): only what differs is sent,
    # so the model record shows exactly what was changed.
    trains = tuple(part for part in METHODS[method].trains if part != "retrieval")  # retrieval: `fit --set` only
    if not trains:
        return {}
    changes: dict = {}
    with st.expander("Training length"):
        if "segmentation" in trains:
            default = SegmentationSettings.for_profile(profile).epochs
            epochs = int(st.number_input(
                "Segmentation network epochs", 1, 10_000, default, key=f"train_seg_epochs_{profile}",
                help=f"The {profile} profile trains {default}. More epochs fit the pseudo-labels more closely."))
            if epochs != default:
                changes["segmentation"] = {"epochs": epochs}
        if "lgst" in trains:
            lgst = _lgst_length_changes(LgstSettings.for_profile(profile), profile)
            if lgst:
                changes["lgst"] = lgst
    if "fusion" in trains:
        fusion = _fusion_changes(FusionSettings.for_profile(profile))
        if fusion:
            changes["fusion"] = fusion
    return changes


def _fusion_changes(default: FusionSettings) -> dict:
    # Which branches the image score fuses, as changed on the page ({} when the defaults).
    changes: dict = {}
    with st.expander("Score fusion"):
        retrieval = st.checkbox(
            "Patch-retrieval branch", default.retrieval, key="train_fusion_retrieval",
            help="Also fits the instant detector's memory bank (a minute or two) and fuses its score: it catches "
                 "small structural defects the CPU-trained students miss. Off: the thesis' branches only.")
        top_k = int(st.number_input(
            "Branch scores summed per image (0 = all)", 0, 10, default.top_k, key="train_fusion_top_k",
            help=f"Each image's score is the sum of its {default.top_k} largest branch z-scores by default: a defect "
                 "lights a few branches, and the others would add only their noise. 0 sums every branch "
                 "(the thesis)."))
    if retrieval != default.retrieval:
        changes["retrieval"] = retrieval
    if top_k != default.top_k:
        changes["top_k"] = top_k
    return changes


def _lgst_length_changes(default: LgstSettings, profile: str) -> dict:
    # The students' steps and time budget as changed on the page ({} when both are the profile's).
    changes: dict = {}
    steps = int(st.number_input(
        "Student training steps (LGST)", 10, 1_000_000, default.steps, step=100, key=f"train_lgst_steps_{profile}",
        help=f"The {profile} profile trains {default.steps}"
             + (" at most: the time budget below may stop it earlier." if default.time_budget_s else ".")))
    if steps != default.steps:
        changes["steps"] = steps
    minutes = float(st.number_input(
        "Student training time budget (minutes, 0 = none)", 0.0, 100_000.0, default.time_budget_s / 60, step=1.0,
        key=f"train_lgst_budget_{profile}",
        help="The students train as many of the steps as fit in this time at the pace measured while "
             "training, so a whole quick fit stays under 30 minutes on 2 CPU cores. 0 trains every step."))
    if abs(minutes * 60 - default.time_budget_s) > 1e-6:
        changes["time_budget_s"] = minutes * 60
    return changes


def _zeroshot_inputs(ws: Workspace, category: str) -> bool:
    # The zero-shot method's prompt word; True when the method cannot run here (the reason is shown).
    current = prompt_word(ws, category)
    word = st.text_input("Object word in the prompts", value=current, key=f"zeroshot_object_{category}",
                         help='Fills "a photo of a flawless {object}" and "a photo of a damaged {object}"')
    if word.strip() and " ".join(word.split()) != current:
        set_object_word(ws, category, word)
    reason = unavailable_reason()
    if reason:
        st.warning("The zero-shot method cannot run here.  \n" + reason.replace("\n", "  \n"))
    return reason is not None


# --- launching -----------------------------------------------------------------------------

def _launch(ws: Workspace, category: str, method: str, profile: str, device: str, seed: int, changes: dict) -> None:
    try:
        job_id = launch_fit_job(ws, category, method, profile=profile, device=device, seed=seed,
                                settings_changes=changes)
    except (WorkspaceError, ValueError) as err:
        hint = " One job runs per workspace: wait for it to finish or cancel it below." if running_job(ws) else ""
        st.error(f"Not started: {err}.{hint}")
        return
    st.session_state[NOTICE_KEY] = (
        f"Started job {job_id}: {METHODS[method].title} on **{category}**. It runs in its own process: "
        "closing this tab does not stop it, and reopening the page shows it."
    )


def _resume(ws: Workspace, job_id: int) -> None:
    try:
        new_id = resume_job(ws, job_id)
    except (WorkspaceError, ValueError) as err:
        st.error(str(err))
        return
    st.session_state[NOTICE_KEY] = f"Resumed job {job_id} as job {new_id}, from its checkpoints."
    st.rerun()


def _cancel(ws: Workspace, job_id: int) -> None:
    with st.spinner(f"Cancelling job {job_id} (it stops at its next progress step)…"):
        try:
            job = cancel_job(ws, job_id)
        except WorkspaceError as err:
            st.error(str(err))
            return
    st.session_state[NOTICE_KEY] = f"Job {job_id} is {job.status}. Its checkpoints are kept: resume continues from them."
    st.rerun()


# --- the job panel (polled) ----------------------------------------------------------------

def _loss_figure(records: list[dict], stage: str) -> go.Figure | None:
    rows = [r for r in records if r.get("stage") == stage]
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in NOT_PLOTTED
            and any(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for r in rows)]
    if not keys:
        return None
    fig = go.Figure()
    for key in keys:
        points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers", name=key))
    fig.update_layout(title=stage, xaxis_title="step", yaxis_title="value", height=300, margin={"t": 40, "b": 30},
                      legend={"orientation": "h"})
    return fig


def _loss_curves(job: JobRecord) -> None:
    records = job.metrics.get("losses") or []
    stages = list(dict.fromkeys(r.get("stage", "") for r in records))
    figures = [(s, f) for s in stages if (f := _loss_figure(records, s)) is not None]
    if not figures:
        st.caption("No loss values yet (the instant detector trains nothing; the networks report every few steps).")
        return
    for column, (stage, fig) in zip(st.columns(min(len(figures), 2)) * len(figures), figures):
        column.plotly_chart(fig, key=f"loss_{job.id}_{stage}")


def _progress(job: JobRecord) -> None:
    fraction = min(1.0, job.step / job.total) if job.total else 0.0
    steps = f"{job.step}/{job.total}" if job.total else f"{job.step}"
    st.progress(fraction, text=f"{job.stage or 'starting'}: {steps}")
    eta = job.metrics.get("eta_s")
    c1, c2, c3 = st.columns(3)
    c1.metric("Stage", job.stage or "starting")
    c2.metric("ETA (this stage)", "unknown" if eta is None else duration(eta))
    c3.metric("Elapsed", duration(job.metrics.get("elapsed_s")))


def _outcome(job: JobRecord) -> None:
    if job.status == "done":
        summary = job.metrics.get("summary") or {}
        st.success(
            f"Job {job.id} built {METHODS[job.method].title if job.method in METHODS else job.method} for "
            f"**{job.category}** from {summary.get('n_train', '?')} good images in {duration(summary.get('seconds'))}. "
            f"The threshold flags {summary.get('flagged', '?')} of {summary.get('n_validation', '?')} good "
            "validation images. Next: evaluate it below, or look at its heat maps on Inspect."
        )
        for note in summary.get("notes") or ():
            st.info(f"{note}.")
    elif job.status == "failed":
        st.error(f"Job {job.id} failed: {job.message}. The log below has the details; resume continues from its checkpoints.")
    else:
        st.warning(f"Job {job.id} was {job.status} ({job.message}). Resume continues from its checkpoints.")


def _live_job(ws_path: str, job_id: int, was_running: bool) -> None:
    ws = Workspace.open(ws_path)
    job = current_job(ws, job_id)
    if was_running and job.status != "running":
        st.rerun()  # the job ended: refresh the whole page (history, models) and stop polling
    title = METHODS[job.method].title if job.method in METHODS else job.method
    st.subheader(f"Job {job.id}: {title} on {job.category} · {job.status}")
    st.caption(f"Started {job.started_at}, last update {job.updated_at}; " + ", ".join(
        f"{k} {v}" for k, v in job.params.items()))
    if job.status == "running":
        _progress(job)
        if st.button("Cancel job", key="cancel_job", icon=":material/stop:"):
            _cancel(ws, job.id)
    else:
        _outcome(job)
        if job.status in RESUMABLE and st.button("Resume job", key="resume_job", icon=":material/replay:"):
            _resume(ws, job.id)
    _loss_curves(job)
    with st.expander("Worker log (last lines)"):
        st.code(job_log(ws, job.id) or "(nothing yet)", language=None)


def _job_panel(ws: Workspace) -> None:
    """The workspace's latest job, polled every ``POLL_S`` while it runs."""
    latest = list_jobs(ws, 1)
    if not latest:
        st.caption("No training job yet in this workspace.")
        return
    running = latest[0].status == "running"
    st.fragment(run_every=POLL_S if running else None)(_live_job)(str(ws.path), latest[0].id, running)


def _seconds_between(start: str, end: str) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return None


def _history(ws: Workspace) -> None:
    jobs = list_jobs(ws, 20)
    if not jobs:
        return
    rows = [{
        "job": j.id, "category": j.category, "method": j.method, "status": j.status, "stage": j.stage,
        "step": f"{j.step}/{j.total}" if j.total else str(j.step), "profile": j.params.get("profile"),
        "device": j.params.get("device"), "seed": j.params.get("seed"),
        "resumes": j.params.get("resumed_from"), "started": j.started_at,
        "took": duration(_seconds_between(j.started_at, j.updated_at)), "message": j.message,
    } for j in jobs]
    st.markdown("**Job history** (newest first)")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="job_history")


# --- models and evaluation -----------------------------------------------------------------

def _evaluate(ws: Workspace, category: str, method: str, device: str) -> None:
    progress = StreamlitProgress()
    try:
        result = evaluate_method(ws, category, method, device=device, progress=progress)
        st.session_state[NOTICE_KEY] = f"Evaluated **{category}** on {sum(result.n.values())} test images."
    except (FileNotFoundError, ValueError) as err:
        st.error(str(err))
    finally:
        progress.done()


def _model_table(ws: Workspace, category: str) -> None:
    rows = []
    for name in METHODS:
        record = ws.model_record(category, name)
        if record is None:
            continue
        metrics = record.metrics or {}
        auroc = metrics.get("auroc") or {}
        rows.append({
            "method": name, "built": record.created_at, "profile": record.settings.get("profile"),
            "changed settings": _changed_text(record.settings.get("settings_changes") or {}),
            "fit seconds": round(metrics.get("seconds_fit", 0.0), 1),
            "AUROC logical": auroc.get("logical"), "AUROC structural": auroc.get("structural"),
        })
    if rows:
        st.markdown(f"**Models of {category}**")
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="model_table")


def _changed_text(changes: dict) -> str:
    return ", ".join(f"{part}.{name}={value}" for part, fields in changes.items() for name, value in fields.items())


def train_page() -> None:
    st.title("Train")
    ws = require_workspace()
    category = require_category(ws, key="train_category")
    method = select_method(key="train_method")
    st.caption(METHODS[method].summary)
    blocked = method == ZEROSHOT.name and _zeroshot_inputs(ws, category)
    if METHODS[method].segments:  # its fit trains the segmenter on the pseudo-labels
        state = "on" if weighting_enabled(ws, category) else "off"
        st.caption(f"Segmentation training: confidence weighting of the pseudo-labels is **{state}** "
                   "(switch it on the Clusters page).")
    profile, device, seed = _settings()
    changes = _training_length(method, profile)
    left, right = st.columns(2)
    if left.button("Start training job", type="primary", key="fit_button", icon=":material/play_arrow:",
                   help="Runs in the background; one job per workspace at a time", disabled=blocked):
        _launch(ws, category, method, profile, device, seed, changes)
    fitted = ws.model_record(category, method) is not None
    running = running_job(ws)
    busy = running is not None and (running.category, running.method) == (category, method)
    if right.button("Evaluate on the test images", key="evaluate_button", disabled=not fitted or busy,
                    help="Scores every test image here (not as a job) and stores the scores and maps for Inspect"
                    + ("; waits until the running job refitting this model ends" if busy else "")):
        _evaluate(ws, category, method, device)
    if NOTICE_KEY in st.session_state:
        st.info(st.session_state.pop(NOTICE_KEY))  # once: afterwards the job panel says how it goes
    _job_panel(ws)
    _history(ws)
    _model_table(ws, category)
    if fitted:
        st.page_link("pages/inspect.py", label="Next: inspect the heat maps, worst images first", icon=":material/arrow_forward:")
    else:
        st.caption("Next: start a job for this category (the instant detector takes seconds), then inspect its heat maps.")


ensure_frame()
train_page()
