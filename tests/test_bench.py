import re

from fashioncomp.bench import main


def test_bench_reports_every_mode_and_both_ratios(tiny_dataset, tmp_path, capsys):
    code = main(["--config", "configs/default.yaml", "--data", str(tiny_dataset), "--steps", "2", "--rounds", "1",
                 "--cache-dir", str(tmp_path / "cache"), "--set", "model.backbone=test_resnet",
                 "--set", "data.image_size=32", "--set", "train.batch_size=16"])
    out = capsys.readouterr().out
    assert code == 0
    rows = {}
    for line in out.splitlines():
        match = re.match(r"^(\(a\)|\(b\)|\(c\)|ratio a/b|ratio a/c).*?\s([\d.]+)\s+([\d.]+)$", line)
        if match:
            rows[match.group(1)] = (float(match.group(2)), float(match.group(3)))
    assert set(rows) == {"(a)", "(b)", "(c)", "ratio a/b", "ratio a/c"}, out
    assert all(train > 0 and infer > 0 for train, infer in rows.values())
    # the ratios are the quotients of the rows above them
    assert abs(rows["ratio a/b"][0] - rows["(a)"][0] / rows["(b)"][0]) < 2e-3 * max(1, rows["ratio a/b"][0])
    assert abs(rows["ratio a/c"][1] - rows["(a)"][1] / rows["(c)"][1]) < 2e-3 * max(1, rows["ratio a/c"][1])
