"""Seed groups: the runs of one configuration that differ only in their seed (specs/studies.md).

A study's trial runs its seeds as one group (``study.json``: study and trial; a confirmation is a
study of its own, so its fresh seeds form a new group). Plain runs group when their frozen presets
agree on every setting that can change the numbers: the seed, labels, output cadences and machine
knobs (threads, budgets, mirrors) are left out of the comparison; the number of DDP processes (from
run_start: --nproc is not in the preset) is in it.

Pure Python (hashlib): the runs list's worker thread and the CLI use it; no torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .runs import read_preset, read_study_info
from .units import fmt_se

# settings that do not change what a run computes (or say which seed it is)
NOT_CONFIGURATION = {"run.seed", "run.name", "run.notes", "eval.target_bpb", "diag.every", "system.threads",
                     "system.vram_budget_gib", "system.peak_tflops", "system.tensorboard_dir"}
NOT_CONFIGURATION_SECTIONS = {"sample", "checkpoint"}


@dataclass(frozen=True)
class Membership:
    """What a run directory says about its group: the key, a short label and its seed."""

    key: str
    label: str
    seed: int | None


@dataclass
class SeedGroup:
    key: str
    label: str
    members: list[Path] = field(default_factory=list)  # in seed order
    seeds: list[int | None] = field(default_factory=list)

    @property
    def k(self) -> int:
        return len(self.members)


def configuration(preset: dict[str, Any]) -> dict[str, Any]:
    """The settings that define a configuration (the preset less seed, labels, cadences, machine knobs)."""
    out: dict[str, Any] = {}
    for section, table in preset.items():
        if section in NOT_CONFIGURATION_SECTIONS or not isinstance(table, dict):
            continue
        kept = {k: v for k, v in table.items() if f"{section}.{k}" not in NOT_CONFIGURATION}
        if kept:
            out[section] = kept
    return out


def membership(run_dir: Path, preset: dict[str, Any] | None = None) -> Membership:
    preset = read_preset(run_dir) if preset is None else preset
    run = preset.get("run", {}) if isinstance(preset.get("run"), dict) else {}
    seed = run.get("seed") if isinstance(run.get("seed"), int) and not isinstance(run.get("seed"), bool) else None
    info = read_study_info(run_dir)
    if "study" in info and "trial" in info:
        return Membership(f"study:{info['study']}#{info['trial']}", f"#{info['trial']} {info['study']}", seed)
    config = configuration(preset)
    if not config:  # no preset to read (missing, empty, cut short): a group of its own
        return Membership(f"run:{Path(run_dir).resolve()}", Path(run_dir).name, seed)
    name = run.get("name") if isinstance(run.get("name"), str) and run.get("name") else Path(run_dir).name
    world = world_size(run_dir)
    if world > 1:  # torchrun --nproc N: N data-parallel ranks, each its own batch and data shard
        config, name = {**config, "world_size": world}, f"{name} ×{world} procs"
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return Membership("config:" + hashlib.sha1(blob).hexdigest()[:16], name, seed)


def world_size(run_dir: Path) -> int:
    """The processes the run trained on (its first run_start; 1 when it has none yet). Not in the
    preset: ``--nproc`` is a launch argument, and a 2-process run trains on twice the tokens a step."""
    from .events import decode_event, open_regular

    try:
        with open_regular(Path(run_dir) / "events.jsonl") as fh:
            for _ in range(16):  # run_start comes first, after a few logs at most
                ev = decode_event(fh.readline(1 << 16))
                if ev is not None and ev["kind"] == "run_start":
                    w = ev.get("world_size")
                    return w if isinstance(w, int) and w > 1 else 1
    except OSError:
        pass
    return 1


def group_runs(paths: Sequence[Path], members: dict[Path, Membership]) -> list[SeedGroup]:
    """Groups in the order of their first run in ``paths`` (newest first, as ``runs.list_runs``); a
    run alone is a group of one. A group holds each seed once: a later repeat of a seed (same
    configuration, same seed) starts a group of its own, so the runs are assigned oldest first."""
    groups: dict[str, SeedGroup] = {}
    for p in reversed(paths):
        m = members[p]
        key, n = m.key, 1
        while key in groups and m.seed is not None and m.seed in groups[key].seeds:
            n += 1
            key = f"{m.key}~{n}"
        g = groups.get(key)
        if g is None:
            g = groups[key] = SeedGroup(key, m.label)
        g.members.append(p)
        g.seeds.append(m.seed)
    for g in groups.values():
        order = sorted(range(g.k), key=lambda i: (g.seeds[i] is None, g.seeds[i] or 0, str(g.members[i])))
        g.members = [g.members[i] for i in order]
        g.seeds = [g.seeds[i] for i in order]
    where = {p: i for i, p in enumerate(paths)}
    return sorted(groups.values(), key=lambda g: min(where[p] for p in g.members))


STATE_ICON = {"running": "●", "completed": "✓", "stopped": "■", "pruned": "✂", "failed": "✗", "dead": "✗",
              "new": "○", "starting": "◌", "unreadable": "!"}  # (the app's, and the CLI's tight tables)
STATE_RANK = ("running", "starting", "failed", "dead", "unreadable", "stopped", "pruned", "new", "completed")


def group_state(states: Sequence[str]) -> str:
    """A group's state: its most pressing member's (any running one makes the group running)."""
    return min(states, key=lambda st: STATE_RANK.index(st) if st in STATE_RANK else len(STATE_RANK))


def state_counts(states: Sequence[str]) -> list[tuple[str, int]]:
    """How many members are in each state: completed first, then the others most pressing first."""
    order = ("completed",) + tuple(st for st in STATE_RANK if st != "completed")
    seen = sorted(set(states), key=lambda st: order.index(st) if st in order else len(order))
    return [(st, sum(1 for x in states if x == st)) for st in seen]


def states_text(states: Sequence[str], tight: bool = False) -> str:
    """"completed" when every member is; else "5 completed, 3 failed" (a group is not just failed);
    ``tight``: "✓5 ✗3"."""
    counts = state_counts(states)
    if tight:
        return " ".join(f"{STATE_ICON.get(st, '?')}{n}" for st, n in counts)
    return counts[0][0] if len(counts) == 1 else ", ".join(f"{n} {st}" for st, n in counts)


@dataclass(frozen=True)
class GroupValue:
    """A group's objective over its seeds: mean ± SE with k, and the possibly lucky members."""

    mean: float
    se: float
    k: int
    lucky: tuple[int, ...]  # indices into the values given (None ones included: members[i] is lucky)

    def text(self, digits: int = 4) -> str:
        """"5.108±.025": the SE to two significant figures and the mean to the same place (at most
        ``digits`` decimals); a single value as it is."""
        if self.k == 0:
            return "—"
        if self.k < 2 or not math.isfinite(self.se):
            return f"{self.mean:.{digits}f}"
        places = digits if self.se <= 0 else max(2, min(digits, 1 - math.floor(math.log10(self.se))))
        return f"{self.mean:.{places}f}±{fmt_se(self.se, places, tight=True)}"


def counted(states: Sequence[str], values: Sequence[float | None]) -> list[float | None]:
    """The values a group's statistics use: its completed runs' (a failed, stopped or pruned run's
    best is not a finished configuration's), or every value while none has completed (a live group)."""
    if any(st == "completed" for st in states):
        return [v if st == "completed" else None for st, v in zip(states, values)]
    return list(values)


def group_value(values: Sequence[float | None], direction: str = "minimize") -> GroupValue:
    """Mean ± SE of the members' values (None: no value yet) and which of them look lucky."""
    from .study.stats import lucky_seeds, mean_se

    idx = [i for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    vals = [float(values[i]) for i in idx]  # type: ignore[arg-type]
    mean, se = mean_se(vals)
    return GroupValue(mean, se, len(vals), tuple(idx[j] for j in lucky_seeds(vals, direction)))


# -- naming sets of runs on the command line (runs show / compare, export) --------------------------------

@dataclass(frozen=True)
class RunSet:
    """Runs named together: one run, a study trial's seeds or a run's seed group (seed order)."""

    label: str
    members: tuple[Path, ...]
    seeds: tuple[int | None, ...]
    kind: str = "run"  # run | trial | group
    trial_params: tuple[tuple[str, Any], ...] = ()

    @property
    def is_set(self) -> bool:
        return self.kind != "run"


def seed_group_of(run_dir: Path) -> SeedGroup | None:
    """The seed group ``run_dir`` is in among the runs of its folder (None: it cannot be listed)."""
    from .runs import list_runs

    run_dir = Path(run_dir).resolve()  # (group:. from inside a run folder: its parent is the runs folder)
    try:
        runs = list_runs(run_dir.parent)
    except OSError:
        return None
    me = membership(run_dir)
    members = {p: membership(p) for p in runs}
    members[run_dir] = me
    same = [p for p in runs if members[p].key == me.key] or [run_dir]
    return next((g for g in group_runs(same, members) if any(p.resolve() == run_dir.resolve() for p in g.members)),
                None)


def resolve_ref(ref: str, root: str | Path | None = None) -> list[RunSet]:
    """What a RUN argument names: a run (id, prefix or folder), ``study:NAME`` (one set per trial, in
    trial order), ``study:NAME#T`` (trial T's seed runs) or ``group:RUN``. Raises RunError with what
    there is to choose from."""
    from .runs import RunError, find_run, list_runs, read_study_info, runs_root

    kind, colon, rest = ref.partition(":")
    if colon and not rest and kind in ("study", "group") and not Path(ref).exists():
        raise RunError(f"{ref!r} names nothing: {kind}:{'NAME#T' if kind == 'study' else 'RUN'}")
    if rest and kind.lower() in ("study", "group", "trial", "grp") and kind not in ("study", "group") \
            and not Path(ref).exists():
        raise RunError(f"{ref!r}: sets of runs are named study:NAME, study:NAME#T or group:RUN")
    if not rest or kind not in ("study", "group") or Path(ref).exists():
        run = find_run(ref, root)
        return [RunSet(run.name, (run,), (membership(run).seed,))]
    if kind == "group":
        try:
            run = find_run(rest, root)
        except RunError:  # "tiny-v3", the label the runs list shows: every run it matches is of one group
            like = [p for p in list_runs(root) if p.name.startswith(rest)]
            g = seed_group_of(like[0]) if like else None
            if g is None or not {p.resolve() for p in like} <= {p.resolve() for p in g.members}:
                raise
            return [RunSet(g.label, tuple(g.members), tuple(g.seeds), "group")]
        g = seed_group_of(run)
        if g is None:
            return [RunSet(run.name, (run,), (membership(run).seed,), "group")]
        return [RunSet(g.label, tuple(g.members), tuple(g.seeds), "group")]
    name, hashed, trial_text = rest.partition("#")
    trial = trial_text.lower().removeprefix("t")
    if hashed and not (trial.isascii() and trial.isdecimal()):
        raise RunError(f"{ref!r}: a trial is a number (study:{name}#3)")
    base = runs_root(root)
    trials: dict[int, list[tuple[Path, dict[str, Any]]]] = {}
    studies: set[str] = set()
    for p in list_runs(root):
        info = read_study_info(p)
        if "study" in info:
            studies.add(info["study"])
        if info.get("study") == name and isinstance(info.get("trial"), int):
            trials.setdefault(info["trial"], []).append((p, info))
    if not trials:
        known = f" (studies with runs there: {', '.join(sorted(studies))})" if studies else " (no study runs there)"
        raise RunError(f"no runs of study {name!r} in {base}/{known}")
    if hashed and int(trial) not in trials:
        have = sorted(trials)
        shown = ", ".join(str(t) for t in have[:12]) + (f" and {len(have) - 12} more" if len(have) > 12 else "")
        raise RunError(f"study {name!r} has no trial {int(trial)} with runs in {base}/ (trials with runs: {shown})")
    out = []
    for t in sorted(trials) if not hashed else [int(trial)]:
        info = {p: i for p, i in trials[t]}
        paths = [p for p, _ in trials[t]]
        params = tuple(sorted(trials[t][0][1].get("trial_params", {}).items()))
        # a study name used twice in one runs folder: a seed's repeat is a group of its own (group_runs)
        for n, g in enumerate(group_runs(paths, {p: membership(p) for p in paths})):
            order = sorted(range(g.k), key=lambda i: (info[g.members[i]].get("seed_index", 0), g.members[i].name))
            out.append(RunSet(f"#{t} {name}" + (f" ({n + 1})" if n else ""), tuple(g.members[i] for i in order),
                              tuple(g.seeds[i] for i in order), "trial", params))
    return out


def resolve_refs(refs: Sequence[str], root: str | Path | None = None) -> list[RunSet]:
    """The sets ``refs`` name, labels made distinct (two configurations of one preset are both "tiny":
    the second says which run it starts from)."""
    sets = [s for ref in refs for s in resolve_ref(ref, root)]
    seen: dict[str, set[tuple[Path, ...]]] = {}
    for s in sets:  # (the same set named twice keeps its label: compare says it is named twice)
        seen.setdefault(s.label, set()).add(tuple(p.resolve() for p in s.members))
    return [s if len(seen[s.label]) == 1 or s.members[0].name == s.label else
            dataclasses.replace(s, label=f"{s.label} ({s.members[0].name})") for s in sets]


def member_runs(sets: Sequence[RunSet]) -> list[Path]:
    """Every run the sets name, once each, in the order named."""
    seen: dict[Path, Path] = {}
    for s in sets:
        for p in s.members:
            seen.setdefault(p.resolve(), p)
    return list(seen.values())
