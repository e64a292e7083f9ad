"""Report job: one self-contained HTML page from an analysis document (``lakelabel report``).

The page holds the plots of :mod:`jobs.analysis.plots` as base64 PNGs, the LF table, LF pairs,
classes, slices, coverage gaps and the error buckets with their example rows. It has no script
and loads nothing from the network, so it opens offline and can be mailed or attached anywhere.
It is written to ``<lakehouse>/_lakelabel/runs/<run id>/report.html`` (or ``--out``) and logged to
the run's MLflow run as an artifact.
"""

from __future__ import annotations

import base64
import json
import logging
import pkgutil
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from jobs import analyze as analyze_job
from jobs.runtime import command
from jobs.runtime.config import PipelineConfig
from jobs.runtime.runs import run_dir
from jobs.task_views import TaskView, add_task_option, one_task, task_file, task_views
from lf_library.errors import ConfigError

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"


@dataclass(frozen=True)
class Report:
    """An analysis document, its figures (``name, title, caption, png``) and the HTML page."""

    doc: dict[str, Any]
    figures: list[dict[str, Any]]
    html: str


def _pct(x: Any) -> str:
    return "–" if x is None else f"{x:.1%}"


def _num(x: Any) -> str:
    return "–" if x is None else f"{x:.2f}"


def findings(doc: dict[str, Any]) -> list[str]:
    """A few sentences on what stands out: the worst LF, conflated classes, conflicts, gaps, weak slices."""
    out: list[str] = []
    k = len(doc["label_space"])
    t = doc["totals"]
    gold_lfs = [lf for lf in doc["lfs"] if lf["gold_accuracy"] is not None]
    if (len(gold_lfs) > 1 and len({lf["gold_accuracy"] for lf in gold_lfs}) == 1
            and gold_lfs[0]["gold_accuracy"] >= 1 / k):
        # Every LF scores the same on gold (all 100% on a few gold rows, a team's first weeks): none is "the least
        # accurate" (a drill: the first in the list was); the one to watch has the least gold evidence. All equally
        # below a random guess (all 0%: a label_map the wrong way round) is no tie to report: the surest is named.
        thin = min(gold_lfs, key=lambda lf: (lf["gold_accuracy_ci95"][0], lf["gold_votes"]))
        low, high = thin["gold_accuracy_ci95"]
        out.append(f"All {len(gold_lfs)} LFs with gold votes are right on {_pct(thin['gold_accuracy'])} of the gold "
                   f"rows they voted on; {thin['name']} has the least evidence, {thin['gold_votes']:,} gold row(s) "
                   f"(95% interval {_pct(low)}–{_pct(high)}).")
    elif gold_lfs:
        # The LF surest to be inaccurate: the lowest upper end of its 95% interval, then the lowest accuracy. Wrong on
        # its 2 gold rows (up to 66%) is less sure than right on 4% of 2,445 (a drill at 300 LFs named the former).
        worst = min(gold_lfs, key=lambda lf: (lf["gold_accuracy_ci95"][1], lf["gold_accuracy"]))
        low, high = worst["gold_accuracy_ci95"]
        verdict = (f"below a random guess ({1 / k:.0%}): fix it or drop it" if high < 1 / k
                   else "the weakest LF (the lowest upper end of a 95% interval)")
        est = (f"; the label model estimates {_pct(worst['estimated_accuracy'])} and gives it weight "
               f"{_num(worst['weight'])}" if worst.get("estimated_accuracy") is not None else "")
        out.append(f"{worst['name']} is right on {_pct(worst['gold_accuracy'])} of the {worst['gold_votes']:,} gold "
                   f"rows it voted on (95% interval {_pct(low)}–{_pct(high)}), {verdict}{est}.")
    elif doc["lfs"] and any(lf["estimated_accuracy"] is not None for lf in doc["lfs"]):
        worst = min((lf for lf in doc["lfs"] if lf["estimated_accuracy"] is not None),
                    key=lambda lf: lf["estimated_accuracy"])
        out.append(f"No gold labels; the label model estimates {worst['name']} as the least accurate LF "
                   f"({_pct(worst['estimated_accuracy'])}).")
    if t["lm_accuracy"] is not None:
        out.append(f"Label model accuracy {_pct(t['lm_accuracy'])} against majority vote {_pct(t['mv_accuracy'])} "
                   f"on {t['gold_rows']:,} gold rows ({_pct(t['lm_accuracy_covered'])} vs "
                   f"{_pct(t['mv_accuracy_covered'])} on covered rows).")
        out += conflated(doc["confusion"], "")
    ev = doc.get("evaluation") or {}
    if ev.get("lm_accuracy") is not None:
        out.append(f"On the held-out evaluation source ({ev['rows']:,} rows with gold, {_pct(ev['coverage'])} covered) "
                   f"the label model is right on {_pct(ev['lm_accuracy'])}, majority vote on "
                   f"{_pct(ev['mv_accuracy'])} ({_pct(ev['lm_accuracy_covered'])} vs {_pct(ev['mv_accuracy_covered'])} "
                   f"on covered rows).")
        if t["lm_accuracy"] is None and ev.get("confusion"):
            out += conflated(ev["confusion"], " on the evaluation source")
    top = doc["pairs"]["most_conflicting"]
    if top:
        p = top[0]
        out.append(f"The most conflicting LF pair: {p['a']} and {p['b']} disagree on {p['conflict']:,} rows "
                   f"({_pct(p['conflict_rate'])} of the {p['overlap']:,} rows both voted).")
    out += term_findings(doc.get("terms"))
    out.append(f"{doc['coverage_gaps']['uncovered']:,} rows ({_pct(1 - t['coverage'] if t['coverage'] is not None else None)}) "
               f"get no vote from any LF (see the 'Uncovered' bucket).")
    scored = [s for s in doc["slices"] if s["lm_accuracy"] is not None]
    if scored and t["lm_accuracy"] is not None:
        s = min(scored, key=lambda s: s["lm_accuracy"])
        what = "Weakest slice" if s["lm_accuracy"] < t["lm_accuracy"] else "Every slice is above all rows; the lowest"
        out.append(f"{what}: on {s['name']} ({s['size']:,} rows) the label model is right on "
                   f"{_pct(s['lm_accuracy'])}, against {_pct(t['lm_accuracy'])} on all rows.")
    if (t["lm_accuracy"] is not None and t["lm_accuracy_covered"] is not None and t["lm_accuracy"] < t["mv_accuracy"]
            and t["lm_accuracy_covered"] >= t["mv_accuracy_covered"]):
        out.append("The label model loses to majority vote only through the uncovered rows: there it predicts its "
                   "class balance, while majority vote splits them evenly. LFs for what the 'Uncovered' bucket "
                   "holds would close the gap.")
    return out


def term_findings(section: dict[str, Any] | None) -> list[str]:
    """The keyword and lexicon LFs' terms that never occur, and the least precise term (at least 5 gold rows)."""
    if not section:
        return []
    out = []
    dead = [e for e in section["lfs"] if e["n_dead"]]
    if dead:
        worst = max(dead, key=lambda e: e["n_dead"])
        n = sum(e["n_dead"] for e in dead)
        listed = ", ".join(worst["dead"][:5]) + (", ..." if worst["n_dead"] > 5 else "")
        if len(dead) == 1:
            verb = "occurs" if n == 1 else "occur"
            what = f"{n:,} of the {worst['n_terms']:,} terms of {worst['lf']} {verb} in no row ({listed})"
        else:
            what = (f"{n:,} terms of {len(dead)} keyword or lexicon LFs occur in no row; {worst['lf']} has "
                    f"{worst['n_dead']:,} of its {worst['n_terms']:,} ({listed})")
        out.append(f"{what}: check the spelling, or a plural or other form the list lacks (see 'Terms').")
    scored = [(t, e) for e in section["lfs"] for t in e["top"] if t["gold_rows"] >= 5]
    if scored:
        t, e = min(scored, key=lambda te: (te[0]["gold_precision"], -te[0]["gold_rows"]))
        out.append(f"The least precise listed term: '{t['term']}' of {e['lf']} ({t['class']}) is right on "
                   f"{_pct(t['gold_precision'])} of its {t['gold_rows']:,} gold rows; {t['sole']:,} row(s) have it "
                   f"as their only term of {e['lf']}.")
    return out


def conflated(confusion: dict[str, Any], where: str) -> list[str]:
    """The largest off-diagonal share of a confusion matrix (``doc["confusion"]`` or the evaluation's), as a finding."""
    conf, names = confusion["lm"], confusion["labels"]
    k = len(names)
    cells = [(conf[g][p] / max(sum(conf[g]), 1), g, p) for g in range(k) for p in range(k) if g != p]
    share, g, p = max(cells) if cells else (0, 0, 0)
    if share <= 0:
        return []
    rows = conf[g][p]  # ties count a share to each tied class: 5.5 is not "6 rows" (a drill)
    count = f"{rows:,.0f} rows" if float(rows).is_integer() else f"{rows:,.1f} rows, ties split evenly"
    return [f"The most conflated classes{where}: the label model labels {_pct(share)} of gold '{names[g]}' rows "
            f"as '{names[p]}' ({count})."]


def render(doc: dict[str, Any]) -> Report:
    """Draw the figures and fill the page template (package data: jobs/analysis/templates/report.html.j2)."""
    import jinja2

    from jobs.analysis import plots

    figures = plots.all_figures(doc)
    template = pkgutil.get_data("jobs.analysis", "templates/report.html.j2").decode("utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)

    def columns(bucket: dict[str, Any]) -> list[str]:
        seen: dict[str, None] = {}
        for e in bucket["examples"]:
            seen.update(dict.fromkeys(e["columns"]))
        return list(seen)

    html = env.from_string(template).render(
        doc=doc, t=doc["totals"], findings=findings(doc), chance=1 / len(doc["label_space"]),
        figures=[{**f, "b64": base64.b64encode(f["png"]).decode("ascii")} for f in figures],
        pct=_pct, num=_num, columns=columns, end_gold=plots.end_model_gold(doc),
    )
    return Report(doc, figures, html)


def check_out_path(out: str | None) -> Path | None:
    """``--out`` as a Path that can be written (:func:`jobs.runtime.command.check_out_file`)."""
    if out is None:
        return None
    path = Path(out).expanduser().absolute()  # the summary's paths are absolute, as analysis's is
    command.check_out_file(path, "--out", REPORT_FILE, given=out)
    return path


def with_end_model(cfg: PipelineConfig, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` plus ``end_model``: the run's ``train.json`` (``lakelabel train``) when there is one.

    A task's document (``doc["task"]``) gets that task's ``train_<task>.json``.
    """
    name = f"train_{doc['task']}.json" if doc.get("task") else "train.json"
    path = run_dir(cfg.lakehouse, doc["run_id"], create=False) / name
    return {**doc, "end_model": json.loads(path.read_text()) if path.exists() else None}


def build(spark: Any, cfg: PipelineConfig, *, run_id: str | None = None, task: str | None = None) -> Report:
    """Analyze ``run_id`` (default: the latest labels) and render its report, without writing anything.

    ``task``: the task of a multi-task config to report (required for such a config).
    """
    view = one_task(cfg, task, command="report")
    return render(with_end_model(cfg, analyze_job.analyze(spark, cfg, run_id=run_id, view=view, verb="report")))


def check_options(cfg: PipelineConfig, out: str | None, task: str | None) -> Path | None:
    """``--out`` and ``--task`` checked before Spark starts; ``--out`` as a Path."""
    views = task_views(cfg, task, command="report", every=True)
    if out is not None and views is not None and len(views) > 1:
        raise ConfigError(f"--out {out} names one file, but the config declares {len(views)} tasks "
                          f"({', '.join(v.name for v in views)}): pass --task NAME with --out, or drop --out to "
                          f"write report_<task>.html per task in the run folder")
    return check_out_path(out)


def run(spark: Any, cfg: PipelineConfig, *, run_id: str | None = None, out: str | None = None,
        task: str | None = None) -> dict[str, Any]:
    """``lakelabel report``: analyze (write ``analysis.json``), write the HTML page, log both to MLflow.

    An ``analysis.json`` computed from the same inputs (``lakelabel analyze`` just ran) is drawn as
    it is, without analyzing or writing it again (:func:`jobs.analyze.current_document`; the summary's
    ``analysis_reused``). Returns the analyze summary with ``report`` (the HTML path) added. With several tasks,
    ``task`` names one (default: every task): each gets ``report_<task>.html`` (and
    ``analysis_<task>.json``) in the run folder, logged under ``analysis/<task>/``.
    """
    target = check_options(cfg, out, task)  # fail before any Spark work
    views = task_views(cfg, task, command="report", every=True)
    if views is None:
        return run_one(spark, cfg, run_id=run_id, target=target)
    return analyze_job.combine([run_one(spark, cfg, run_id=run_id, target=target, view=v) for v in views], "report")


def run_one(spark: Any, cfg: PipelineConfig, *, run_id: str | None, target: Path | None,
            view: TaskView | None = None) -> dict[str, Any]:
    """:func:`run` for a single-task config, or for one task (``view``)."""
    started = time.perf_counter()
    summary = analyze_job.run_one(spark, cfg, run_id=run_id, view=view, reuse=True, verb="report")
    doc = with_end_model(cfg, json.loads(Path(summary["analysis"]).read_text()))
    report = render(doc)
    path = target or run_dir(cfg.lakehouse, doc["run_id"]) / task_file(REPORT_FILE, view)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(report.html, encoding="utf-8")
    tmp.replace(path)
    folder = f"analysis/{view.name}" if view is not None else "analysis"
    mlflow_info = analyze_job.log_to_run(cfg, doc["run_id"], lambda mlflow: mlflow.log_artifact(str(path), folder))
    seconds = time.perf_counter() - started
    log.info("report: %s (%d plots, %.0f KB) in %.1fs", path, len(report.figures), path.stat().st_size / 1024, seconds)
    return {**summary, "stage": "report", "report": str(path), "mlflow": mlflow_info,
            "timings_seconds": {**summary["timings_seconds"], "report": round(seconds, 3)}}


def figures_html(figures: list[dict[str, Any]]) -> str:
    """A bare HTML fragment with ``figures`` (from :mod:`jobs.analysis.plots`) as embedded PNGs and captions."""
    import html as _html

    parts = []
    for f in figures:
        b64 = base64.b64encode(f["png"]).decode("ascii")
        parts.append(f'<figure><h3>{_html.escape(f["title"])}</h3><img alt="{_html.escape(f["title"])}" '
                     f'src="data:image/png;base64,{b64}" style="max-width:100%"><figcaption>'
                     f'{_html.escape(f["caption"])}</figcaption></figure>')
    return "\n".join(parts)


def show(html: str, display_html: Any = None) -> str | None:
    """Show an HTML page or fragment in a notebook: ``displayHTML`` on Databricks, IPython elsewhere.

    Without either (a plain Python run), the page is written to a temporary file and its path is
    printed and returned.
    """
    if display_html is not None:
        display_html(html)
        return None
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display

        if get_ipython() is not None:
            display(HTML(html))
            return None
    except ImportError:
        pass
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".html", prefix="lakelabel-", delete=False, encoding="utf-8") as f:
        f.write(html)
    print(f"open {f.name} in a browser to see the plots")
    return f.name


def _options(p: Any) -> None:
    p.add_argument("--out", metavar="PATH", help="HTML file to write (default: the run folder's report.html)")
    add_task_option(p, every=True)


COMMAND = command.Command(
    logs_to_mlflow=True,
    name="report", help="a self-contained HTML report of the analysis, with plots "
                        "(--run-id: the run whose labels to report; default the latest labels)",
    add_arguments=_options, new_run_id=False,
    precheck=lambda args, cfg: check_options(cfg, args.out, args.task), reads_source=True, reads_evaluation=True,
    run=lambda args, cfg, run_id, spark: run(spark, cfg, run_id=run_id, out=args.out, task=args.task),
    done=lambda s: analyze_job.done_line(s, "report"),
)


def main(argv: Sequence[str] | None = None) -> int:
    return command.main(COMMAND, argv)


if __name__ == "__main__":
    raise SystemExit(main())
