"""The statistics and tables of the paired AutoLoss benchmarks' finished runs.

Every method of a cell trained on the same splits with the same seeds, so methods are compared by
paired per-seed differences (mean, standard deviation, a paired t-test's p-value), AUC and logloss.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from scipy.stats import ttest_rel

FIXED = ["focal", "kl", "hinge", "ce"]
AUC_SLACK, LOGLOSS_SLACK = 0.001, 0.002  # goals: AUC >= best fixed - 0.001, logloss <= CE + 0.002


def mean_std(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation (nan when empty)."""
    if not values:
        return {"mean": float("nan"), "std": float("nan")}
    return {"mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}  # fmt: skip


def paired(a: list[float], b: list[float]) -> dict[str, float]:
    """Mean and std of the per-seed differences `a - b`, and the paired t-test's p-value."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    p = float(ttest_rel(a, b).pvalue) if len(diffs) > 1 and len(set(diffs)) > 1 else float("nan")
    return {**mean_std(diffs), "p": p}


def method_stats(rows: Iterable[dict | None]) -> dict[str, Any]:
    """Per metric: samples (in seed order), mean and std; runs found."""
    found = [r for r in rows if r is not None]
    out: dict[str, Any] = {"runs": len(found), "seconds": [r["seconds"] for r in found]}
    for metric in ("auc", "logloss"):
        samples = [r["test"][metric] for r in found]
        out[metric] = {**mean_std(samples), "samples": samples}
    if found and all("test_uncalibrated" in r for r in found):  # `--calibration`: the map's effect
        raw = [r["test_uncalibrated"]["logloss"] for r in found]
        out["calibration_logloss"] = paired(out["logloss"]["samples"], raw) | {"raw": mean_std(raw)}
    return out


def seconds_over_ce(stats: dict[str, dict], method: str) -> dict[str, float] | None:
    """Wall time per run over CE's on the same seed: min, median, max (None: unpaired)."""
    ce = stats.get("ce")
    if ce is None or ce["runs"] != stats[method]["runs"] or not ce["runs"]:
        return None
    ratios = [a / b for a, b in zip(stats[method]["seconds"], ce["seconds"], strict=True)]
    return {"min": min(ratios), "median": statistics.median(ratios), "max": max(ratios)}


def compare(stats: dict[str, dict], method: str, others: Iterable[str]) -> dict[str, dict]:
    """Paired differences of `method` against each of `others`, AUC and logloss."""
    out = {}
    for other in others:
        a, b = stats[method], stats[other]
        if a["runs"] != b["runs"] or a["runs"] < 2:
            continue
        out[other] = {m: paired(a[m]["samples"], b[m]["samples"]) for m in ("auc", "logloss")}
    return out


def fmt_diff(d: dict[str, float]) -> str:
    """`+0.0012 ± 0.0008 (p 0.031)`."""
    return f"{d['mean']:+.4f} ± {d['std']:.4f} (p {d['p']:.3f})"


def summarise(job_list: list[dict], done: dict[str, dict], methods: list[str]) -> list[dict]:
    """Per cell: every method's figures, each other method against every fixed loss, the goals."""
    cells: dict[tuple, dict[str, list]] = {}
    for j in job_list:
        cells.setdefault(j["cell"], {}).setdefault(j["method"], []).append(done.get(j["key"]))
    out = []
    for (data, model), rows in cells.items():
        stats = {m: method_stats(rows[m]) for m in methods}
        fixed = [m for m in FIXED if m in stats and stats[m]["runs"]]
        best = max(fixed, key=lambda m: stats[m]["auc"]["mean"]) if fixed else None
        others = [m for m in methods if m not in FIXED]
        out.append({
            "data": data, "model": model, "best_fixed": best, "methods": stats,
            "versus": {m: compare(stats, m, fixed) for m in others},
            "goals": {m: goals(stats, m, best) for m in others if best and "ce" in fixed},
            "weights": {m: _mean_weights(rows[m]) for m in others},
            "seconds_over_ce": {m: seconds_over_ce(stats, m) for m in others},
        })  # fmt: skip
    return out


def goals(stats: dict[str, dict], method: str, best: str) -> dict[str, bool]:
    """The issue's bar: mean AUC >= the best fixed loss's - 0.001, logloss <= CE's + 0.002."""
    auc, logloss = stats[method]["auc"]["mean"], stats[method]["logloss"]["mean"]
    return {
        "auc_within_0.001_of_best": auc >= stats[best]["auc"]["mean"] - AUC_SLACK,
        "logloss_within_0.002_of_ce": logloss <= stats["ce"]["logloss"]["mean"] + LOGLOSS_SLACK,
    }


def _mean_weights(rows: list[dict | None]) -> dict[str, float]:
    found = [r["weights"] for r in rows if r is not None and r.get("weights")]
    return {k: sum(w[k] for w in found) / len(found) for k in found[0]} if found else {}


def print_table(cells: list[dict]) -> None:
    """Per cell and method: means, paired differences to CE and the best fixed loss, goals."""
    for cell in cells:
        best = cell["best_fixed"]
        print(f"\n{cell['data']} {cell['model']} (best fixed by AUC: {best})")
        print(f"{'method':<22} {'runs':>4} {'AUC':>8} {'logloss':>8}  {'AUC - CE':>26}  "
              f"{'AUC - best':>26}  {'logloss - CE':>26}  goals; weights")  # fmt: skip
        for method, s in cell["methods"].items():
            vs = cell["versus"].get(method, {})
            ce, top = vs.get("ce", {}), vs.get(best, {})
            met = cell["goals"].get(method, {})
            marks = "/".join("met" if v else "NOT" for v in met.values())
            w = ", ".join(f"{k} {v:.2f}" for k, v in cell["weights"].get(method, {}).items())
            t = cell["seconds_over_ce"].get(method)
            cost = f"; time/CE {t['min']:.1f}-{t['max']:.1f}x" if t else ""
            if "calibration_logloss" in s:
                c = s["calibration_logloss"]
                cost += f"; uncalibrated logloss {c['raw']['mean']:.4f} ({c['mean']:+.4f})"
            print(f"{method:<22} {s['runs']:>4} {s['auc']['mean']:.4f} {s['logloss']['mean']:.4f}"
                  f"  {fmt_diff(ce['auc']) if ce else '':>26}"
                  f"  {fmt_diff(top['auc']) if top else '':>26}"
                  f"  {fmt_diff(ce['logloss']) if ce else '':>26}  {marks}; {w}{cost}")  # fmt: skip


def print_markdown(cells: list[dict]) -> None:
    """The README's table: per cell and method, means and paired differences to CE and the best."""
    print("\n| data | model | method | runs | AUC | logloss | AUC - CE (p) | AUC - best fixed (p) "
          "| logloss - CE (p) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for cell in cells:
        best = cell["best_fixed"]
        for method, s in cell["methods"].items():
            vs = cell["versus"].get(method, {})
            ce, top = vs.get("ce"), vs.get(best)
            name = f"{method} (best fixed)" if method == best else method
            print(f"| {cell['data']} | {cell['model']} | {name} | {s['runs']} "
                  f"| {s['auc']['mean']:.4f} | {s['logloss']['mean']:.4f} "
                  f"| {_md(ce, 'auc')} | {_md(top, 'auc')} | {_md(ce, 'logloss')} |")  # fmt: skip


def print_goals_markdown(
    cells: list[dict], method: str = "autoloss", details: bool = False
) -> None:
    """One row per cell: `method` against the best fixed loss (AUC) and CE (logloss), the goals;
    with `details` also its mean weights (a two-stage pick: the share of seeds) and time/CE."""
    extra = " | weights (focal/KL/hinge/CE) | time / CE's" if details else ""
    print(f"\n| data | model | {method} AUC | best fixed AUC | AUC - best (p) | {method} logloss "
          f"| CE logloss | logloss - CE (p) | goals (AUC, logloss){extra} |")  # fmt: skip
    print("| --- " * (11 if details else 9) + "|")
    for cell in cells:
        best, s = cell["best_fixed"], cell["methods"][method]
        vs, met = cell["versus"].get(method, {}), cell["goals"].get(method, {})
        top, auc = cell["methods"][best], s["auc"]
        marks = ", ".join("met" if v else "**not met**" for v in met.values())
        row = (f"| {cell['data']} | {cell['model']} | {auc['mean']:.4f} ± {auc['std']:.4f} "
               f"| {best} {top['auc']['mean']:.4f} | {_md(vs.get(best), 'auc')} "
               f"| {s['logloss']['mean']:.4f} | {cell['methods']['ce']['logloss']['mean']:.4f} "
               f"| {_md(vs.get('ce'), 'logloss')} | {marks} |")  # fmt: skip
        if details:
            weights = "/".join(f"{w:.2f}" for w in cell["weights"].get(method, {}).values())
            t = cell["seconds_over_ce"].get(method)
            row += f" {weights} | {t['min']:.1f}-{t['max']:.1f}x |" if t else f" {weights} | |"
        print(row)


def _md(diff: dict | None, metric: str) -> str:
    if not diff:
        return ""
    d = diff[metric]
    if d["p"] != d["p"]:  # every seed the same difference (a two-stage method's identical pick)
        return f"{d['mean']:+.4f}"
    return f"{d['mean']:+.4f} ({d['p']:.3f})"
