"""``lakelabel report``: the HTML page parsed, opened in real headless Chromium, and the CLI's bad inputs."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml

from jobs import cli, report
from lf_library.errors import ConfigError

pytestmark = pytest.mark.spark

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PLOTS = {"lf_coverage_accuracy", "conflict_heatmap", "confusion_matrices", "class_distributions",
         "confidence_histogram", "slice_accuracy"}


class _Page(HTMLParser):
    """Every tag with its attributes, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def written(analyzed_run):
    """The report the pipeline wrote at the end of the run (report.enabled)."""
    cfg, ran, _, doc = analyzed_run
    path = Path(ran["report"])
    return cfg, ran, doc, path, path.read_text(encoding="utf-8")


def test_pipeline_writes_the_report_and_logs_it(written):
    from mlflow import MlflowClient

    cfg, ran, doc, path, _ = written
    assert path == cfg.lakehouse_path / "_lakelabel" / "runs" / "an-1" / "report.html"
    assert Path(ran["analysis"]).exists() and ran["timings_seconds"]["report"] > 0
    client = MlflowClient(tracking_uri=ran["mlflow"]["tracking_uri"])
    logged = [f.path for f in client.list_artifacts(ran["mlflow"]["run_id"], "analysis")]
    assert {"analysis/analysis.json", "analysis/report.html"} <= set(logged)
    stored = client.get_run(ran["mlflow"]["run_id"]).data.tags["lakelabel.run_id"]
    assert stored == "an-1"


def test_page_is_self_contained_with_every_plot(written):
    _, _, doc, _, html = written
    page = parse(html)
    figures = [a for t, a in page.tags if t == "figure"]
    assert {f["id"] for f in figures} == PLOTS
    images = [a["src"] for t, a in page.tags if t == "img"]
    assert len(images) == len(PLOTS)
    for src in images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    # Nothing is fetched: no script, stylesheet link, iframe, or any URL but data: images.
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe", "object", "embed")]
    urls = [v for _, a in page.tags for k, v in a.items() if k in ("src", "href", "action", "srcset")]
    assert all(u.startswith("data:") or u.startswith("#") for u in urls), urls
    assert "http://" not in html and "https://" not in html and "url(" not in html
    text = " ".join(page.text)
    for lf in doc["lfs"]:  # the LF table has every LF, the buckets every example id
        assert lf["name"] in text and lf["version"] in text
    for bucket in doc["buckets"]:
        assert bucket["title"] in text
        assert all(str(e["id"]) in text for e in bucket["examples"])
        # Each example's probabilities, as the README lists them (a drill: the page showed only the confidence).
        for e in (e for e in bucket["examples"] if e["probabilities"]):
            assert ", ".join(f"{c} {p:.2f}" for c, p in e["probabilities"].items()) in text, e
    assert any(e["probabilities"] for b in doc["buckets"] for e in b["examples"])
    worst = min((lf for lf in doc["lfs"] if lf["gold_accuracy"] is not None), key=lambda lf: lf["gold_accuracy"])
    assert f"{worst['name']} is right on {worst['gold_accuracy']:.1%}" in text  # the first finding
    # The keyword LFs' terms: a table per LF, every listed term with its counts, and the finding on the worst term.
    assert "Terms of the keyword and lexicon LFs" in text and len(doc["terms"]["lfs"]) == 2
    for entry in doc["terms"]["lfs"]:
        assert entry["lf"] in text and all(t["term"] in text for t in entry["top"])
    worst_term = min((t for e in doc["terms"]["lfs"] for t in e["top"] if t["gold_rows"] >= 5),
                     key=lambda t: (t["gold_precision"], -t["gold_rows"]))
    assert f"The least precise listed term: '{worst_term['term']}'" in text


def _render(tmp_path: Path, html_file: Path, name: str) -> tuple[np.ndarray, str]:
    """Open ``html_file`` in headless Chromium; return the screenshot's pixels and Chromium's log."""
    from PIL import Image

    shot = tmp_path / f"{name}.png"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / name}",
         "--hide-scrollbars", "--window-size=1280,4000", "--enable-logging=stderr", "--v=0",
         f"--screenshot={shot}", html_file.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    return np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16), proc.stderr


def _console(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line]


def _colored(pixels: np.ndarray) -> float:
    """Share of clearly colored pixels (the plots; the page itself is black, grey and white)."""
    spread = pixels.max(axis=2) - pixels.min(axis=2)
    return float((spread > 60).mean())


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")
def test_chromium_renders_the_page(written, tmp_path):
    _, _, _, path, html = written
    pixels, log = _render(tmp_path, path, "report")
    assert _console(log) == []
    assert pixels.shape[:2] == (4000, 1280)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500  # text, tables and plots, not a blank page
    assert _colored(pixels) > 0.03
    # Negative controls: the same page without its images renders far less color, and a page with
    # a console error is caught by the same scan.
    bare = tmp_path / "bare.html"
    bare.write_text("".join(part.split('"', 1)[1] if i else part
                            for i, part in enumerate(html.split('src="data:image/png;base64,'))), encoding="utf-8")
    bare_pixels, bare_log = _render(tmp_path, bare, "bare")
    assert _colored(bare_pixels) < 0.01 and _console(bare_log) == []
    broken = tmp_path / "broken.html"
    broken.write_text(html.replace("</body>", "<script>console.error('deliberate')</script></body>"))
    _, broken_log = _render(tmp_path, broken, "broken")
    assert any("deliberate" in line for line in _console(broken_log))


def _config_file(cfg, tmp_path: Path) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return str(path)


def test_cli_bad_inputs_exit_2_with_one_line(written, tmp_path, capsys):
    cfg = written[0]
    config = _config_file(cfg, tmp_path)
    with pytest.raises(ConfigError, match=r"--out .* is a folder; pass a file path such as .*report.html"):
        report.check_out_path(str(tmp_path))
    # A missing folder written with its trailing slash is a folder too (a drill: the page became a file "newdir").
    with pytest.raises(ConfigError, match=r"^--out .*newdir/ is a folder; pass a file path such as .*newdir/report.html$"):
        report.check_out_path(str(tmp_path / "newdir") + "/")
    assert not (tmp_path / "newdir").exists()
    (tmp_path / "a_file").write_text("")
    cases = [
        (["report", "--config", config, "--out", str(tmp_path)], r"--out .* is a folder; pass a file path"),
        (["report", "--config", config, "--out", str(tmp_path / "a_file" / "r.html")],
         r"a_file is a file, not a folder"),
        (["analyze", "--config", config, "--run-id", "never-ran"], r"run 'never-ran' is not a run under"),
        (["report", "--config", config, "--set", "slices.modules=[tests.jobs.bad_slices]"],
         r"slicing function 'says_yes' returned 'yes' \(str\)"),
        (["analyze", "--config", config, "--set", "slices.modules=[tests.jobs.broken_slices]"],
         r"slice module 'tests.jobs.broken_slices' \(slices.modules\) failed to import"),
    ]
    import re

    for argv, pattern in cases:
        assert cli.main([*argv, "-q"]) == 2, argv  # -q: no progress lines, only the error
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(pattern, err[0]), (argv, err)
        assert err[0].startswith("lakelabel: error: ")


def test_cli_report_to_out(written, tmp_path, capsys, monkeypatch):
    cfg = written[0]
    out = tmp_path / "new" / "folder" / "mine.html"  # missing folders are made, as mkdir -p
    config = _config_file(cfg, tmp_path)
    monkeypatch.chdir(tmp_path)  # a relative --out: the line and the summary say the absolute path, as for analysis
    assert cli.main(["report", "--config", config, "--out", "new/folder/mine.html",
                     "--summary-json", str(tmp_path / "s.json")]) == 0
    assert f"lakelabel report: run an-1: {out}" in capsys.readouterr().out
    assert parse(out.read_text()).tags and yaml.safe_load((tmp_path / "s.json").read_text())["report"] == str(out)


def test_report_draws_a_current_analysis_and_recomputes_a_stale_one(written, analyzed_run, tmp_path, capsys):
    """``analyze`` then ``report`` analyzes once; another ``analysis`` setting makes report analyze again."""
    import json

    cfg, _, doc, _, _ = written
    assert analyzed_run[2]["analysis_reused"] is False  # lakelabel analyze always computes
    config = _config_file(cfg, tmp_path)
    stored = cfg.lakehouse_path / "_lakelabel" / "runs" / "an-1" / "analysis.json"
    before = stored.read_bytes()
    assert json.loads(before)["inputs_key"] == doc["inputs_key"]
    try:
        out, summary = tmp_path / "r.html", tmp_path / "s.json"
        capsys.readouterr()
        assert cli.main(["report", "--config", config, "--out", str(out), "--summary-json", str(summary)]) == 0
        err = capsys.readouterr().err
        s = json.loads(summary.read_text())
        assert s["analysis_reused"] is True and stored.read_bytes() == before
        # the line says the analysis was reused, not the time it took when computed as if it ran again
        assert re.search(rf"slices -> {re.escape(str(stored))} \(reused in \d+\.\ds; computed in "
                         rf"{json.loads(before)['seconds']:.1f}s\)", err), err
        assert s["mlflow"]["run_id"] and s["report"] == str(out)
        text = "".join(parse(out.read_text()).text)
        assert report.findings(doc)[0].split(" (")[0] in text

        assert cli.main(["report", "--config", config, "--out", str(out), "--summary-json", str(summary), "-q",
                         "--set", "analysis.examples=1"]) == 0
        assert json.loads(summary.read_text())["analysis_reused"] is False
        fresh = json.loads(stored.read_text())
        assert fresh["inputs_key"] != doc["inputs_key"]
        assert all(len(b["examples"]) <= 1 for b in fresh["buckets"]) and any(
            len(b["examples"]) > 1 for b in doc["buckets"])
    finally:
        stored.write_bytes(before)


def test_lowest_confidence_header_says_what_it_counts_and_what_it_shows(written):
    """The bucket counts covered rows below 0.5 but lists the lowest covered rows, below 0.5 or not:
    the page says both, so a header of 0 rows over rows at 54% does not read as a contradiction."""
    _, _, doc, _, html = written
    bucket = next(b for b in doc["buckets"] if b["name"] == "low_confidence")
    shown, below = len(bucket["examples"]), sum(e["confidence"] < 0.5 for e in bucket["examples"])
    assert shown and below < shown  # this run lists rows at 0.5 or above (a two-class run: confidence >= 0.5)
    assert bucket["counted"] == "confidence below 0.5"
    assert bucket["examples_note"] == f"the {shown} covered row(s) of lowest confidence, {below} of them with " \
                                      f"confidence below 0.5"
    text = " ".join("".join(parse(html).text).split())
    assert f"Lowest confidence: {bucket['rows']:,} rows with confidence below 0.5" in text
    assert f"shown: the {shown} covered row(s) of lowest confidence, {below} of them with confidence below 0.5" in text


def test_class_distribution_scales_gold_that_covers_some_rows(written):
    """The gold bars were raw counts on the axis of every labeled row: 117 gold-table test rows next to 5,533
    labels drew every gold bar near zero, so each class looked over-predicted. Gold of only some rows (and
    the evaluation source's, when the run has none) is scaled to all rows by its class shares."""
    import copy

    from jobs.analysis import plots

    _, _, doc, _, _ = written
    rows = doc["totals"]["rows"]
    k = len(doc["label_space"])

    def gold_bars(d):
        fig = plots.class_distributions(d)
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        bars = [b.get_height() for b in ax.containers[-1]] if labels[-1].startswith("gold") else None
        plots.plt.close(fig)
        return labels[-1], bars

    part = copy.deepcopy(doc)
    part["gold_column"], part["gold_table_test_rows"] = None, 6
    for j, c in enumerate(part["classes"]):
        c["gold"] = j + 1 if j < 2 else 0
    part["totals"]["gold_rows"] = 3 if k >= 2 else 1
    label, bars = gold_bars(part)
    assert "scaled to" in label and sum(bars) == pytest.approx(rows)
    assert bars[0] == pytest.approx(rows / 3) and bars[1] == pytest.approx(2 * rows / 3)

    held = copy.deepcopy(part)
    held["gold_table_test_rows"] = 0
    held["evaluation"] = {"rows": 40, "per_class": [{"class": c, "support": 40 // k} for c in doc["label_space"]]}
    label, bars = gold_bars(held)
    assert label.startswith("gold of the evaluation source") and bars[0] == pytest.approx(rows / k)

    full = copy.deepcopy(part)
    full["classes"][0]["gold"], full["classes"][1]["gold"] = rows, 0
    label, bars = gold_bars(full)
    assert label == "gold" and bars[0] == rows


def test_conflict_heatmap_of_hundreds_of_lfs_stays_a_bounded_picture():
    """0.55 inch per LF without a bound: the heatmap of a run with 304 LFs was an 18,777-pixel square PNG, and
    drawing it took the report's driver to 13.6 GB (a drill at 300 LFs and 40 classes). It is at most
    HEATMAP_MAX_INCHES a side now, its tick labels shrunk to fit; a small run's is drawn as before."""
    import struct

    from jobs.analysis import plots

    def heatmap(m):
        names = [f"kw_lf_{i}" for i in range(m)]
        conflict = np.add.outer(np.arange(m), np.arange(m)) % 7
        doc = {"pairs": {"lfs": names, "conflict_matrix": conflict.tolist(),
                         "conflict_rate_matrix": (conflict / 10).tolist()}}
        [figure] = plots.render([plots.conflict_heatmap], doc)
        return struct.unpack(">II", figure["png"][16:24])  # the PNG's width and height

    assert max(heatmap(120)) <= 41.5 * 110  # 40 inches and its color bar at 110 dpi; unbounded: 68 inches
    assert heatmap(12) == (round((0.55 * 12 + 3.5) * 110), round((0.55 * 12 + 2) * 110))


def test_findings_name_the_surest_weak_lf_and_no_least_accurate_one_when_all_tie():
    """Two drills: every LF was right on all its gold rows and the page called the first "the least accurate LF";
    at 300 LFs it named one wrong on its 2 gold rows over one right on 4% of 2,445 (the near-random LF)."""
    def lf(name, votes, accuracy, ci95):
        return {"name": name, "gold_accuracy": accuracy, "gold_votes": votes, "gold_accuracy_ci95": ci95,
                "estimated_accuracy": 0.97, "weight": 2.4}

    lfs = [lf("link", 3, 1.0, [0.439, 1.0]), lf("shouting", 1, 1.0, [0.207, 1.0]), lf("short", 18, 1.0, [0.824, 1.0])]
    doc = {"label_space": ["ham", "spam"], "lfs": lfs,
           "totals": {"lm_accuracy": None, "coverage": 0.78}, "pairs": {"most_conflicting": []},
           "coverage_gaps": {"uncovered": 348}, "slices": []}
    first = report.findings(doc)[0]
    assert first.startswith("All 3 LFs with gold votes are right on 100.0% of the gold rows they voted on; "
                            "shouting has the least evidence, 1 gold row(s) (95% interval 20.7%–100.0%)"), first
    doc["lfs"][2]["gold_accuracy"] = 0.9
    assert report.findings(doc)[0].startswith("short is right on 90.0% of the 18 gold rows"), report.findings(doc)
    doc["lfs"] = [lf("kw_rare", 2, 0.0, [0.0, 0.658]), lf("vec_near_random", 2445, 0.041, [0.034, 0.05]),
                  lf("kw_good", 500, 0.9, [0.87, 0.92])]
    doc["label_space"] = [f"c{i}" for i in range(40)]
    assert report.findings(doc)[0].startswith("vec_near_random is right on 4.1% of the 2,445 gold rows it voted on "
                                              "(95% interval 3.4%–5.0%), the weakest LF (the lowest upper end of a "
                                              "95% interval)"), report.findings(doc)
    # Every LF wrong on all its gold rows (classes the wrong way round) ties too, but below a random guess: the
    # finding says to fix the surest one, as it does for one such LF.
    doc["label_space"] = ["ham", "spam"]
    doc["lfs"] = [lf("link", 3, 0.0, [0.0, 0.561]), lf("short", 18, 0.0, [0.0, 0.176])]
    assert report.findings(doc)[0].startswith("short is right on 0.0% of the 18 gold rows it voted on (95% interval "
                                              "0.0%–17.6%), below a random guess (50%): fix it or drop it"), \
        report.findings(doc)


def test_the_conflated_classes_finding_counts_half_rows_as_such():
    """Ties split evenly between the tied classes: 5.5 rows read "(6 rows)" (a drill)."""
    confusion = {"labels": ["ham", "spam"], "lm": [[20.0, 5.5], [1.0, 30.0]]}
    assert report.conflated(confusion, "") == [
        "The most conflated classes: the label model labels 21.6% of gold 'ham' rows as 'spam' (5.5 rows, ties split "
        "evenly)."]
    confusion["lm"][0] = [20.0, 6.0]
    assert report.conflated(confusion, "")[0].endswith("as 'spam' (6 rows).")
