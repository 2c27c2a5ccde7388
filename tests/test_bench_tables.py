"""Results tables: time to the best validation AUC, bold best means, paired t-test marks."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from scipy import stats

from recloss.report import (
    Layout,
    Stat,
    TransferBlock,
    efficiency_table,
    index_rows,
    overall_table,
    paired_p,
    run_row,
    to_html,
    to_markdown,
    transfer_table,
    write_results,
)
from recloss.report.stats import marked
from recloss.rundir import DatasetInfo, EpochRecord, RunRecord, SearchRecord

METHODS = {"ce": "CE", "darts": "DARTS", "slf": "SLF", "autoloss": "AutoLoss"}
# test AUC and logloss per seed, written by hand
AUC = {
    "ce": [0.700, 0.702, 0.701, 0.699, 0.703],
    "darts": [0.705, 0.706, 0.704, 0.707, 0.705],
    "slf": [0.709, 0.711, 0.710, 0.712, 0.708],  # the best baseline
    "autoloss": [0.716, 0.717, 0.715, 0.718, 0.716],
}
LOGLOSS = {
    "ce": [0.460, 0.462, 0.461, 0.459, 0.463],
    "darts": [0.450, 0.452, 0.449, 0.451, 0.450],  # the best baseline, noisy against AutoLoss
    "slf": [0.455, 0.454, 0.456, 0.455, 0.457],
    "autoloss": [0.446, 0.455, 0.441, 0.458, 0.449],  # best mean, but not significant
}


def rows_for(
    auc: dict[str, list[float]],
    logloss: dict[str, list[float]],
    dataset: str = "d",
    model: str = "m",
    source: str = "",
) -> list[dict]:
    return [
        {
            "dataset": dataset,
            "model": model,
            "method": method,
            "source": source,
            "seed": seed,
            "status": "done",
            "test_auc": a,
            "test_logloss": ll,
        }
        for method in auc
        for seed, (a, ll) in enumerate(zip(auc[method], logloss[method], strict=True))
    ]


def layout(**kw) -> Layout:
    return Layout(
        title="t",
        seeds=5,
        datasets={"d": "Data"},
        models={"m": "DeepFM"},
        methods=METHODS,
        compare="autoloss",
        **kw,
    )


def markdown_cells(markdown: str) -> list[list[str]]:
    """Body cells of the first Markdown table."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:]]


def test_significance_marks_match_scipy_paired_test():
    table = overall_table(index_rows(rows_for(AUC, LOGLOSS)), layout())
    auc_row, logloss_row = markdown_cells(to_markdown([("table", table)]))
    # computed here, independently: AutoLoss against the best baseline of each metric
    p_auc = stats.ttest_rel(AUC["autoloss"], AUC["slf"]).pvalue
    p_logloss = stats.ttest_rel(LOGLOSS["autoloss"], LOGLOSS["darts"]).pvalue
    assert p_auc < 0.05 < p_logloss
    starred_auc = [i for i, c in enumerate(auc_row) if c.endswith("\\*")]
    assert starred_auc == [3 + list(METHODS).index("autoloss")]
    assert not any("\\*" in c for c in logloss_row)


def test_runs_grouped_by_a_field_add_a_gauc_row():
    rows = rows_for(AUC, LOGLOSS)
    for row in rows:
        row["test_gauc"] = row["test_auc"] - 0.05
    two = replace(layout(), datasets={"d": "Grouped", "e": "Not grouped"})
    table = overall_table(index_rows(rows + rows_for(AUC, LOGLOSS, dataset="e")), two)
    metrics = [row[2] for row in table.rows]
    assert metrics == [
        "AUC \u2191",
        "Logloss \u2193",
        "gAUC \u2191",
        "AUC \u2191",
        "Logloss \u2193",
    ]
    gauc = dict(zip(METHODS, table.rows[2][3:], strict=True))
    assert gauc["autoloss"].text.startswith("0.6664") and gauc["autoloss"].bold  # the best


def test_mark_tests_against_the_best_baseline_only():
    # AutoLoss is significantly better than CE but not than SLF, the best baseline: no mark
    auc = {**AUC, "autoloss": [0.713, 0.706, 0.716, 0.709, 0.712]}
    assert stats.ttest_rel(auc["autoloss"], auc["ce"]).pvalue < 0.05
    assert stats.ttest_rel(auc["autoloss"], auc["slf"]).pvalue > 0.05
    table = overall_table(index_rows(rows_for(auc, LOGLOSS)), layout())
    assert "\\*" not in to_markdown([("table", table)])


def test_the_test_pairs_the_runs_by_seed():
    # A seed moves every method alike (the split, the initialisation); AutoLoss is 0.002 above
    # SLF on every seed. Unpaired, the seeds' spread hides that; paired, it is significant.
    level = [0.0, 0.02, -0.015, 0.01, -0.01]
    auc = {m: [v + d for v, d in zip(AUC["slf"], level, strict=True)] for m in AUC}
    auc["autoloss"] = [v + 0.002 + (0.0005 if i % 2 else 0.0) for i, v in enumerate(auc["slf"])]
    assert stats.ttest_ind(auc["autoloss"], auc["slf"], equal_var=False).pvalue > 0.5
    assert stats.ttest_rel(auc["autoloss"], auc["slf"]).pvalue < 1e-4
    table = overall_table(index_rows(rows_for(auc, LOGLOSS)), layout())
    assert markdown_cells(to_markdown([("table", table)]))[0][-1].endswith("\\*")


def test_seeds_one_method_lacks_are_left_out_of_the_pairs():
    a = Stat((0.71, 0.72, 0.73, 0.90), seeds=(0, 1, 2, 3))
    b = Stat((0.70, 0.70, 0.70), seeds=(2, 1, 0))
    assert paired_p(a, b) == pytest.approx(stats.ttest_rel([0.71, 0.72, 0.73], [0.7] * 3).pvalue)
    assert math.isnan(paired_p(a, Stat((0.7,), seeds=(0,))))  # one common seed
    assert math.isnan(paired_p(a, Stat((0.7, 0.7), seeds=(7, 8))))  # none
    assert math.isnan(paired_p(b, b))  # the same difference on every seed


def test_significantly_worse_gets_a_dagger_not_a_star():
    auc = {**AUC, "autoloss": [0.690, 0.691, 0.689, 0.692, 0.690]}
    table = overall_table(index_rows(rows_for(auc, LOGLOSS)), layout())
    auc_row = markdown_cells(to_markdown([("table", table)]))[0]
    assert auc_row[-1].endswith("\u2020") and "\\*" not in auc_row[-1]


def test_bold_marks_the_best_mean_per_metric():
    table = overall_table(index_rows(rows_for(AUC, LOGLOSS)), layout())
    auc_row, logloss_row = markdown_cells(to_markdown([("table", table)]))
    bold = [
        [i - 3 for i, c in enumerate(row) if c.startswith("**")] for row in (auc_row, logloss_row)
    ]
    best_auc = max(METHODS, key=lambda m: sum(AUC[m]))
    best_logloss = min(METHODS, key=lambda m: sum(LOGLOSS[m]))
    assert bold == [[list(METHODS).index(best_auc)], [list(METHODS).index(best_logloss)]]
    assert best_logloss == "autoloss" and best_auc == "autoloss"


def test_cells_show_mean_and_sample_std():
    table = overall_table(index_rows(rows_for(AUC, LOGLOSS)), layout())
    ce = table.rows[0][3]
    assert ce.text == f"{sum(AUC['ce']) / 5:.4f} \u00b1 {stats.tstd(AUC['ce']):.4f}"


def test_missing_and_unfinished_cells_show_a_dash():
    rows = rows_for({"ce": AUC["ce"]}, {"ce": LOGLOSS["ce"]})
    rows.append(
        {"dataset": "d", "model": "m", "method": "slf", "source": "", "seed": 0, "status": "failed"}
    )
    table = overall_table(index_rows(rows), layout())
    assert [e.text for e in table.rows[0][4:]] == ["\u2013", "\u2013", "\u2013"]


def test_means_that_show_as_the_best_are_all_bold():
    close = {"ce": Stat((0.88401, 0.88401)), "al": Stat((0.88398, 0.88398)), "kl": Stat((0.87,))}
    entries = marked(close, higher=True)
    assert [k for k, e in entries.items() if e.bold] == ["ce", "al"]  # both show 0.8840
    assert entries["ce"].text.split()[0] == entries["al"].text.split()[0] == "0.8840"
    assert [k for k, e in marked(close, higher=True, digits=5).items() if e.bold] == ["ce"]


def test_transfer_table_rows_are_methods_columns_targets():
    rows = rows_for({"ce": AUC["ce"]}, {"ce": LOGLOSS["ce"]}, model="nfm")
    rows += rows_for(
        {"autoloss": AUC["autoloss"]},
        {"autoloss": LOGLOSS["autoloss"]},
        model="nfm",
        source="deepfm",
    )
    block = TransferBlock(
        "DeepFM -> NFM", [("d", "nfm", "NFM")], [("CE*", "ce", ""), ("AL*", "autoloss", "deepfm")]
    )
    table = transfer_table(index_rows(rows), block, "autoloss")
    assert table.header == ["Method", "NFM AUC \u2191", "NFM Logloss \u2193"]
    (ce, *_), (al, al_auc, _) = table.rows
    assert (ce, al) == ("CE*", "AL*")
    assert al_auc.bold and al_auc.mark == "*"


def test_html_has_the_same_marks():
    table = overall_table(index_rows(rows_for(AUC, LOGLOSS)), layout())
    page = to_html([("h1", "t"), ("table", table)])
    assert page.count("<b>") == 2 and page.count("</b>*") == 1


def history(*points: tuple[float, float]) -> list[EpochRecord]:
    return [
        EpochRecord(
            epoch=i + 1,
            step=10 * (i + 1),
            seconds=s,
            train_loss=0.5,
            samples_per_second=1e3,
            valid={"auc": a},
        )
        for i, (s, a) in enumerate(points)
    ]


def record(h: list[EpochRecord], **kw) -> RunRecord:
    """A finished run with history `h`; its other figures made up."""
    fields = {
        "test": {"auc": 0.71, "logloss": 0.45},
        "best_valid": {"auc": max(e.valid["auc"] for e in h)},
        "best_epoch": max(h, key=lambda e: e.valid["auc"]).epoch,  # the first of equal bests
        "epochs": len(h),
        "steps": h[-1].step,
        "history": h,
        "train_seconds": 0.8 * h[-1].seconds,
        "wall_seconds": h[-1].seconds,
        "samples_per_second": 1e3,
        "dataset": DatasetInfo(name="d"),
        "device": "cpu",
    }
    return RunRecord(**{**fields, **kw})


def test_time_to_best_is_when_the_best_epoch_ended():
    h = history((10.0, 0.70), (21.5, 0.74), (30.0, 0.73), (41.0, 0.74))
    assert record(h).time_to_best == 21.5
    assert record(h, best_epoch=3).time_to_best == 30.0  # picked by logloss (train.monitor)


def test_time_to_best_adds_the_search_stage():
    h = history((5.0, 0.71), (9.0, 0.72), (13.0, 0.715))
    search = SearchRecord(method="darts", weights={"ce": 1.0}, seconds=100.0)
    assert record(h, search=search, retrain_seconds=13.0).time_to_best == 109.0


def test_time_to_best_of_a_validation_split_without_auc_is_when_the_best_logloss_was():
    h = history((5.0, math.nan), (9.0, math.nan))
    assert record(h, best_valid={"auc": math.nan}, best_epoch=1).time_to_best == 5.0


def test_run_row_has_the_results_figures_of_a_record():
    h = history((5.0, 0.71), (9.0, 0.72), (13.0, 0.715))
    one_stage = run_row(record(h))
    assert one_stage["time_to_best_seconds"] == 9.0 and one_stage["search_seconds"] is None
    assert one_stage["test_accuracy"] is None and one_stage["retrain_seconds"] is None
    search = SearchRecord(method="darts", weights={"ce": 1.0}, seconds=100.0)
    two_stage = run_row(record(h, search=search, retrain_seconds=13.0))
    assert two_stage["time_to_best_seconds"] == 109.0 and two_stage["search_seconds"] == 100.0
    assert two_stage["retrain_seconds"] == 13.0 and two_stage["test_auc"] == 0.71


def test_write_results_writes_csv_and_json(tmp_path):
    rows = [
        {"dataset": "d", "method": "ce", "status": "done", **run_row(record(history((1.0, 0.7))))}
    ]
    csv_path, json_path = write_results(rows, tmp_path)
    header, line = csv_path.read_text().splitlines()
    assert header.startswith("dataset,model,method,source,seed,status,test_auc,")
    assert line.startswith("d,,ce,,,done,0.71,0.45,,,0.7,1,1,0.8,1.0,1.0,,,")
    assert json.loads(json_path.read_text()) == rows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.json"]


@pytest.mark.parametrize(
    "values,mean,std", [((), math.nan, 0.0), ((2.0,), 2.0, 0.0), ((1.0, 2.0, 3.0), 2.0, 1.0)]
)
def test_stat(values, mean, std):
    s = Stat(values)
    assert (math.isnan(s.mean) and math.isnan(mean)) or s.mean == mean
    assert s.std == std


def test_efficiency_table_bolds_the_fastest_mean():
    rows = rows_for(AUC, LOGLOSS)
    seconds = {"ce": 30.0, "darts": 80.0, "slf": 25.0, "autoloss": 12.0}
    for row in rows:
        row["time_to_best_seconds"] = seconds[row["method"]] + row["seed"]
    (row,) = efficiency_table(index_rows(rows), layout()).rows
    assert row[:2] == ["Data", "DeepFM"]
    assert [e.text for e in row[2:] if e.bold] == ["14.0 \u00b1 1.6"]


def test_a_panel_whose_cells_all_failed_draws_without_a_legend_warning(tmp_path):
    import warnings

    from recloss.report.figures import auc_time_figure

    layout = Layout("t", 1, {"d": "D"}, {"m": "M"}, METHODS, efficiency=["ce", "autoloss"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of a legend without labels
        figure = auc_time_figure({}, layout, tmp_path)
    assert figure.axes[0].get_legend() is None
