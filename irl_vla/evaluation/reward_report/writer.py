"""Write a reward report: ``report.html`` (one self-contained file, plots embedded as PNG), ``report.json`` and
``summary.md`` (the short Markdown summary the command prints).

Sections (``SECTIONS``, the ``id`` of each ``<section>`` and a key of ``report.json``): the targets, per
sub-score metrics with reliability diagrams, predicted vs simulator EPDMS, ranking and regret, the worst
disagreements with a bird's-eye picture each, the IRL-term ablation, distribution shift on policy candidates,
and the settings. A section without input (no ablation checkpoint given) says so instead of being left out.
"""  # noqa: D205

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from irl_vla.common.io import atomic_open, write_json
from irl_vla.evaluation.reward_report.agreement import TARGETS, RewardAgreement
from irl_vla.evaluation.reward_report.bev import bev_png
from irl_vla.evaluation.reward_report.candidates import ScoredCandidates
from irl_vla.evaluation.reward_report.figures import gap_figure, regret_figure, reliability_figure, scatter_figure
from irl_vla.evaluation.reward_report.html_check import check_report_html
from irl_vla.evaluation.reward_report.metrics import RegretBreakdown, to_jsonable
from irl_vla.scoring.scene_cache import SceneCache
from irl_vla.scoring.sub_scores import SubScore

REPORT_FORMAT = "irl_vla.reward_report"
REPORT_VERSION = 1
HTML_FILE, JSON_FILE, SUMMARY_FILE = "report.html", "report.json", "summary.md"
#: Section ids, in order.
SECTIONS = ("targets", "sub_scores", "epdms", "ranking", "worst", "ablation", "distribution_shift", "settings")
#: Sub-scores the distribution-shift section singles out (the reward-hacking signature after RL).
WATCHED = ("EC", "LK")

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 1em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 2px 8px; text-align: right; }
th { background: #eee; } td.l, th.l { text-align: left; }
.met { color: #17701e; font-weight: bold; } .missed { color: #b01c1c; font-weight: bold; }
.watch { background: #fff3c4; } figure { display: inline-block; margin: 0.4em; vertical-align: top; }
figcaption { font-size: 0.8em; max-width: 340px; } .note { color: #555; font-style: italic; }
"""


@dataclass
class LabelledAgreement:
    """A reward model's agreement on a candidate set, with what names it in the report.

    Attributes:
        label: the row's name (e.g. ``with IRL term``, or a policy checkpoint).
        source: where it came from (a checkpoint path).
        agreement: its metrics.
    """

    label: str
    source: str
    agreement: RewardAgreement


@dataclass
class RewardReport:
    """Everything one report shows.

    Attributes:
        title: the page title.
        settings: the inputs (split, checkpoints, candidate counts, command).
        main: the reward model's agreement on the held-out candidates.
        candidates: those candidates (for the scatter plot and the pictures).
        ablation: the same metrics for each reward checkpoint compared (with and without the IRL term).
        shift: the main reward model on each given policy's candidates.
    """

    title: str
    settings: dict[str, Any]
    main: RewardAgreement
    candidates: ScoredCandidates
    ablation: list[LabelledAgreement] = field(default_factory=list)
    shift: list[LabelledAgreement] = field(default_factory=list)


def _f(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1, classes: Sequence[str] = ()) -> str:
    """An HTML table; the first ``left`` columns left-aligned; ``classes``: a CSS class per row (or '')."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(str(h))}</th>' for i, h in enumerate(header))
    body = []
    for r, row in enumerate(rows):
        cls = classes[r] if r < len(classes) and classes[r] else ""
        cells = "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(row))
        body.append(f'<tr class="{cls}">{cells}</tr>')
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{html.escape(title)}</h2>{body}</section>'


def _headline_rows(rows: Sequence[LabelledAgreement]) -> str:
    keys = ["spearman", "pearson", "kendall", "auroc_NC", "auroc_DAC", "pairwise", "regret", "expert_top1"]
    header = ["model", *keys, "mean pred. EPDMS", "mean sim. EPDMS", "candidates", "source"]
    body = []
    for r in rows:
        h = r.agreement.headline()
        body.append(
            [
                html.escape(r.label),
                *(_f(h[k], 2 if k == "regret" else 3) for k in keys),
                _f(h["mean_predicted_epdms"]),
                _f(h["mean_simulator_epdms"]),
                str(r.agreement.n_candidates),
                f'<span class="l">{html.escape(r.source)}</span>',
            ]
        )
    return _table(header, body)


def _targets(a: RewardAgreement) -> str:
    rows = [
        [
            html.escape(t.name),
            ("&ge; " if TARGETS[t.key].higher_is_better else "&le; ") + _f(t.threshold, 2),
            _f(t.value),
            f'<span class="{"met" if t.met else "missed"}">{"met" if t.met else "missed"}</span>',
            _f(t.margin),
        ]
        for t in a.targets
    ]
    return _table(["target", "threshold", "measured", "", "margin (+: met by, -: missed by)"], rows)


def _sub_score_table(a: RewardAgreement) -> str:
    rows = [
        [
            m.name,
            m.kind,
            str(m.n),
            str(m.n_undefined_simulator),
            str(m.n_undefined_predicted),
            _f(m.accuracy),
            _f(m.auroc),
            _f(m.ece),
            _f(m.mae),
            _f(m.mean_predicted),
            _f(m.mean_simulator),
        ]
        for m in a.sub_scores
    ]
    header = ["sub-score", "kind", "n", "undefined (sim.)", "undefined (pred.)", "accuracy", "AUROC", "ECE", "MAE"]
    return _table([*header, "mean pred.", "mean sim."], rows, left=2)


def _gap_table(gaps: Sequence[LabelledAgreement]) -> str:
    names = [s.name for s in SubScore]
    rows = []
    for r in gaps:
        by_name = {g.name: g for g in r.agreement.gaps}
        rows.append([html.escape(r.label), *(_f(by_name[n].gap) for n in names)])
    header = ["candidates", *(f"{n} (watched)" if n in WATCHED else n for n in names)]
    return _table(header, rows)


def _worst(report: RewardReport, cache_of: Callable[[str], SceneCache] | None) -> tuple[str, list[str]]:
    """Figures of the worst disagreements; returns the HTML and the tokens whose picture could not be drawn."""
    parts, missing = [], []
    c = report.candidates
    for i, d in enumerate(report.main.worst):
        subs = ", ".join(
            f"{n} {_f(d.predicted[n], 2)}/{_f(d.simulator[n], 2)}"
            for n in d.predicted
            if not (math.isnan(d.simulator[n]) and n == SubScore.EC.name)
        )
        caption = (
            f"#{i + 1} scene {html.escape(d.token)}, {html.escape(d.source)} candidate: predicted EPDMS "
            f"{_f(d.predicted_epdms)}, simulator {_f(d.simulator_epdms)}. Sub-scores predicted/simulator: {subs}"
        )
        picture = '<p class="note">no picture: the scene\'s metric cache was not available</p>'
        if cache_of is not None:
            try:
                cache = cache_of(d.token)
            except (FileNotFoundError, KeyError, ValueError) as e:
                missing.append(f"{d.token} ({e})")
            else:
                title = f"{d.token}: pred. {_f(d.predicted_epdms, 2)} / sim. {_f(d.simulator_epdms, 2)}"
                picture = _img(bev_png(cache, c.poses[d.row], title=title), f"BEV of scene {d.token}")
        else:
            missing.append(f"{d.token} (no metric cache given)")
        parts.append(f"<figure>{picture}<figcaption>{caption}</figcaption></figure>")
    note = ""
    if report.main.n_worst_nan:
        note = f'<p class="note">{report.main.n_worst_nan} candidates with an undefined EPDMS were not considered.</p>'
    intro = (
        "<p>The candidates whose predicted EPDMS differs most from the simulator's. Each picture shows the scene "
        "at t = 0 in the ego frame (x forward up): drivable area, lanes, red-light connectors, other objects with "
        "their 4 s paths, the route (dotted), the expert's plan (green) and the candidate (red).</p>"
    )
    return intro + note + "".join(parts), missing


def render_html(report: RewardReport, cache_of: Callable[[str], SceneCache] | None = None) -> tuple[str, list[str]]:
    """The report's HTML and the tokens whose picture is missing (with the reason)."""
    a, c = report.main, report.candidates
    main_row = LabelledAgreement("held-out candidates", str(report.settings.get("reward_checkpoint", "")), a)
    worst_html, missing = _worst(report, cache_of)
    sections = [
        _section("targets", "Targets (held-out split)", _targets(a) + _headline_rows([main_row])),
        _section(
            "sub_scores",
            "Per sub-score: accuracy, AUROC, calibration",
            "<p>Accuracy compares the prediction rounded to the nearest value the simulator gives (0.5 threshold "
            "for binary sub-scores, {0, 0.5, 1} for NC and DDC). AUROC and reliability treat &ldquo;= 1&rdquo; as "
            "the positive class. Rows with an undefined value (EC without a previous frame) are counted, not "
            "judged.</p>" + _sub_score_table(a) + _img(reliability_figure(a.sub_scores), "reliability diagrams"),
        ),
        _section(
            "epdms",
            "Predicted vs simulator EPDMS",
            _img(scatter_figure(c.predicted_epdms, c.simulator_epdms, a.correlations), "EPDMS scatter")
            + _table(
                ["Pearson", "Spearman", "Kendall tau-b", "n", "NaN pairs", "tied pred.", "tied sim."],
                [
                    [
                        _f(a.correlations.pearson),
                        _f(a.correlations.spearman),
                        _f(a.correlations.kendall),
                        str(a.correlations.n),
                        str(a.correlations.n_nan),
                        str(a.correlations.n_tied_predicted),
                        str(a.correlations.n_tied_simulator),
                    ]
                ],
                left=0,
            ),
        ),
        _section("ranking", "Ranking within a scene and top-1 regret", _ranking(a)),
        _section("worst", "Worst disagreements", worst_html),
        _section(
            "ablation",
            "IRL-term ablation",
            _headline_rows(report.ablation)
            if report.ablation
            else '<p class="note">No reward checkpoints to compare were given (report.ablation).</p>',
        ),
        _section("distribution_shift", "Distribution shift: candidates of policies", _shift(report)),
        _section(
            "settings",
            "Settings",
            _table(
                ["setting", "value"],
                [[html.escape(k), f'<span class="l">{html.escape(str(v))}</span>'] for k, v in report.settings.items()],
            ),
        ),
    ]
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(report.title)}</h1>{''.join(sections)}</body></html>"
    )
    return page, missing


def _ranking(a: RewardAgreement) -> str:
    p, r = a.pairwise, a.regret
    rows = [
        ["pairwise accuracy (all pairs)", _f(p.accuracy)],
        ["pairwise accuracy (mean over scenes)", _f(p.scene_mean)],
        [
            "pairs judged / simulator ties left out / prediction ties (count 1/2)",
            f"{p.n_pairs} / {p.n_simulator_ties} / {p.n_predicted_ties}",
        ],
        ["scenes judged / without a pair", f"{p.n_scenes} / {p.n_scenes_without_pairs}"],
        ["top-1 regret mean / median / max [EPDMS points]", f"{_f(r.mean, 2)} / {_f(r.median, 2)} / {_f(r.max, 2)}"],
        ["scenes where the favourite is the best", _f(r.zero_fraction)],
        ["scenes whose top prediction is tied (regret averaged over the tie)", str(r.n_scenes_tied_top)],
        ["candidates left out (NaN EPDMS)", str(p.n_nan)],
    ]
    if a.expert is not None:
        rows.append(["expert predicted best in its scene", f"{_f(a.expert.top1_fraction)} of {a.expert.n_scenes}"])
        rows.append(["expert's mean percentile among its scene's candidates", _f(a.expert.mean_percentile)])
    return (
        _table(["", "value"], rows)
        + _img(regret_figure(r.per_scene), "regret histogram")
        + _regret_breakdown(a.regret_breakdown)
    )


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.0f} %"


def _regret_breakdown(b: RegretBreakdown | None) -> str:
    if b is None:
        return ""
    lead = (
        f"<h3>Where the regret comes from</h3><p>{b.n_catastrophic} of {b.n_scenes} scenes have a regret above "
        f"{b.threshold:g} points (a catastrophic favourite); they hold {_pct(b.catastrophic_share)} of the summed "
        f"regret, and the mean without them is {_f(b.mean_without_catastrophic, 2)} points (all scenes: "
        f"{_f(b.mean, 2)}). The favourites the simulator fails, by sub-score (a favourite can fail several):</p>"
    )
    rows = [
        [
            html.escape(f.condition),
            f"{f.n_scenes:g}",
            _pct(f.scene_fraction),
            _pct(f.regret_share),
            _f(f.mean_regret, 2),
        ]
        for f in [*b.failures, b.no_failure]
    ]
    header = ["favourite fails", "scenes", "of the scenes", "share of the regret", "mean regret [points]"]
    return lead + _table(header, rows)


def _scenes(n: float) -> str:
    return f"{n:g} scene" + ("" if n == 1 else "s")


def regret_breakdown_line(b: RegretBreakdown) -> str:
    """One Markdown sentence: the catastrophic scenes and the commonest failures of the favourites."""
    failing = sorted((f for f in b.failures if f.n_scenes > 0), key=lambda f: -f.n_scenes)
    parts = [f"{f.sub_score} {_scenes(f.n_scenes)} ({_pct(f.regret_share)} of the regret)" for f in failing]
    return (
        f"Regret {_f(b.mean, 2)}: {b.n_catastrophic} of {b.n_scenes} scenes above {b.threshold:g} points hold "
        f"{_pct(b.catastrophic_share)} of it (mean without them {_f(b.mean_without_catastrophic, 2)}); favourites "
        f"failing {'; '.join(parts) if parts else 'no multiplier or EC'}."
    )


def _shift(report: RewardReport) -> str:
    if not report.shift:
        return '<p class="note">No policy checkpoints were given (report.policies).</p>'
    base = LabelledAgreement("held-out candidates", "labelled set", report.main)
    rows = [base, *report.shift]
    gaps = {r.label: r.agreement.gaps for r in rows}
    return (
        "<p>The reward model on candidates sampled from each policy, scored by the simulator. A positive gap "
        "(predicted mean above the simulator's) on a policy's candidates that the held-out set does not show is "
        "the reward model being exploited; EC and LK are watched in particular.</p>"
        + _headline_rows(rows)
        + _gap_table(rows)
        + _img(gap_figure(gaps), "sub-score gaps")
    )


def report_json(report: RewardReport, missing_pictures: Sequence[str]) -> dict[str, Any]:
    """The report's content as JSON (every metric; no NaN, ``null`` instead)."""
    return to_jsonable(
        {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "title": report.title,
            "settings": report.settings,
            "targets": report.main.targets,
            "sub_scores": report.main.sub_scores,
            "epdms": {"correlations": report.main.correlations, "headline": report.main.headline()},
            "ranking": {"pairwise": report.main.pairwise, "regret": report.main.regret, "expert": report.main.expert},
            "regret_breakdown": report.main.regret_breakdown,
            "worst": {"candidates": report.main.worst, "missing_pictures": list(missing_pictures)},
            "ablation": [
                {
                    "label": r.label,
                    "source": r.source,
                    "headline": r.agreement.headline(),
                    "targets": r.agreement.targets,
                }
                for r in report.ablation
            ],
            "distribution_shift": [
                {
                    "label": r.label,
                    "source": r.source,
                    "headline": r.agreement.headline(),
                    "gaps": r.agreement.gaps,
                    "sub_scores": r.agreement.sub_scores,
                }
                for r in report.shift
            ],
            "main": {"sources": report.main.sources, "gaps": report.main.gaps, "n_scenes": report.main.n_scenes},
        }
    )


def markdown_summary(report: RewardReport) -> str:
    """A short Markdown summary: targets, the ablation and the distribution shift in a few lines."""
    a = report.main
    lines = [
        f"## {report.title}",
        "",
        f"{a.n_candidates} candidates of {a.n_scenes} scenes ({report.settings.get('split', '?')}).",
        "",
        "| target | threshold | measured | | by |",
        "|---|---|---|---|---|",
    ]
    for t in a.targets:
        bound = ">=" if TARGETS[t.key].higher_is_better else "<="
        verdict = "met" if t.met else "missed"
        lines.append(f"| {t.name} | {bound} {_f(t.threshold, 2)} | {_f(t.value)} | {verdict} | {_f(abs(t.margin))} |")
    if a.regret_breakdown is not None:
        lines += ["", regret_breakdown_line(a.regret_breakdown)]
    if report.settings.get("selection"):
        lines += ["", f"Favourite of each scene (top-1 regret) by: {report.settings['selection']}."]
    for title, rows in (("IRL-term ablation", report.ablation), ("Distribution shift", report.shift)):
        if not rows:
            continue
        lines += ["", f"{title}:", "", "| | Spearman | pairwise | regret | mean pred. - sim. EPDMS | EC gap | LK gap |"]
        lines.append("|---|---|---|---|---|---|---|")
        for r in rows:
            h, gap = r.agreement.headline(), {g.name: g.gap for g in r.agreement.gaps}
            delta = h["mean_predicted_epdms"] - h["mean_simulator_epdms"]
            lines.append(
                f"| {r.label} | {_f(h['spearman'])} | {_f(h['pairwise'])} | {_f(h['regret'], 2)} | {_f(delta)} | "
                f"{_f(gap['EC'])} | {_f(gap['LK'])} |"
            )
    return "\n".join(lines) + "\n"


def write_report(
    report: RewardReport, out_dir: str | Path, cache_of: Callable[[str], SceneCache] | None = None
) -> list[Path]:
    """Write ``report.html``, ``report.json`` and ``summary.md`` into ``out_dir`` (atomically); returns the paths.

    The HTML is checked before it is written (``check_report_html``: every section, every image decodes, nothing
    external).

    Args:
        report: what to show.
        out_dir: the run directory.
        cache_of: a scene token's metric cache, for the pictures of the worst disagreements.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page, missing = render_html(report, cache_of)
    check_report_html(page, SECTIONS, where=str(out / HTML_FILE))
    with atomic_open(out / HTML_FILE) as f:
        f.write(page)
    write_json(out / JSON_FILE, report_json(report, missing))
    with atomic_open(out / SUMMARY_FILE) as f:
        f.write(markdown_summary(report))
    return [out / HTML_FILE, out / JSON_FILE, out / SUMMARY_FILE]
