"""Scoping from evidence: feasibility, impact, archetype guidance, the checklist and readiness.

Prioritisation templates ask people to rate impact and feasibility from 1 to 5. Here each
score is computed from evidence lines, and each line says whether it was *declared* (copied
from ``flywheel.yaml``) or *measured* (by a run: the ladder, the objective, the forecast).
Feasibility has the three cost drivers of an ML project — data availability, the accuracy
requirement and problem difficulty — each scored 0 (infeasible) to 1 (easy) with a range
that is wide where the evidence is thin, so a project nobody has measured yet sits on the
portfolio chart with long bars instead of a confident guess.

Everything here reads plain values: the project, a run as stored (``RunResult.to_dict()``),
a sample of the data for the personal-data scan, and the artifacts the store holds. It never
fits a model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from flywheel.metrics import parse_metric
from flywheel.project import Project

__all__ = [
    "ARCHETYPE_QUESTIONS",
    "Assessment",
    "CheckItem",
    "Driver",
    "Evidence",
    "PersonalData",
    "assess",
    "find_personal_data",
]

Source = Literal["declared", "measured"]
_LEVEL = {"low": 1.0, "medium": 0.5, "high": 0.0}


@dataclass(frozen=True)
class Evidence:
    """One line behind a score: what it says, where it came from, and its part of the score."""

    text: str
    source: Source
    score: float | None = None  # 0..1 for this line, None when it only informs
    low: float | None = None
    high: float | None = None
    flag: bool = False  # something a person must look at (personal data, a target above human level)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Driver:
    """A 0..1 score (1 = easy) with its range and the evidence lines behind it."""

    name: str
    score: float
    low: float
    high: float
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def measured(self) -> bool:
        """Whether any scored line was measured."""
        return any(e.source == "measured" and e.score is not None for e in self.evidence)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "name": self.name,
            "score": self.score,
            "low": self.low,
            "high": self.high,
            "measured": self.measured,
            "evidence": [e.to_dict() for e in self.evidence],
        }


def _combine(name: str, lines: list[Evidence]) -> Driver:
    """Mean of the scored lines; with none, the unknown middle with the whole range."""
    scored = [e for e in lines if e.score is not None]
    if not scored:
        return Driver(name, 0.5, 0.0, 1.0, lines)
    score = float(np.mean([e.score for e in scored]))
    low = float(np.mean([e.low if e.low is not None else e.score for e in scored]))
    high = float(np.mean([e.high if e.high is not None else e.score for e in scored]))
    # Declared lines are opinions: widen the range by how much of the score rests on them.
    declared = sum(e.source == "declared" for e in scored) / len(scored)
    low, high = max(0.0, low - 0.15 * declared), min(1.0, high + 0.15 * declared)
    return Driver(name, score, min(low, score), max(high, score), lines)


def _clip(v: float) -> float:
    return float(min(1.0, max(0.0, v)))


# --- personal data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonalData:
    """A column that looks like it holds personal data, and why."""

    column: str
    kind: str  # e-mail, phone, card number, name, identifier
    share: float  # share of sampled values that matched (1.0 for a name-based match)
    example: str  # a masked example

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(
    r"(?<![\w.])(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{3,4}[\s.-]\d{3,4}(?:[\s.-]\d{2,4})?(?![\w.])"
)
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){13,19}(?!\d)")
_NAME_IN_TEXT = re.compile(
    r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+[A-Z][a-z]+|\b(?:my name is|I am|I'm)\s+[A-Z][a-z]+"
)
_SENSITIVE_NAMES = re.compile(
    r"(^|_)(e?mail|phone|mobile|ssn|passport|iban|card(_?number)?|first_?name|last_?name|surname|"
    r"full_?name|address|dob|birth_?date|date_of_birth)($|_)",
    re.IGNORECASE,
)


def _luhn(digits: str) -> bool:
    total, odd = 0, True
    for ch in reversed(digits):
        d = int(ch)
        if not odd:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        odd = not odd
    return total % 10 == 0


def _mask(value: str) -> str:
    keep = value[:2]
    return keep + "•" * max(0, min(len(value), 12) - 2)


def find_personal_data(
    frame: pd.DataFrame, *, sample: int = 2000, threshold: float = 0.05
) -> list[PersonalData]:
    """Columns that look like personal data: by their values (e-mail addresses, phone numbers,
    Luhn-valid card numbers, names after titles in free text) or by their name.

    A column is flagged when at least ``threshold`` of its sampled non-empty values match.

    Examples
    --------
    >>> frame = pd.DataFrame({"contact": ["ann@example.com", "bob@example.org"], "x": [1, 2]})
    >>> [(p.column, p.kind) for p in find_personal_data(frame)]
    [('contact', 'e-mail')]
    """
    out: list[PersonalData] = []
    rows = frame.head(sample)
    for column in frame.columns:
        name = str(column)
        values = rows[column].dropna()
        text = values.astype(str)
        found: PersonalData | None = None
        if len(text) and not pd.api.types.is_float_dtype(values):
            checks = (
                ("e-mail", lambda s: bool(_EMAIL.search(s))),
                ("card number", lambda s: any(_luhn(re.sub(r"\D", "", m)) for m in _CARD.findall(s))),
                ("phone", lambda s: bool(_PHONE.search(s))),
                ("name in free text", lambda s: bool(_NAME_IN_TEXT.search(s))),
            )
            for kind, check in checks:
                hits = text[text.map(check)]
                share = len(hits) / len(text)
                if share >= threshold:
                    found = PersonalData(name, kind, float(share), _mask(str(hits.iloc[0])))
                    break
        if found is None and _SENSITIVE_NAMES.search(name):
            found = PersonalData(name, "named like personal data", 1.0, "")
        if found is not None:
            out.append(found)
    return out


# --- the checklist ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckItem:
    """One item of the feasibility checklist: done, open, or contradicted by evidence."""

    item: str
    status: Literal["done", "open", "contradicted"]
    evidence: str
    source: Source

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


ARCHETYPE_QUESTIONS: dict[str, list[str]] = {
    "software-2.0": [
        "Do the models truly improve performance?",
        "Does that create business value?",
        "Does it feed a data flywheel?",
    ],
    "human-in-the-loop": [
        "How good must the system be to be useful?",
        "How will enough data be collected?",
    ],
    "autonomous": [
        "What failure rate is acceptable?",
        "How can it be guaranteed not to be exceeded?",
        "How cheaply can data from the system be labelled?",
    ],
}

_ADVICE = {
    "software-2.0": "Adding a data flywheel (log predictions, collect feedback, retrain) raises impact.",
    "human-in-the-loop": "Narrowing the domain or raising the share a person reviews makes it more feasible.",
    "autonomous": (
        "Adding a human in the loop, or narrowing the domain, makes an autonomous system more feasible."
    ),
}


@dataclass(frozen=True)
class Assessment:
    """Feasibility (three drivers), impact, archetype guidance, checklist and readiness of one project."""

    project: str
    archetype: str
    data: Driver
    accuracy: Driver
    difficulty: Driver
    impact: Driver
    impact_value: float | None  # net value per year (declared value minus measured error cost)
    questions: list[dict[str, str]]
    advice: str
    checklist: list[CheckItem]
    readiness: dict[str, Any]
    personal_data: list[PersonalData] = field(default_factory=list)
    run_id: str | None = None

    @property
    def feasibility(self) -> Driver:
        """The three drivers together (their mean, with the mean range)."""
        parts = (self.data, self.accuracy, self.difficulty)
        return Driver(
            "feasibility",
            float(np.mean([p.score for p in parts])),
            float(np.mean([p.low for p in parts])),
            float(np.mean([p.high for p in parts])),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        f = self.feasibility
        return {
            "project": self.project,
            "archetype": self.archetype,
            "run_id": self.run_id,
            "feasibility": {"score": f.score, "low": f.low, "high": f.high},
            "drivers": {d.name: d.to_dict() for d in (self.data, self.accuracy, self.difficulty)},
            "impact": self.impact.to_dict(),
            "impact_value": self.impact_value,
            "questions": self.questions,
            "advice": self.advice,
            "checklist": [c.to_dict() for c in self.checklist],
            "readiness": self.readiness,
            "personal_data": [p.to_dict() for p in self.personal_data],
        }


# --- the drivers --------------------------------------------------------------------------------


def _best(run: dict[str, Any]) -> dict[str, Any] | None:
    best = run.get("ranking", {}).get("best")
    return next((s for s in run.get("ranking", {}).get("standings", []) if s["name"] == best), None)


def _best_baseline(run: dict[str, Any], metric: str, hib: bool) -> float | None:
    values = [
        r["value"]
        for r in run.get("ladder", [])
        if r.get("role") == "baseline" and r.get("kind") != "model" and r.get("value") is not None
    ]
    if not values:
        return None
    return max(values) if hib else min(values)


def _declared_human(project: Project, metric: str) -> float | None:
    human = project.baselines.human
    return None if human is None else human.values.get(metric)


def _data_driver(project: Project, run: dict[str, Any] | None, pii: list[PersonalData]) -> Driver:
    lines: list[Evidence] = []
    fc = (run or {}).get("forecast") or {}
    n_train = (run or {}).get("split", {}).get("train")
    status = fc.get("status")
    if status == "reachable" and fc.get("needed"):
        ratio = n_train / fc["needed"] if n_train else 0.0

        def rows_score(needed: float | None) -> float | None:
            if not needed or not n_train:
                return None
            return _clip(1 + math.log10(min(1.0, n_train / needed)) / 2)

        high_needed = fc.get("needed_high")
        lines.append(
            Evidence(
                f"{n_train:,} labelled training rows; the target needs about {fc['needed']:,.0f} "
                f"({ratio:.0%} of it in hand)",
                "measured",
                rows_score(fc["needed"]),
                rows_score(high_needed) if high_needed else 0.0,
                rows_score(fc.get("needed_low")),
            )
        )
    elif status == "met":
        lines.append(
            Evidence(f"{n_train:,} labelled training rows already reach the target", "measured", 1.0)
        )
    elif status == "unreachable":
        lines.append(
            Evidence(
                "more rows do not reach the target with this model family "
                f"(levels off at {fc.get('plateau'):.4g})",
                "measured",
                0.1,
                0.0,
                0.3,
            )
        )
    elif run is not None:
        lines.append(Evidence(f"{n_train:,} labelled training rows; no forecast of rows needed", "measured"))
    label_cost = project.costs.label
    if label_cost is not None:
        missing_cost = fc.get("cost") if status == "reachable" else None
        value = project.impact.value_per_year
        if missing_cost is not None and value:
            lines.append(
                Evidence(
                    f"the missing labels cost about {missing_cost:,.0f} ({label_cost:g} per label, declared) "
                    f"against a declared value of {value:,.0f} a year",
                    "measured",
                    _clip(1 - missing_cost / value),
                )
            )
        else:
            lines.append(Evidence(f"a label costs {label_cost:g}", "declared"))
    classes = (run or {}).get("data", {}).get("classes") or {}
    if classes and n_train:
        total = sum(classes.values())
        share = n_train / total if total else 0.0
        rare = [c for c, n in classes.items() if n * share < 10]
        text = (
            f"{len(rare)} of {len(classes)} classes have fewer than 10 training rows ({', '.join(rare[:5])})"
            if rare
            else f"every class has at least 10 training rows (smallest: {min(classes.values()) * share:.0f})"
        )
        lines.append(Evidence(text, "measured", _clip(1 - len(rare) / len(classes)), flag=bool(rare)))
    stability = project.data.stability
    if stability is not None:
        lines.append(
            Evidence(
                f"the data is {stability}",
                "declared",
                {"stable": 1.0, "seasonal": 0.6, "drifting": 0.3}[stability],
            )
        )
    for p in pii:
        lines.append(
            Evidence(
                f"column {p.column!r} looks like personal data ({p.kind}, {p.share:.0%} of values): "
                "check consent, retention and access before using it",
                "measured",
                0.5,
                flag=True,
            )
        )
    return _combine("data availability", lines)


def _target_position(target: float, baseline: float, perfect: float) -> float:
    """Where the target lies between the best baseline (0) and a perfect score (1)."""
    span = perfect - baseline
    return (target - baseline) / span if span else 1.0


def _accuracy_driver(project: Project, run: dict[str, Any] | None) -> Driver:
    lines: list[Evidence] = []
    spec = project.objective
    metric = spec.optimize or (max(spec.weights, key=lambda m: spec.weights[m]) if spec.weights else None)
    if metric is None:
        return _combine("accuracy requirement", lines)
    ref = parse_metric(metric)
    target = spec.target if spec.optimize else None
    human = _declared_human(project, metric)
    measured_human = ((run or {}).get("human") or {}).get("value")
    if measured_human is not None:
        human = measured_human
    baseline = _best_baseline(run, metric, ref.greater_is_better) if run else None
    if target is not None:
        if baseline is not None:
            pos = _target_position(target, baseline, ref.best)
            lines.append(
                Evidence(
                    f"the target {metric} {target:g} closes {pos:.0%} of the gap from the best baseline "
                    f"({baseline:.4g}) to a perfect score",
                    "measured",
                    _clip(1 - pos),
                )
            )
        else:
            pos = _target_position(target, ref.lower if ref.greater_is_better else ref.upper, ref.best)
            pos = pos if math.isfinite(pos) else 0.5
            lines.append(
                Evidence(
                    f"the target is {metric} {target:g} (no baseline measured yet)",
                    "declared",
                    _clip(1 - pos),
                )
            )
        if human is not None and (target > human if ref.greater_is_better else target < human):
            lines.append(
                Evidence(
                    f"the target {target:g} is beyond human level ({human:.4g}): few systems get there",
                    "measured" if measured_human is not None else "declared",
                    0.2,
                    flag=True,
                )
            )
    else:
        lines.append(
            Evidence("no success target: the requirement is not stated (objective.target)", "declared")
        )
    best = _best(run) if run else None
    volume, wrong = project.impact.volume_per_year, project.costs.wrong_prediction
    if best is not None and metric == "accuracy" and best.get("test_value") is not None and volume and wrong:
        error = 1 - best["test_value"]
        cost = error * volume * wrong
        value = project.impact.value_per_year
        lines.append(
            Evidence(
                f"at the best model's error rate ({error:.2%}, measured) errors cost about "
                f"{cost:,.0f} a year "
                f"({volume:,.0f} predictions × {wrong:g} each, declared)",
                "measured",
                _clip(1 - cost / value) if value else None,
            )
        )
    fc = (run or {}).get("forecast") or {}
    curve = fc.get("cost_curve") or []
    if len(curve) >= 4:
        first, last = curve[0], curve[-1]
        lines.append(
            Evidence(
                f"rows needed grow {last['needed'] / first['needed']:,.0f}× from {metric} "
                f"{first['target']:.4g} "
                f"to {last['target']:.4g}: each point of {metric} costs more than the last",
                "measured",
            )
        )
    return _combine("accuracy requirement", lines)


def _difficulty_driver(project: Project, run: dict[str, Any] | None) -> Driver:
    d = project.difficulty
    lines = [
        Evidence(f"output complexity {d.output}", "declared", _LEVEL[d.output]),
        Evidence(f"reliability need {d.reliability}", "declared", _LEVEL[d.reliability]),
        Evidence(f"generalisation need {d.generalization}", "declared", _LEVEL[d.generalization]),
    ]
    spec = project.objective
    if run is not None and spec.optimize and spec.target is not None:
        ref = parse_metric(spec.optimize)
        baseline = _best_baseline(run, spec.optimize, ref.greater_is_better)
        if baseline is not None:
            pos = _target_position(spec.target, baseline, ref.best)
            lines.append(
                Evidence(
                    f"the best baseline ({baseline:.4g}) is {abs(spec.target - baseline):.4g} short "
                    "of the target",
                    "measured",
                    _clip(1 - pos),
                )
            )
        fc = run.get("forecast") or {}
        gain, current = fc.get("doubling_gain"), fc.get("current")
        if gain is not None and current is not None:
            remaining = abs(spec.target - current)
            share = gain / remaining if remaining else 1.0
            lines.append(
                Evidence(
                    f"twice the training rows would gain {gain:+.4g} {spec.optimize} ({share:.0%} of the "
                    "remaining gap): the learning curve's slope",
                    "measured",
                    _clip(share),
                )
            )
    return _combine("problem difficulty", lines)


def _impact(project: Project, run: dict[str, Any] | None) -> tuple[Driver, float | None]:
    imp = project.impact
    lines: list[Evidence] = []
    value = imp.value_per_year or None
    net = value
    if value:
        lines.append(Evidence(f"value {value:,.0f} a year", "declared"))
    best = _best(run) if run else None
    metric = project.objective.optimize
    volume, wrong = imp.volume_per_year, project.costs.wrong_prediction
    low_net = high_net = net
    if (
        value
        and best is not None
        and metric == "accuracy"
        and best.get("test_value") is not None
        and volume
        and wrong
    ):
        interval = best.get("test_interval") or [best["test_value"], best["test_value"]]
        cost = (1 - best["test_value"]) * volume * wrong
        net = value - cost
        low_net = value - (1 - interval[0]) * volume * wrong
        high_net = value - (1 - interval[1]) * volume * wrong
        lines.append(
            Evidence(f"errors at the best model cost {cost:,.0f} a year: net {net:,.0f}", "measured")
        )

    def scale(v: float | None) -> float:
        # Log scale: 1,000 a year or less → 0, 10,000 → 0.33, 100,000 → 0.67, 1,000,000 or more → 1.
        return _clip((math.log10(v) - 3) / 3) if v and v > 1 else 0.0

    if net is not None:
        source: Source = "measured" if net != value else "declared"
        lines.append(
            Evidence(f"net value {net:,.0f} a year", source, scale(net), scale(low_net), scale(high_net))
        )
    for lens in imp.lenses:
        lines.append(Evidence(f"lens: {lens}", "declared"))
    driver = _combine("impact", lines)
    if imp.lenses and lines:
        bonus = min(0.1, 0.03 * len(imp.lenses))  # each lens that applies adds a little, up to 0.1
        driver = Driver(
            driver.name, _clip(driver.score + bonus), driver.low, _clip(driver.high + bonus), lines
        )
    return driver, net


# --- questions, checklist, readiness ------------------------------------------------------------


def _questions(
    project: Project, run: dict[str, Any] | None, artifacts: dict[str, Any]
) -> list[dict[str, str]]:
    need = (run or {}).get("need_ml") or {}
    verdict = (run or {}).get("verdict") or {}
    fc = (run or {}).get("forecast") or {}
    answers: dict[str, tuple[str, str]] = {}
    if need.get("answer") in ("yes", "no"):
        answers["Do the models truly improve performance?"] = (need["answer"], need["reason"])
    if project.impact.value_per_year:
        answers["Does that create business value?"] = (
            "declared",
            f"value {project.impact.value_per_year:,.0f} a year (declared)",
        )
    if artifacts.get("predictions_logged") or artifacts.get("feedback"):
        answers["Does it feed a data flywheel?"] = (
            "yes",
            f"{artifacts.get('predictions_logged', 0):,} predictions logged, "
            f"{artifacts.get('feedback', 0):,} labels fed back",
        )
    if project.objective.target is not None:
        answers["How good must the system be to be useful?"] = (
            "declared",
            f"{project.objective.optimize or 'objective'} {project.objective.target:g} (objective.target)",
        )
        answers["What failure rate is acceptable?"] = answers["How good must the system be to be useful?"]
    if fc.get("status") in ("reachable", "met", "unreachable"):
        answers["How will enough data be collected?"] = ("measured", fc.get("text", ""))
    if verdict.get("status") == "pass":
        answers["How can it be guaranteed not to be exceeded?"] = (
            "measured",
            f"the whole test interval clears the target: {verdict['reason']}; "
            "keep it with `flywheel gate` in CI",
        )
    if project.costs.label is not None:
        answers["How cheaply can data from the system be labelled?"] = (
            "declared",
            f"{project.costs.label:g} per label (costs.label)",
        )
    out = []
    for q in ARCHETYPE_QUESTIONS[project.archetype]:
        status, text = answers.get(q, ("open", "no evidence yet"))
        out.append({"question": q, "status": status, "answer": text})
    return out


def _checklist(project: Project, run: dict[str, Any] | None) -> list[CheckItem]:
    need = (run or {}).get("need_ml") or {}
    answer = need.get("answer")
    items = []
    if answer == "yes":
        items.append(CheckItem("need ML at all", "done", need["reason"], "measured"))
    elif answer == "no":
        items.append(CheckItem("need ML at all", "contradicted", need["reason"], "measured"))
    else:
        items.append(
            CheckItem("need ML at all", "open", need.get("reason", "the ladder has not run"), "measured")
        )
    target = project.objective.target
    items.append(
        CheckItem(
            "success criteria agreed",
            "done" if target is not None else "open",
            f"objective target {target:g}" if target is not None else "no objective.target",
            "declared",
        )
    )
    ethics = project.ethics
    items.append(
        CheckItem(
            "ethics considered",
            "done" if ethics else "open",
            ethics or "no note (ethics: in flywheel.yaml)",
            "declared",
        )
    )
    external = project.baselines.external
    items.append(
        CheckItem(
            "literature reviewed",
            "done" if external else "open",
            f"{len(external)} external baseline(s): " + ", ".join(e.name for e in external)
            if external
            else "no external baselines (baselines.external)",
            "declared",
        )
    )
    best = _best(run) if run else None
    n_test = (run or {}).get("split", {}).get("test")
    if best is not None and best.get("test_interval") and n_test:
        low, high = best["test_interval"]
        width = high - low
        margin = project.baselines.margin or 0.01
        enough = n_test >= 100 and width <= 10 * margin
        items.append(
            CheckItem(
                "labelled benchmark built",
                "done" if enough else "open",
                f"{n_test:,} test rows give a ±{width / 2:.3g} interval on "
                f"{project.objective.optimize or 'the metric'}",
                "measured",
            )
        )
    else:
        items.append(
            CheckItem("labelled benchmark built", "open", "no test evaluation stored yet", "measured")
        )
    rules = project.baselines.rules
    items.append(
        CheckItem(
            "rule-based MVP built",
            "done" if rules else "open",
            f"rules rung: {', '.join(rules)}"
            if rules
            else "no baselines.rules (the one-feature rung is the nearest)",
            "measured" if rules and run else "declared",
        )
    )
    if answer == "yes":
        items.append(
            CheckItem(
                "still sure ML is needed", "done", "after the ladder ran: " + need["reason"], "measured"
            )
        )
    elif answer == "no":
        items.append(CheckItem("still sure ML is needed", "contradicted", need["reason"], "measured"))
    else:
        items.append(
            CheckItem("still sure ML is needed", "open", "no verdict from the ladder yet", "measured")
        )
    return items


_READINESS_ITEMS: dict[str, list[tuple[str, str]]] = {
    # section: [(item, artifact that shows it)]
    "data": [
        ("schema checked", "data_checked"),
        ("data fingerprinted and split leak-free", "run_stored"),
        ("personal data scanned", "pii_scanned"),
    ],
    "model": [
        ("baselines measured", "ladder"),
        ("held-out evaluation with intervals", "run_stored"),
        ("model diagnosed", "diagnosis"),
    ],
    "infrastructure": [
        ("model versioned in the registry", "models"),
        ("gate decided a promotion", "champion"),
        ("serving latency measured", "latency"),
    ],
    "monitoring": [
        ("predictions logged", "predictions_logged"),
        ("feedback labels collected", "feedback"),
        ("champion watched against the objective", "monitored"),
    ],
}


def _readiness(project: Project, artifacts: dict[str, Any]) -> dict[str, Any]:
    """ML Test Score shape: 1 per item shown by an artifact, 0.5 declared done by hand, else 0."""
    declared = project.readiness
    sections: dict[str, Any] = {}
    for section, items in _READINESS_ITEMS.items():
        rows = []
        for item, key in items:
            if artifacts.get(key):
                rows.append({"item": item, "score": 1.0, "source": "measured"})
            elif declared.get(item.replace(" ", "_")):
                rows.append({"item": item, "score": 0.5, "source": "declared"})
            else:
                rows.append({"item": item, "score": 0.0, "source": "none"})
        sections[section] = {"score": sum(r["score"] for r in rows), "items": rows}
    weakest = min(sections, key=lambda s: sections[s]["score"])
    return {"score": sections[weakest]["score"], "weakest": weakest, "sections": sections}


def assess(
    project: Project,
    run: dict[str, Any] | None = None,
    *,
    frame: pd.DataFrame | None = None,
    artifacts: dict[str, Any] | None = None,
) -> Assessment:
    """Score a project from its file (declared) and its latest run (measured).

    ``run`` is a run as stored (``RunResult.to_dict()``); ``frame`` a sample of the data for the
    personal-data scan; ``artifacts`` what the store holds (see :func:`flywheel.scoping.gather`).
    """
    arts = dict(artifacts or {})
    pii = (
        find_personal_data(frame.drop(columns=[project.data.target], errors="ignore"))
        if frame is not None
        else []
    )
    if frame is not None:
        arts["pii_scanned"] = True
        arts["data_checked"] = True
    if run is not None:
        arts.setdefault("run_stored", True)
        arts.setdefault("ladder", bool(run.get("ladder")))
        arts.setdefault("diagnosis", bool(run.get("diagnosis")))
        best = _best(run)
        evals = {e["name"]: e for e in run.get("evaluations", [])}
        if (
            best is not None
            and evals.get(best["name"], {}).get("systems", {}).get("latency_p95_ms") is not None
        ):
            arts.setdefault("latency", True)
    impact, net = _impact(project, run)
    return Assessment(
        project=project.project,
        archetype=project.archetype,
        data=_data_driver(project, run, pii),
        accuracy=_accuracy_driver(project, run),
        difficulty=_difficulty_driver(project, run),
        impact=impact,
        impact_value=net,
        questions=_questions(project, run, arts),
        advice=_ADVICE[project.archetype],
        checklist=_checklist(project, run),
        readiness=_readiness(project, arts),
        personal_data=pii,
        run_id=(run or {}).get("run_id"),
    )
