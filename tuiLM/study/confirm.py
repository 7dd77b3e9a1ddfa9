"""Confirm top-k: re-run a study's k best configurations with fresh seeds as a new group
(specs/studies.md, "Judging results"), and say whether the ranking held.

The confirmation is itself a study, ``<name>-confirmN`` in the same storage, run by the same engine: its
trials are the k best parameter sets (enqueued, in their original order), its base preset is the
original's with run.seed moved past every seed the study has used, so every configuration runs the same
fresh seeds (paired among themselves). No pruning: each confirmation runs to the end. Links both ways:
the original's user attr ``tuilm_confirms`` lists its confirmations; a confirmation's ``tuilm_confirm_of``
names the original and its trials (``confirm_of`` on each trial).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import UserError
from . import storage as st

CONFIRMS_ATTR = "tuilm_confirms"
CONFIRM_OF_ATTR = "tuilm_confirm_of"


def top_trials(summary: dict[str, Any], k: int) -> list[dict[str, Any]]:
    sign = 1 if summary["direction"] == "minimize" else -1
    done = [r for r in summary["trials"] if r["state"] == "complete" and r["value"] is not None
            and not r.get("over_limit")]
    return sorted(done, key=lambda r: sign * r["value"])[:k]


def prepare(name: str, storage_url: str | None, top: int, seeds: int | None = None,
            root: str | Path | None = None) -> tuple[Any, Any, list[dict[str, Any]]]:
    """(spec, base preset, the original trials) of a new confirmation of ``name``'s ``top`` best."""
    import tomllib

    import tomli_w

    from .report import study_summary, worker_spec
    from .spec import parse

    summary = study_summary(name, storage_url, root)
    chosen = top_trials(summary, top)
    if not chosen:
        raise UserError(f"study {name!r} has no completed trial to confirm")
    spec, base = worker_spec(name, storage_url, root)
    study = st.load_study(name, st.open_storage(name, storage_url, root))
    earlier = list(study.user_attrs.get(CONFIRMS_ATTR, []))
    used = [s for r in summary["trials"] for s in r["seeds"]] + [base.run.seed + spec.seeds - 1]
    for other in earlier:  # seeds the earlier confirmations used
        try:
            used += [s for r in study_summary(other, storage_url, root)["trials"] for s in r["seeds"]]
        except UserError:
            pass
    n_seeds = seeds or max(spec.seeds, 3)
    new_name = f"{name}-confirm{len(earlier) + 1}"
    raw = tomllib.loads(spec.text)
    raw["study"].update({"name": new_name, "trials": len(chosen), "seeds": n_seeds, "sampler": "random",
                         "pruner": "none", "baseline": False})
    text = f"# Confirmation of the {len(chosen)} best trials of study {name} with fresh seeds\n" + tomli_w.dumps(raw)
    new_spec, problems = parse(text)
    errors = [p for p in problems if p.is_error]
    if errors:
        raise UserError(f"cannot confirm {name!r}: {errors[0]}")
    new_spec.settings["name"] = new_name
    new_base = base.with_values({"run.seed": max(used) + 1})
    return new_spec, new_base, chosen


def unfinished(name: str, storage_url: str | None, top: int, seeds: int | None = None,
               root: str | Path | None = None) -> str | None:
    """The newest confirmation of ``name`` of the same ``top`` trials (with ``seeds`` fresh seeds, when
    given), when it has not finished: running ``study confirm`` again continues it (it used to start
    another, and the stopped one was left behind). A finished one means a new confirmation."""
    from .report import study_summary, worker_spec

    study = st.load_study(name, st.open_storage(name, storage_url, root))
    earlier = list(study.user_attrs.get(CONFIRMS_ATTR, []))
    if not earlier:
        return None
    chosen = [r["number"] for r in top_trials(study_summary(name, storage_url, root, with_confirms=False), top)]
    for other in reversed(earlier):  # (a confirmation of other trials in between does not hide it)
        try:
            s = study_summary(other, storage_url, root, with_confirms=False)
            same_seeds = seeds is None or worker_spec(other, storage_url, root)[0].seeds == seeds
        except UserError:
            continue
        of = s.get("confirm_of") or {}
        if isinstance(of, dict) and of.get("trials") == chosen and same_seeds:
            ended = sum(1 for r in s["trials"]
                        if r["state"] in ("complete", "pruned", "fail") and r["retried_as"] is None)
            return str(other) if ended < len(chosen) else None
    return None


def start(name: str, storage_url: str | None, top: int, seeds: int | None = None, parallel: int | None = None,
          root: str | Path | None = None, console: Any = None, nproc: int = 1) -> Any:
    """Create the confirmation study and enqueue its trials (or continue the unfinished one that
    confirms the same trials: ``unfinished``); returns the engine, ready to run."""
    from .engine import StudyEngine
    from .report import worker_spec

    again = unfinished(name, storage_url, top, seeds, root)
    if again is not None:
        spec, base = worker_spec(again, storage_url, root)
        engine = StudyEngine(spec, base, storage_url=storage_url, root=root, parallel=parallel, nproc=nproc,
                             console=console)
        engine.open(create=False)
        if console is not None:
            console.print(f"continuing confirmation {again}: it confirms the same trials and has not finished",
                          highlight=False, markup=False)
        return engine
    spec, base, chosen = prepare(name, storage_url, top, seeds, root)
    engine = StudyEngine(spec, base, storage_url=storage_url, root=root, parallel=parallel, nproc=nproc,
                         console=console)
    study = engine.open(create=True)
    study.set_user_attr(CONFIRM_OF_ATTR, {"study": name, "trials": [r["number"] for r in chosen]})
    for r in chosen:
        study.enqueue_trial(r["params"], user_attrs={"confirm_of": r["number"]}, skip_if_exists=True)
    original = st.load_study(name, st.open_storage(name, storage_url, root))
    confirms = list(original.user_attrs.get(CONFIRMS_ATTR, []))
    if spec.name not in confirms:
        original.set_user_attr(CONFIRMS_ATTR, confirms + [spec.name])
    return engine


def ranking(original: dict[str, Any], confirmation: dict[str, Any]) -> dict[str, Any]:
    """Did the ranking hold? The original top trials in their original order, with the confirmation's
    value ± SE, the new rank, and the confirmed best against the confirmed runner-up (paired: the
    confirmations all ran the same fresh seeds)."""
    from .stats import compare

    direction = original["direction"]
    sign = 1 if direction == "minimize" else -1
    by_orig = {r["number"]: r for r in original["trials"]}
    confirmed = []
    for r in confirmation["trials"]:
        of = r.get("confirm_of")
        if of is None or of not in by_orig or r.get("retried_as") is not None:  # (its retry stands for it)
            continue
        confirmed.append((by_orig[of], r))
    orig_order = sorted(confirmed, key=lambda p: sign * p[0]["value"])
    done = [p for p in orig_order if p[1]["state"] == "complete" and p[1]["value"] is not None]
    new_order = sorted(done, key=lambda p: sign * p[1]["value"])
    new_rank = {p[0]["number"]: i + 1 for i, p in enumerate(new_order)}
    rows = []
    for i, (o, c) in enumerate(orig_order):
        rows.append({"trial": o["number"], "params": o["params"], "rank": i + 1, "value": o["value"],
                     "value_se": o["value_se"], "k": o["k"], "confirm_trial": c["number"], "state": c["state"],
                     "confirm_value": c["value"], "confirm_se": c["value_se"], "confirm_k": c["k"],
                     "confirm_seeds": c["seeds"], "confirm_rank": new_rank.get(o["number"]),
                     "runs": c["runs"]})
    finished = len(done) == len(orig_order) and len(done) > 0
    held = finished and [p[0]["number"] for p in new_order] == [p[0]["number"] for p in orig_order]
    top_pair = None
    if len(new_order) >= 2:
        a, b = new_order[0][1], new_order[1][1]
        top_pair = {**compare(a["values"], b["values"], a["seeds"], b["seeds"], direction).to_dict(),
                    "best": new_order[0][0]["number"], "runner_up": new_order[1][0]["number"]}
    if not finished:
        verdict = f"{len(done)} of {len(orig_order)} confirmations finished"
    elif held:  # (in order; whether the top two are apart beyond seed noise is said below it)
        verdict = "the ranking held" + ("" if top_pair is None or top_pair["significant"] else
                                        ", though its top two are within seed noise of each other")
    else:
        verdict = "the ranking changed: " + " > ".join(f"trial {p[0]['number']}" for p in new_order)
    # the study went on since: its top is no longer what this confirmed (it read as a verdict on the best)
    confirmed_now = [r["number"] for r in top_trials(original, len(orig_order))]
    stale = bool(orig_order) and sorted(confirmed_now) != sorted(p[0]["number"] for p in orig_order)
    if stale:
        verdict += (f" (for trials {', '.join(str(p[0]['number']) for p in orig_order)}; the study's top "
                    f"{len(orig_order)} are trials {', '.join(map(str, confirmed_now))} now: "
                    f"tuilm study confirm {original['name']} --top {len(orig_order)} confirms them)")
    return {"study": confirmation["name"], "of": original["name"], "finished": finished, "held": held if finished else None,
            "verdict": verdict, "rows": rows, "best_vs_runner_up": top_pair, "stale": stale}


def confirm_summaries(original: dict[str, Any], study: Any, storage_url: str | None,
                      root: str | Path | None = None) -> list[dict[str, Any]]:
    from .report import study_summary

    out = []
    for other in study.user_attrs.get(CONFIRMS_ATTR, []):
        try:
            out.append(ranking(original, study_summary(other, storage_url, root, with_confirms=False)))
        except UserError:
            continue
    return out


def fmt_value(v: Any, se: Any) -> str:
    if v is None:
        return "-"
    from ..units import fmt_se

    return f"{v:.4f}" + (f" ± {fmt_se(se)}" if isinstance(se, float) and math.isfinite(se) else "")
