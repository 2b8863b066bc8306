"""The fast-settings check: paired rows and the verdict on the targets."""

import numpy as np

from astrogate.analysis.fast_check import (
    HIDDEN_CUES,
    compare,
    gated_variants,
    hidden_problems,
    quick_problems,
    report,
    verdict,
)
from astrogate.analysis.benchmark import load_benchmark_config
from astrogate.models.abstract import REFERENCE_SETTINGS, FAST_SETTINGS, RunSettings


def row(reference, fast, lost, gained, trials=48):
    return {"cell": "c", "model": "m", "trials": trials, "reference_exact": reference, "fast_exact": fast,
            "lost": lost, "gained": gained, "reference_seconds": 1.0, "fast_seconds": 0.1}


def test_verdict_allows_one_trial_in_48_per_cell_and_half_a_percent_lost_overall():
    assert verdict([row(40, 40, 0, 0), row(40, 39, 1, 0)] + [row(48, 48, 0, 0)] * 3)["met"]
    assert not verdict([row(40, 38, 2, 0)])["met"]  # two trials apart in one cell
    assert not verdict([row(40, 39, 1, 0), row(40, 39, 1, 0)])["met"]  # 2 of 80 retrieved trials lost: 2.5 %
    assert not verdict([row(14, 15, 0, 1, trials=16)])["met"]  # one in 16 apart


def test_the_quick_cells_are_the_benchmarks_and_the_hidden_ones_are_not():
    config = load_benchmark_config("quick")
    quick = list(quick_problems())
    assert len(quick) == 15 * config.fixed["instances"] and all(len(t) == config.fixed["cues"] for _, _, t, _ in quick)
    names = [name for name, _ in gated_variants(config)]
    assert "gated-default" in names and len(names) == 1 + 4  # gated-quadratic: 2 x 2 tuning candidates
    hidden = list(hidden_problems())
    loads = {round(p.shape[0] / p.shape[1]) for _, p, _, _ in hidden}
    assert loads == {2, 10} and all(len(t) == HIDDEN_CUES for _, _, t, _ in hidden)
    assert not any(np.array_equal(p, q) for _, p, _, _ in hidden[:3] for _, q, _, _ in quick if p.shape == q.shape)


def test_compare_pairs_the_two_settings_on_the_same_cues():
    name, patterns, targets, cues = next(iter(hidden_problems()))
    problems = [(name, patterns, targets[:8], cues[:8])]
    same = compare(problems, [("gated-default", {})], REFERENCE_SETTINGS)
    assert same[0]["lost"] == same[0]["gained"] == 0 and same[0]["trials"] == 8
    coarse = RunSettings(method="exponential_euler", dt=2.0, stop="decided")
    rows = compare(problems, [("gated-default", {})], coarse)
    r = rows[0]
    assert r["fast_exact"] - r["reference_exact"] == r["gained"] - r["lost"]
    assert r["fast_steps"] < r["reference_steps"]
    assert "hidden" in report({"hidden": (rows, verdict(rows))})
    assert FAST_SETTINGS.dt is None  # the fast settings step at the Brian2 clock


def test_fast_check_command_rejects_unknown_cell_sets(capsys):
    from astrogate.cli.main import main

    assert main(["bench", "fast-check", "--cells", "quick,secret"]) == 2
    assert "--cells: unknown secret" in capsys.readouterr().err


def test_the_check_writes_a_verdict_per_cell_set(tmp_path):
    import json
    from types import SimpleNamespace

    import pandas as pd

    from astrogate.analysis.fast_check import FAST_CHECK, fast_check_study

    study = fast_check_study(["similarities"])
    assert study.n_points == 4 and set(study.axes[0].values["cell_set"]) == {"similarities"}
    table = pd.DataFrame([{"cells": "hidden", **row(40, 40, 0, 0)}, {"cells": "quick", **row(40, 38, 2, 0)}])
    FAST_CHECK.finish(study, SimpleNamespace(table=table), tmp_path)
    verdicts = json.loads((tmp_path / "fast_check.json").read_text())
    assert verdicts["hidden"]["met"] is True and verdicts["quick"]["met"] is False
