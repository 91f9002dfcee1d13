"""Synthetic benchmark generator: layout, determinism, rules, anomalies, crash safety."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from pipeline.data.synth import (CATEGORIES, DEFAULT_CATEGORIES, SynthSettings, generate, generate_category, image_rng,
                                  plan)
from pipeline.data.synth import generator as synth_generator

SIZE = 96
COUNTS = dict(n_train=2, n_validation=2, n_test_good=2, n_logical=4, n_structural=4)
EIGHT = np.ones((3, 3), dtype=bool)
FOLDERS = ("train/good", "validation/good", "test/good", "test/logical_anomalies", "test/structural_anomalies")
SURFACES = ("textured_plate",)
"""Bare-surface categories: no rules, no logical anomalies, deliberately subtle defects."""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(SynthSettings(out=out, categories=tuple(CATEGORIES), size=SIZE, **COUNTS))
    return out


def _load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- rule checkers, written from the rules alone (component maps and colours) ---------------------

def _pin_tray_problems(comp: np.ndarray, image: np.ndarray) -> list[str]:
    pins, n_pins = ndimage.label(comp == 3, structure=EIGHT)
    cells, n_cells = ndimage.label((comp == 1) | (comp == 3))
    problems = []
    if (ndimage.binary_dilation(comp == 3, structure=EIGHT) & (comp == 2)).any():
        problems.append("a pin lies on a divider or the rim")
    if n_cells != 6:
        problems.append(f"{n_cells} compartments")
    for c in range(1, n_cells + 1):
        inside = np.unique(pins[cells == c])
        if len(inside[inside > 0]) != 1:
            problems.append(f"compartment with {len(inside[inside > 0])} pins")
    return problems


def _fastener_problems(comp: np.ndarray, image: np.ndarray) -> list[str]:
    counts = {k: ndimage.label(comp == k, structure=EIGHT)[1] for k in (1, 2, 3)}
    return [] if counts == {1: 2, 2: 2, 3: 1} else [f"counts {counts}"]


def _cable_problems(comp: np.ndarray, image: np.ndarray) -> list[str]:
    cols = np.flatnonzero((comp == 1).any(axis=0))
    large = (cols[-1] - cols[0]) / comp.shape[1] > 0.56
    problems = []
    cable = comp == 2
    if cable.sum() < 0.01 * cable.size:
        problems.append("no cable")
    else:
        r, _, b = np.median(image[cable].astype(float), axis=0)
        if (b > r) != large:
            problems.append(f"{'blue' if b > r else 'red'} cable on a {'large' if large else 'small'} connector")
    screws = ndimage.label(comp == 3, structure=EIGHT)[1]
    if screws != 2:
        problems.append(f"{screws} screws")
    return problems


def _chromaticity(pixels: np.ndarray) -> np.ndarray:
    """Median colour with brightness divided out, over the clearly coloured pixels."""
    rgb = pixels.astype(float) + 1
    chroma = rgb / rgb.sum(axis=1, keepdims=True)
    saturated = chroma.max(axis=1) - chroma.min(axis=1) > 0.15
    return np.median(chroma[saturated] if saturated.sum() > 10 else chroma, axis=0)


def _bottle_problems(comp: np.ndarray, image: np.ndarray) -> list[str]:
    rows = np.arange(comp.shape[0])[:, None].repeat(comp.shape[1], axis=1)
    bottom = rows[comp > 0].max()
    label, drink = comp == 3, comp == 4
    problems = []
    if label.sum() < 0.02 * comp.size:
        return ["no label"]
    height = (bottom - rows[label].mean()) / comp.shape[0]
    if abs(height - 0.28) > 0.045:
        problems.append(f"label centre {height:.3f} above the bottom")
    if (bottom - rows[drink].min()) / comp.shape[0] < 0.45:
        problems.append("filled too low")
    if np.abs(_chromaticity(image[label]) - _chromaticity(image[drink])).max() > 0.08:
        problems.append("drink colour differs from the label")
    return problems


def _plate_problems(comp: np.ndarray, image: np.ndarray) -> list[str]:
    """No rules: the plate, one class, fills the whole frame whatever the image shows."""
    return [] if (comp == 1).all() else [f"{(comp != 1).mean():.1%} of the frame is not plate"]


CHECKERS = {"pin_tray": _pin_tray_problems, "fastener_kit": _fastener_problems, "cable_connector": _cable_problems,
            "bottle": _bottle_problems, "textured_plate": _plate_problems}


def _render(name: str, seed: int, anomaly: str | None):
    return CATEGORIES[name].render(np.random.default_rng([seed, 7]), SIZE, anomaly)


# --- tests ------------------------------------------------------------------------------------------

def test_every_category_has_a_rule_checker_here():
    assert set(CHECKERS) == set(CATEGORIES) and len(CATEGORIES) >= 3


@pytest.mark.parametrize("name", sorted(CATEGORIES))
def test_layout(dataset, name):
    root = dataset / name
    spec = CATEGORIES[name]
    for folder, kind, n in zip(FOLDERS, ("good", "good", "good", "logical", "structural"), COUNTS.values()):
        n = n if spec.anomaly_kinds(kind) or kind == "good" else 0  # a surface has no logical anomalies
        names = sorted(p.name for p in (root / folder).iterdir())
        assert names == [f"{i:03d}.png" for i in range(n)], folder
        for file in names:
            image = Image.open(root / folder / file)
            assert image.mode == "RGB" and image.size == (SIZE, SIZE)
            comp = Image.open(root / "components" / folder / file)
            assert comp.mode == "L" and comp.size == (SIZE, SIZE)
            assert set(np.unique(np.asarray(comp))) <= {0, *spec.classes}
    for kind in ("logical_anomalies", "structural_anomalies"):
        gt = root / "ground_truth" / kind
        assert sorted(p.name for p in gt.iterdir()) == sorted(p.stem for p in (root / "test" / kind).iterdir())
        for folder in gt.iterdir():
            masks = sorted(folder.iterdir())
            assert masks and masks[0].name == "000.png"
            for mask_path in masks:
                mask = Image.open(mask_path)
                assert mask.mode == "L" and mask.size == (SIZE, SIZE)
                values = set(np.unique(np.asarray(mask)))
                assert values == {0, 255}, mask_path
    assert not (root / "ground_truth" / "good").exists()


@pytest.mark.parametrize("name", sorted(CATEGORIES))
def test_info_describes_every_anomaly_image(dataset, name):
    info = json.loads((dataset / name / "synth_info.json").read_text())
    spec = CATEGORIES[name]
    assert info["category"] == name and info["seed"] == 0 and info["size"] == SIZE
    assert info["classes"] == {str(k): v for k, v in spec.classes.items()}
    assert info["rules"] or not spec.logical, "a category with logical anomalies states its rules"
    on_disk = {str(p.relative_to(dataset / name)) for p in (dataset / name / "test").rglob("*anomalies/*.png")}
    assert set(info["images"]) == on_disk
    logical = [v for k, v in info["images"].items() if "logical" in k]
    structural = [v for k, v in info["images"].items() if "structural" in k]
    assert set(logical) <= set(info["logical_anomalies"]) and set(structural) <= set(info["structural_anomalies"])
    # Subtypes cycle, so the first images cover several kinds rather than one.
    assert len(set(logical)) == min(len(spec.logical), COUNTS["n_logical"])


def test_same_seed_gives_identical_bytes_and_other_seed_differs(dataset, tmp_path):
    again = generate_category("fastener_kit", SynthSettings(out=tmp_path / "a", size=SIZE, **COUNTS))
    assert _files(again) == _files(dataset / "fastener_kit")
    other = generate_category("fastener_kit", SynthSettings(out=tmp_path / "b", size=SIZE, seed=1, **COUNTS))
    for folder in FOLDERS:
        assert (other / folder / "000.png").read_bytes() != (again / folder / "000.png").read_bytes()


def test_an_image_does_not_depend_on_the_counts_of_other_splits(dataset, tmp_path):
    counts = dict(COUNTS, n_train=5, n_validation=0, n_test_good=1)
    root = generate_category("pin_tray", SynthSettings(out=tmp_path, size=SIZE, **counts))
    for rel in ("train/good/001.png", "test/logical_anomalies/002.png", "test/structural_anomalies/003.png"):
        assert (root / rel).read_bytes() == (dataset / "pin_tray" / rel).read_bytes()
    assert not any((root / "validation" / "good").iterdir())


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_good_images_obey_the_rules(dataset, name):
    for folder in FOLDERS[:3]:
        for path in sorted((dataset / name / folder).glob("*.png")):
            comp = _load(dataset / name / "components" / folder / path.name)
            assert CHECKERS[name](comp, _load(path)) == [], f"{name}/{folder}/{path.name}"
    for seed in range(25):
        rendered = _render(name, seed, None)
        assert CHECKERS[name](rendered.components, rendered.image) == [], f"{name} seed {seed}"
        assert rendered.masks == ()


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_logical_anomalies_break_a_rule_without_damage(name):
    for anomaly in CATEGORIES[name].logical:
        for seed in range(6):
            rendered = _render(name, seed, anomaly)
            assert CHECKERS[name](rendered.components, rendered.image), f"{name}/{anomaly} seed {seed}"
            assert rendered.masks and all(m.any() for m in rendered.masks)


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_structural_anomalies_are_local_damage_that_keeps_the_rules(name):
    for anomaly in CATEGORIES[name].structural:
        for seed in range(4):
            rendered = _render(name, seed, anomaly)
            union = np.logical_or.reduce([m > 0 for m in rendered.masks])
            assert 0.002 < union.mean() < 0.05, f"{name}/{anomaly}: mask covers {union.mean():.2%}"
            # Damage is not a logical anomaly too: the counts and pairings still hold.
            assert CHECKERS[name](rendered.components, rendered.image) == [], f"{name}/{anomaly} seed {seed}"


@pytest.mark.parametrize("name", sorted(set(CATEGORIES) - set(SURFACES)))
def test_defects_are_visible_in_the_image(name):
    """Inside a stain/scratch mask the pixels differ clearly from the same scene without it.

    Surfaces are left out: their defects are subtle on purpose (see the textured_plate tests)."""
    for anomaly in ("stain", "scratch"):
        if anomaly not in CATEGORIES[name].structural:
            continue
        job = plan(CATEGORIES[name], SynthSettings(out=Path("."), n_structural=8))[-1]
        rendered = CATEGORIES[name].render(image_rng(0, name, job), 128, anomaly)
        mask = rendered.masks[0] > 0
        ring = ndimage.binary_dilation(mask, iterations=6) & ~mask
        contrast = np.abs(rendered.image[mask].mean(0) - rendered.image[ring].mean(0)).max()
        assert contrast > 20, f"{name}/{anomaly}: contrast {contrast:.1f}"


def test_normal_variation_between_good_images(dataset):
    images = [_load(p).astype(float) for p in sorted((dataset / "pin_tray" / "train" / "good").glob("*.png"))]
    comps = [_load(p) for p in sorted((dataset / "pin_tray" / "components" / "train" / "good").glob("*.png"))]
    assert np.abs(images[0] - images[1]).mean() > 3
    assert (comps[0] != comps[1]).mean() > 0.01


def test_unknown_category_is_rejected_with_the_valid_names(tmp_path):
    with pytest.raises(ValueError, match="pin_tray"):
        generate_category("teapot", SynthSettings(out=tmp_path))
    with pytest.raises(ValueError, match="teapot"):
        SynthSettings(out=tmp_path, categories=("pin_tray", "teapot"))
    assert list(tmp_path.iterdir()) == []


def test_progress_reaches_the_total(tmp_path):
    calls = []
    generate(SynthSettings(out=tmp_path, categories=("cable_connector",), size=64, n_train=1, n_validation=1,
                           n_test_good=1, n_logical=1, n_structural=1),
             progress=lambda stage, done, total: calls.append((stage, done, total)))
    assert calls[-1] == ("synth:cable_connector", 5, 5)


def test_interrupted_run_leaves_no_category_folder(tmp_path, monkeypatch):
    settings = SynthSettings(out=tmp_path, categories=("pin_tray",), size=64, n_train=3, n_validation=1,
                             n_test_good=1, n_logical=1, n_structural=1)
    real_write, written = synth_generator.write_sample, []

    def failing_write(*args):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(args)
        real_write(*args)

    monkeypatch.setattr(synth_generator, "write_sample", failing_write)
    with pytest.raises(KeyboardInterrupt):
        generate(settings)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_rerun_keeps_the_previous_complete_category(tmp_path, monkeypatch):
    settings = SynthSettings(out=tmp_path, categories=("pin_tray",), size=64, n_train=2, n_validation=1,
                             n_test_good=1, n_logical=1, n_structural=1)
    before = _files(generate_category("pin_tray", settings))

    def failing_write(*args):
        raise OSError("disk full")

    monkeypatch.setattr(synth_generator, "write_sample", failing_write)
    with pytest.raises(OSError):
        generate_category("pin_tray", SynthSettings(out=tmp_path, seed=3, size=64, n_train=1))
    assert _files(tmp_path / "pin_tray") == before
    assert [p.name for p in tmp_path.iterdir()] == ["pin_tray"]


# --- textured_plate: a bare surface with structural defects only ------------------------------------

def _grown(mask: np.ndarray, px: int) -> np.ndarray:
    return ndimage.binary_dilation(mask > 0, structure=EIGHT, iterations=px)


def test_default_set_and_both_demos_leave_the_surface_out(tmp_path, monkeypatch):
    from pipeline import demo

    assert "textured_plate" in CATEGORIES and "textured_plate" not in DEFAULT_CATEGORIES
    assert SynthSettings(out=tmp_path).categories == DEFAULT_CATEGORIES
    assert set(DEFAULT_CATEGORIES) == {"pin_tray", "cable_connector", "fastener_kit", "bottle"}
    seen = []
    monkeypatch.setattr(demo, "add_demo_data", lambda ws, settings, progress: seen.append(settings) or ())
    demo.prepare_demo(tmp_path, fit=False)
    assert seen[0].categories == DEFAULT_CATEGORIES


def test_textured_plate_has_only_structural_anomalies(dataset):
    root, spec = dataset / "textured_plate", CATEGORIES["textured_plate"]
    assert spec.logical == () and spec.structural == ("scratch", "pore", "crack", "dent", "stain")
    assert not any((root / "test" / "logical_anomalies").iterdir())
    assert not any((root / "ground_truth" / "logical_anomalies").iterdir())
    assert [j.kind for j in plan(spec, SynthSettings(out=Path("."), n_logical=9)) if j.kind == "logical"] == []
    info = json.loads((root / "synth_info.json").read_text())
    assert info["logical_anomalies"] == [] and info["rules"] == [] and info["classes"] == {"1": "plate"}
    assert sorted(info["images"].values()) == sorted(spec.structural[:COUNTS["n_structural"]])


def test_textured_plate_good_images_vary_like_photos(dataset):
    images = [_load(p).astype(float) for p in sorted((dataset / "textured_plate").glob("*/good/*.png"))]
    assert len(images) == 6
    for i, a in enumerate(images):
        for b in images[i + 1:]:
            assert np.abs(a - b).mean() > 3
    # Exposure and lighting change too, not only the texture's noise.
    assert np.ptp([im.mean() for im in images]) > 5
    for im in images:
        assert np.ptp(im.mean(axis=2)) > 30, "a flat plate without texture or lighting"
        channels = im.reshape(-1, 3).mean(axis=0)
        assert np.ptp(channels) < 0.08 * channels.mean(), "steel is (nearly) grey"


@pytest.mark.parametrize("anomaly", CATEGORIES["textured_plate"].structural)
def test_surface_defect_lies_where_the_image_changes(anomaly):
    """Compared with the same plate rendered without it, a defect changes the image inside its
    mask (visibly) and nowhere else beyond the mask's rim; masks are small (subtle defects)."""
    render = CATEGORIES["textured_plate"].render
    for seed in range(5):
        good = render(np.random.default_rng([seed, 3]), 256, None)
        bad = render(np.random.default_rng([seed, 3]), 256, anomaly)
        assert good.masks == () and len(bad.masks) == 1
        mask = bad.masks[0] > 0
        assert 0.0005 < mask.mean() < 0.04, f"{anomaly} seed {seed}: mask covers {mask.mean():.2%}"
        diff = np.abs(bad.image.astype(float) - good.image.astype(float)).max(axis=2)
        assert diff[~_grown(bad.masks[0], 2)].max() <= 1, f"{anomaly} seed {seed}: change outside its mask"
        assert diff[mask].mean() > 3 and diff[mask].max() > 12, f"{anomaly} seed {seed}: invisible"


def test_cracks_are_thin_and_dark():
    render = CATEGORIES["textured_plate"].render
    for seed in range(5):
        good = render(np.random.default_rng([seed, 4]), 256, None).image.astype(float).mean(axis=2)
        bad = render(np.random.default_rng([seed, 4]), 256, "crack")
        dark = (good - bad.image.astype(float).mean(axis=2)) > 12
        assert dark.any() and not (dark & ~(bad.masks[0] > 0)).any()
        # Thin: eroding a 2-3 px line twice leaves nothing of it but a pixel or two where a branch forks.
        thick = ndimage.binary_erosion(dark, iterations=2).sum()
        assert thick <= 0.03 * dark.sum(), f"seed {seed}: crack thicker than ~3 px"


def test_textured_plate_is_deterministic_per_seed(dataset, tmp_path):
    again = generate_category("textured_plate", SynthSettings(out=tmp_path, size=SIZE, **COUNTS))
    assert _files(again) == _files(dataset / "textured_plate")
    render = CATEGORIES["textured_plate"].render
    first, second = (render(np.random.default_rng(5), SIZE, "dent") for _ in range(2))
    assert np.array_equal(first.image, second.image) and np.array_equal(first.masks[0], second.masks[0])
    assert not np.array_equal(first.image, render(np.random.default_rng(6), SIZE, "dent").image)
    with pytest.raises(ValueError, match="missing_pin"):
        render(np.random.default_rng(0), SIZE, "missing_pin")
