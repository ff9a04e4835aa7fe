"""The run report on a tiny real run (test_resnet, 2 folds, 1 epoch), complete and partial."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fashioncomp import pipeline
from fashioncomp.inference.predict import predict_probs
from fashioncomp.io import read_json
from fashioncomp.metrics import score_all
from fashioncomp.postprocessing.decode import decode_attributes
from fashioncomp import report
from fashioncomp.report import load_context, main, section_label_decisions, write_report
from fashioncomp.training.checkpoint import load_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
OVERRIDES = ["model.backbone=test_resnet", "train.epochs=1", "split.n_folds=2", "data.image_size=32"]
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")
ANY_LINK = re.compile(r"\]\(([^)]+)\)")


@pytest.fixture(scope="module")
def full_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> pipeline.Run:
    run = pipeline.init_run(tmp_path_factory.mktemp("runs") / "tiny", tiny_dataset, REPO / "configs" / "default.yaml",
                            OVERRIDES)
    pipeline.stage_split(run)
    pipeline.stage_train(run, progress=False)
    pipeline.stage_oof(run)
    pipeline.stage_thresholds(run)
    pipeline.stage_predict(run)
    return run


@pytest.fixture(scope="module")
def full_report(full_run: pipeline.Run) -> str:
    path = write_report(full_run.dir)
    assert path == full_run.dir / "report.md"
    return path.read_text()


def _copy_without(run: pipeline.Run, destination: Path, *names: str) -> Path:
    copy = Path(shutil.copytree(run.dir, destination))
    for name in names:
        target = copy / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return copy


def _table_rows(markdown: str, first_cell: str) -> list[list[str]]:
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {first_cell} |")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def _check_links(run_dir: Path, markdown: str) -> list[Path]:
    """Every link is a PNG under report/ that exists and shows a real, non-blank picture."""
    links = ANY_LINK.findall(markdown)
    assert links and links == IMAGE_LINK.findall(markdown)
    paths = []
    for link in links:
        assert link.startswith("report/") and link.endswith(".png"), link
        path = run_dir / link
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.width >= 500 and image.height >= 350, (link, image.size)
            pixels = np.asarray(image.convert("L"), dtype=float)
        assert pixels.std() > 10 and len(np.unique(pixels)) > 20, f"{link} looks blank"
        paths.append(path)
    return paths


def test_report_links_only_to_existing_valid_pngs(full_run, full_report):
    paths = _check_links(full_run.dir, full_report)
    names = {p.name for p in paths}
    assert {"folds_overview.png", "fold_0_curves.png", "fold_1_curves.png", "category_confusion.png",
            "attribute_f1.png", "group_scores.png"} <= names
    # one confusion matrix per multiclass attribute group
    assert {f"group_{g.name}_confusion.png" for g in full_run.schema.multiclass_groups} <= names
    assert sorted(p.name for p in (full_run.dir / "report").iterdir()) == sorted(names)


def test_report_names_every_category_and_attribute(full_run, full_report):
    for name in full_run.schema.categories:
        assert len(_table_rows(full_report, name)) == 1, name
    for group in full_run.schema.groups:
        for index in group.indices:
            assert len(_table_rows(full_report, f"{full_run.schema.attributes[index]} ({group.name})")) == 1


def test_summary_matches_the_stage_outputs(full_run, full_report):
    at_half = read_json(full_run.dir / "oof_scores.json")
    tuned = read_json(full_run.dir / "thresholds.json")["oof_scores_tuned"]
    summary = full_report.split("## Gains")[0]
    # the attribute F1 the run takes the leaderboard to use (metrics.attribute_f1) is named as such
    for key, label in [("category_accuracy", "category accuracy"),
                       ("attribute_mean_f1", "attribute mean-F1 (metrics.attribute_f1: samples)"),
                       ("attribute_macro_f1", "attribute macro-F1"), ("attribute_micro_f1", "attribute micro-F1"),
                       ("score", "score (mean of category accuracy and attribute mean-F1)")]:
        assert _table_rows(summary, label) == [[label, f"{at_half[key]:.4f}", f"{tuned[key]:.4f}"]]
    assert 'a "Mean F1" it does not define further. This run takes it as **samples**' in summary


def test_gains_table_matches_thresholds_json(full_run, full_report):
    thresholds = read_json(full_run.dir / "thresholds.json")
    at_half = read_json(full_run.dir / "oof_scores.json")
    rows = {row[1]: row for row in _table_rows(full_report, "threshold tuning")}
    # the chosen attribute F1 (samples by default) first, then the others
    assert list(rows) == ["attribute mean-F1", "attribute macro-F1", "attribute micro-F1"]
    mean_f1 = rows["attribute mean-F1"]
    assert mean_f1[2:5] == [f"{thresholds['oof_mean_f1_at_0.5']:.4f}", f"{thresholds['oof_mean_f1_tuned']:.4f}",
                            f"{thresholds['oof_mean_f1_tuned'] - thresholds['oof_mean_f1_at_0.5']:+.4f}"]
    macro_half, macro_tuned = at_half["attribute_macro_f1"], thresholds["oof_scores_tuned"]["attribute_macro_f1"]
    assert rows["attribute macro-F1"][2:5] == [f"{macro_half:.4f}", f"{macro_tuned:.4f}", f"{macro_tuned - macro_half:+.4f}"]
    ensemble = [row for row in _table_rows(full_report, "fold ensemble (2 models)")]
    assert len(ensemble) == 1 and "not measured" in ensemble[0]


def test_tta_gain_matches_predictions_made_again_without_tta(full_run, full_report):
    """The report's no-TTA side (scores stored in best.pt) equals predicting each fold again without TTA."""
    data = full_run.train_data()
    folds = full_run.folds(data)
    images, _ = full_run.images(data.file_paths)
    oof = np.load(full_run.dir / "oof.npz")
    cpu = torch.device("cpu")
    without, with_tta = [], []
    for fold in range(full_run.n_folds):
        index = np.flatnonzero(folds == fold)
        sub = data.subset(index)
        cat, attr = predict_probs(full_run.load_fold_model(fold, cpu), images, index, full_run.tasks,
                                  full_run.schema.num_attributes, cpu, tta=("none",))
        for probs, out in [((cat, attr), without), ((oof["category"][index], oof["attributes"][index]), with_tta)]:
            pred = decode_attributes(probs[1], 0.5, full_run.decode_groups)
            out.append(score_all(sub.categories, probs[0], sub.attributes, pred, (), sub.attribute_known))
    tta_name = f"TTA {list(full_run.config['predict']['tta'])}"
    rows = {row[1]: row for row in _table_rows(full_report, tta_name)}
    for key, label in [("category_accuracy", "category accuracy"), ("attribute_mean_f1", "attribute mean-F1"),
                       ("attribute_macro_f1", "attribute macro-F1")]:
        no_tta = np.mean([s[key] for s in without])
        tta = np.mean([s[key] for s in with_tta])
        assert float(rows[label][2]) == pytest.approx(no_tta, abs=6e-5), label
        assert float(rows[label][3]) == pytest.approx(tta, abs=6e-5), label


def test_run_without_oof_reports_what_is_missing(full_run, full_report, tmp_path):
    run_dir = _copy_without(full_run, tmp_path / "partial", "fold_1", "oof.npz", "oof_scores.json",
                            "thresholds.json", "test_probs.npz")
    assert main(["--run", str(run_dir)]) == 0
    report = (run_dir / "report.md").read_text()
    for text in ["fold 1: not trained", "`oof.npz`: not written yet", "`thresholds.json`: not written yet",
                 "`test_probs.npz`: not written yet"]:
        assert text in report
    assert _table_rows(report, "category accuracy") == [["category accuracy", "—", "—"]]
    names = {p.name for p in _check_links(run_dir, report)}
    assert names == {"folds_overview.png", "fold_0_curves.png"}
    # figures left over from the complete run's report are removed, not left lying about
    assert sorted(p.name for p in (run_dir / "report").iterdir()) == sorted(names)


def test_oof_of_some_folds_without_thresholds_reports_what_exists(full_run, full_report, tmp_path):
    run_dir = _copy_without(full_run, tmp_path / "one_fold", "fold_1", "oof.npz", "oof_scores.json",
                            "thresholds.json", "test_probs.npz")
    run = pipeline.Run(run_dir)
    pipeline.stage_oof(run)
    report = write_report(run_dir).read_text()
    covered = int((run.folds(run.train_data()) == 0).sum())
    assert f"OOF covers {covered} of 96 training images" in report
    assert f"{covered} OOF images with a known category" in report
    assert _table_rows(report, "threshold tuning")[0][-1].startswith("not measured")
    assert len(_table_rows(report, "TTA ['none', 'hflip']")) == 4  # category accuracy and the three attribute F1s
    # per-attribute F1 at 0.5 only: no tuned column without thresholds.json
    assert "| attribute (group) | positives / labelled | decision | F1, threshold 0.5 |" in report
    links = {p.name for p in _check_links(run_dir, report)}
    assert {"category_confusion.png", "attribute_f1.png", "group_scores.png", "fold_0_curves.png"} <= links
    assert "fold_1_curves.png" not in links


def test_checkpoint_changed_after_oof_is_left_out_of_the_tta_gain(full_run, full_report, tmp_path):
    run_dir = _copy_without(full_run, tmp_path / "stale")
    touched = run_dir / "fold_0" / "best.pt"
    os.utime(touched, (touched.stat().st_mtime + 60,) * 2)  # newer, same content: still what oof used
    state = load_checkpoint(run_dir / "fold_1" / "best.pt")
    save_checkpoint(run_dir / "fold_1" / "best.pt", {**state, "epoch": -1})  # fold 1 retrained after the oof stage
    report = write_report(run_dir).read_text()
    assert "`oof.npz` was not made from the current fold_1/best.pt" in report
    rows = _table_rows(report, "TTA ['none', 'hflip']")
    assert len(rows) == 4 and all(row[-1] == "fold 0; threshold 0.5" for row in rows)


def test_many_attributes_are_split_over_several_figures(full_run, full_report, tmp_path, monkeypatch):
    monkeypatch.setattr(report, "MAX_BARS_PER_FIGURE", 8)
    run_dir = _copy_without(full_run, tmp_path / "split")
    text = write_report(run_dir).read_text()
    n_parts = -(-full_run.schema.num_attributes // 8)
    names = {p.name for p in _check_links(run_dir, text)}
    assert {f"attribute_f1_{k}.png" for k in range(1, n_parts + 1)} <= names and "attribute_f1.png" not in names


def _section(markdown: str, title: str) -> str:
    """The text of one `## title` section, up to the next section."""
    return markdown.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_label_decisions_follow_the_summary_and_the_stage_outputs(full_run, full_report):
    headings = re.findall(r"^## (.+)$", full_report, flags=re.M)
    assert headings[:4] == ["Summary", "Label decisions", "Time", "Gains"]
    section = _section(full_report, "Label decisions")
    schema = full_run.schema
    for group in schema.groups:  # the synthetic dataset declares its groups in schema.json
        members = ", ".join(schema.attributes[i] for i in group.indices)
        assert f"- **{group.name}** ({group.type}, declared in the schema): {members}" in section
    assert "found in the labels" not in section and "data.schema" not in section
    thresholds = read_json(full_run.dir / "thresholds.json")
    assert f"- threshold metric: **{thresholds['metric']}**" in section
    assert (f"- then refined for: **attribute mean-F1** (`metrics.attribute_f1: samples`, F1 of each image's attribute "
            f"set, averaged over images): coordinate ascent over the thresholds, decoding as the submission does; OOF "
            f"{thresholds['oof_attribute_f1_start']:.4f} with the per-attribute thresholds, "
            f"{thresholds['oof_attribute_f1_tuned']:.4f} refined") in section
    argmax = set(thresholds["decoded_by_group_argmax"])
    assert argmax == {i for g in schema.multiclass_groups for i in g.indices}
    group_of = {i: g.name for g in schema.groups for i in g.indices}
    for i, name in enumerate(schema.attributes):
        expected = [] if i in argmax else [[name, group_of.get(i, "—"), f"{thresholds['thresholds'][i]:.2f}",
                                            "yes" if thresholds["fallback"][i] else "no"]]
        assert _table_rows(section, name) == expected, name
    assert f"{schema.num_attributes - len(argmax)} of {schema.num_attributes} attributes are decided by a threshold" \
        in section


def _edit_json(path: Path, edit) -> None:
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))


def test_label_decisions_of_discovered_groups_and_unlearned_attributes(full_run, full_report, tmp_path):
    run_dir = _copy_without(full_run, tmp_path / "discovered")
    discovered = full_run.schema.groups[0].name

    def mark(raw):
        raw["attribute_groups"][discovered]["discovered"] = True

    def decide(raw):  # as the stage records it when some training image has no attribute
        raw.update(at_least_one=False, at_least_one_setting="auto", at_least_one_scores={"off": 0.5},
                   unlearned=[0, 2])

    _edit_json(run_dir / "schema.json", mark)
    _edit_json(run_dir / "thresholds.json", decide)
    section = _section(write_report(run_dir).read_text(), "Label decisions")
    first, *others = full_run.schema.groups
    assert f"- **{first.name}** ({first.type}, found in the labels): " in section
    for group in others:
        assert f"- **{group.name}** ({group.type}, declared in the schema): " in section
    assert "inferred from the training labels" in section
    assert f"(`{run_dir / 'schema.json'}`) and pass it back with `--set data.schema=FILE`" in section
    assert "`--set data.discover_groups=false` turns discovery off" in section
    assert "- at least one attribute per image: **off** (auto: off because some training images have none)" in section
    names = full_run.schema.attributes
    assert (f"**Warning: not learned: {names[0]}, {names[2]} (never predicted right out of fold: try "
            "loss.attribute=asl, more epochs or a larger image size).**") in section


@pytest.mark.parametrize("setting, applied, scores, reason", [
    ("auto", True, {"off": 0.5, "on": 0.6}, "auto: on because every training image has at least one attribute and "
     "the rule does not lower the OOF attribute mean-F1: 0.5000 without it, 0.6000 with it"),
    ("auto", False, {"off": 0.6, "on": 0.5}, "auto: off because, although every training image has at least one "
     "attribute, the rule lowers the OOF attribute mean-F1: 0.6000 without it, 0.5000 with it"),
    ("auto", False, {"off": 0.5}, "auto: off because some training images have none"),
    ("auto", True, None, "auto: on because every training image has at least one attribute"),  # an older run
    (True, True, {"on": 0.5}, "set in the config (`thresholds.at_least_one: true`)"),
    (False, False, {"off": 0.5}, "set in the config (`thresholds.at_least_one: false`)"),
    (None, True, None, "how it was chosen is not recorded in this run's `thresholds.json`"),  # thresholds.json of an older run
])
def test_label_decisions_explain_the_at_least_one_rule(full_run, full_report, setting, applied, scores, reason):
    ctx = load_context(full_run.dir)
    ctx.thresholds.update(at_least_one=applied, at_least_one_setting=setting, at_least_one_scores=scores)
    if setting is None:
        del ctx.thresholds["at_least_one_setting"]
    if scores is None:
        del ctx.thresholds["at_least_one_scores"]
    section = section_label_decisions(ctx)
    assert f"- at least one attribute per image: **{'on' if applied else 'off'}** ({reason})" in section


def test_label_decisions_without_groups_thresholds_or_unlearned(full_run, full_report):
    ctx = load_context(full_run.dir)
    ctx.run.schema = ctx.run.schema.without_groups()
    ctx.thresholds["decoded_by_group_argmax"] = []
    del ctx.thresholds["unlearned"]  # an older run
    section = section_label_decisions(ctx)
    assert "no attribute groups: every attribute is an independent sigmoid with its own threshold" in section
    assert "**Warning" not in section and "does not record which attributes were never learned" in section
    n = full_run.schema.num_attributes
    assert f"{n} of {n} attributes are decided by a threshold." in section
    t = ctx.thresholds
    assert any(t["fallback"])  # rare attributes of the tiny run: the "yes" side is shown too
    for i, name in enumerate(full_run.schema.attributes):
        assert _table_rows(section, name) == [[name, "—", f"{t['thresholds'][i]:.2f}",
                                               "yes" if t["fallback"][i] else "no"]], name

    ctx.thresholds["unlearned"] = []
    assert "never learned" not in section_label_decisions(ctx)
    ctx.thresholds["decoded_by_group_argmax"] = list(range(n))
    assert "All attributes are decoded by their multiclass group's argmax" in section_label_decisions(ctx)
    ctx.thresholds = None
    assert "Not available yet: no `thresholds.json`" in section_label_decisions(ctx)


def test_not_a_run_directory_is_a_clear_error(tmp_path, capsys):
    assert main(["--run", str(tmp_path / "nothing")]) == 2
    assert "is not a run directory" in capsys.readouterr().err
