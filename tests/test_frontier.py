"""The frontier command: held-out view, scoring, resumable points, table and plot (runs faked)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashioncomp import frontier
from fashioncomp.data.dataset_reader import read_train
from fashioncomp.submission import write_submission


def test_holdout_view_trains_on_three_quarters_and_hides_the_labels(tiny_dataset, tmp_path):
    view, held = frontier.holdout_view(tiny_dataset, tmp_path, None)
    train = pd.read_csv(view / "train.csv")
    test = pd.read_csv(view / "test.csv")
    assert list(test.columns) == ["file_path"] and list(test["file_path"]) == held.file_paths
    assert 20 <= len(test) <= 28 and len(train) + len(test) == 96  # a stratified quarter
    assert not set(train["file_path"]) & set(test["file_path"])
    assert all((view / p).is_file() for p in test["file_path"])  # images reached through the links
    again, held2 = frontier.holdout_view(tiny_dataset, tmp_path / "again", None)
    assert held2.file_paths == held.file_paths  # fixed: seeded
    listed = tmp_path / "holdout.txt"
    listed.write_text("\n".join(held.file_paths[:5]))
    _, five = frontier.holdout_view(tiny_dataset, tmp_path / "listed", listed)
    assert five.file_paths == held.file_paths[:5]
    listed.write_text("nope.jpg\n")
    with pytest.raises(frontier.FrontierError, match="not in"):
        frontier.holdout_view(tiny_dataset, tmp_path / "bad", listed)


def test_score_submission(tiny_dataset, tmp_path):
    data, _ = read_train(tiny_dataset, check_images=False)
    held = data.subset(np.arange(10))
    write_submission(tmp_path / "perfect", held.file_paths, held.categories, held.attributes.astype(bool))
    assert frontier.score_submission(held, tmp_path / "perfect") == {
        "category_accuracy": 1.0, "attribute_mean_f1": 1.0, "attribute_macro_f1": 1.0, "attribute_micro_f1": 1.0}
    wrong = (held.categories + 1) % 9
    write_submission(tmp_path / "wrong", held.file_paths, wrong, np.zeros_like(held.attributes, dtype=bool))
    scores = frontier.score_submission(held, tmp_path / "wrong")
    assert scores["category_accuracy"] == 0.0 and scores["attribute_mean_f1"] == 0.0
    with pytest.raises(frontier.FrontierError, match="rows differ"):
        frontier.score_submission(data.subset(np.arange(5)), tmp_path / "perfect")


def test_run_frontier_orders_resumes_and_writes_table_and_plot(tiny_dataset, tmp_path, monkeypatch):
    calls = []
    data, _ = read_train(tiny_dataset, check_images=False)
    truth = dict(zip(data.file_paths, zip(data.categories, data.attributes.astype(bool))))

    def fake(cmd, log):
        """Writes a perfect submission (and the recipe's plan.json) instead of training."""
        cmd = [str(c) for c in cmd]
        calls.append(cmd)
        out = Path(cmd[cmd.index("--out") + 1])
        if "run_all.sh" in cmd[1]:
            name = cmd[cmd.index("--name") + 1]
            plan = Path(cmd[cmd.index("--runs") + 1]) / name / "plan.json"
            plan.parent.mkdir(parents=True, exist_ok=True)
            plan.write_text(json.dumps({"speeds": {"train_ips": 100.0, "infer_ips": 300.0},
                                        "stage_seconds": {"setup and report": 30.0}}))
            out = out / name
        paths = list(pd.read_csv(Path(cmd[cmd.index("--data") + 1]) / "test.csv")["file_path"])
        write_submission(out, paths, np.array([truth[p][0] for p in paths]), np.stack([truth[p][1] for p in paths]))
        return 0.9 * float(cmd[cmd.index("--budget") + 1][:-1]) if "run_all.sh" in cmd[1] else 1.5

    monkeypatch.setattr(frontier, "_timed_command", fake)
    points = frontier.run_frontier(tiny_dataset, Path("configs/cpu.yaml"), [5, 10], tmp_path / "w", None)
    assert [(p.method, p.budget_minutes) for p in points] == [
        ("logreg", None), ("recipe", 5), ("plain", 5), ("recipe", 10), ("plain", 10)]
    assert all(p.scores["category_accuracy"] == 1.0 for p in points)
    plain_5 = next(c for c in calls if "fashioncomp.baselines.plain" in c and "5m" in c[c.index("--out") + 1])
    assert plain_5[plain_5.index("--minutes") + 1] == "4.50"  # the recipe's measured wall minutes at 5
    assert "--budget" in calls[1] and calls[1][calls[1].index("--budget") + 1] == "5m"

    calls.clear()
    again = frontier.run_frontier(tiny_dataset, Path("configs/cpu.yaml"), [5, 10, 20], tmp_path / "w", None)
    assert len(again) == 7 and len(calls) == 2  # only the new budget ran
    out = frontier.write_frontier(again, tmp_path / "docs" / "frontier.md", "python -m fashioncomp.frontier ...",
                                  "samples")
    text = out.read_text()
    assert "| recipe | 20 | 18.0 | 1.0000 | 1.0000 | 1.0000 | 1.0000 |" in text and "![score against minutes](frontier.png)" in text
    assert "- 20 min: recipe - plain = category acc +0.0000, attribute mean-F1 (optimised) +0.0000" in text
    assert (tmp_path / "docs" / "frontier.png").stat().st_size > 10_000


def _point(method, budget, cat, samples, macro, micro=None):
    scores = {"category_accuracy": cat, "attribute_mean_f1": samples, "attribute_macro_f1": macro}
    if micro is not None:
        scores["attribute_micro_f1"] = micro
    return frontier.Point(method, budget, budget or 0.5, scores)


@pytest.mark.parametrize("chosen, lead", [("samples", "attribute mean-F1 (optimised) -0.0100"),
                                          ("macro", "attribute macro-F1 (optimised) +0.0500"),
                                          ("micro", "attribute micro-F1 (optimised) +0.0200")])
def test_the_optimised_attribute_f1_leads_the_table_and_the_comparison(chosen, lead):
    points = [_point("logreg", None, 0.8, 0.7, 0.6, 0.65), _point("recipe", 20, 0.93, 0.86, 0.78, 0.85),
              _point("plain", 20, 0.92, 0.87, 0.73, 0.83)]
    table = frontier.frontier_table(points, chosen).splitlines()
    assert table[0].split(" | ")[4] == f"{frontier.ATTRIBUTE_F1[chosen].label} (optimised)"
    assert table[0].count("F1") == 3  # the other two follow it
    comparison = frontier.recipe_against_plain(points, chosen)
    assert comparison == [f"- 20 min: recipe - plain = category acc +0.0100, {lead} (wall 20.0 vs 20.0 min)"]


def test_points_cached_before_micro_f1_show_a_dash():
    points = [_point("recipe", 5, 0.9, 0.8, 0.7), _point("plain", 5, 0.9, 0.8, 0.7, 0.75)]
    table = frontier.frontier_table(points, "micro")
    assert "| recipe | 5 | 5.0 | 0.9000 | — | 0.8000 | 0.7000 |" in table


def test_macro_f1_counts_only_attributes_present_in_the_held_labels(tiny_dataset, tmp_path):
    """The leaderboard scorer averages macro-F1 over the attributes that occur in the truth."""
    data, _ = read_train(tiny_dataset, check_images=False)
    held = data.subset(np.arange(12))
    present = held.attributes.astype(bool).any(axis=0)
    assert not present.all()  # the tiny set leaves some attributes out of 12 rows
    write_submission(tmp_path / "s", held.file_paths, held.categories, held.attributes.astype(bool))
    scores = frontier.score_submission(held, tmp_path / "s")
    assert scores["attribute_macro_f1"] == 1.0  # sklearn's macro (absent attributes score 0) would be lower


def test_timed_command_logs_output_and_names_the_log_on_failure(tmp_path):
    import sys

    minutes = frontier._timed_command([sys.executable, "-c", "print('trained')"], tmp_path / "ok.txt")
    assert 0 < minutes < 1 and (tmp_path / "ok.txt").read_text() == "trained\n"
    with pytest.raises(frontier.FrontierError, match="failed \\(exit 3\\); see .*bad.txt"):
        frontier._timed_command([sys.executable, "-c", "import sys; print('oops'); sys.exit(3)"], tmp_path / "bad.txt")
    assert (tmp_path / "bad.txt").read_text() == "oops\n"


def test_timed_command_runs_python_from_the_frontiers_own_interpreter(tmp_path, monkeypatch):
    """run_all.sh runs "$PYTHON", else `python` from PATH: it must be the frontier's, not whatever PATH had first."""
    import sys

    default = 'PYTHON="${PYTHON:-python}"'
    assert default in (frontier.REPO / "pipelines" / "run_all.sh").read_text()
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # as when the frontier is started by the venv's full path
    monkeypatch.delenv("PYTHON", raising=False)
    frontier._timed_command(["bash", "-c", default + "; \"$PYTHON\" -c 'import sys; print(sys.prefix)'"],
                            tmp_path / "which.txt")
    assert (tmp_path / "which.txt").read_text().strip() == sys.prefix
