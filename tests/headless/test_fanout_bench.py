"""The fan-out benchmark (python -m comfyui_nst.nodes.headless.bench): a tiny real sweep timed three ways
with its report's structure, and its byte comparison catching images that differ."""
import json
import pathlib
import sys
import textwrap

import pytest

from comfyui_nst.nodes.headless import bench

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workflows" / "nst_style_transfer.json"
# 2 runs of a 32 px, 2-step style transfer: seconds, mostly start-up
TINY = ["Style image.max_size=32", "Content image.max_size=32", "Style transfer.steps=2",
        "Style transfer.init=noise"]


@pytest.mark.slow
def test_bench_times_three_ways_and_the_workers_match(tmp_path, capsys):
    code = bench.main([str(TEMPLATE), "--sweep", "Style transfer.seed=0,1", *sum((["--set", s] for s in TINY), []),
                       "--keep", str(tmp_path / "kept"), "--json"])
    out = capsys.readouterr().out
    report = json.loads(out)
    assert code == 0 and report["ok"] is True
    assert report["runs"] == 2 and report["workers"] == 2
    assert [m["name"] for m in report["modes"]] == ["serial-1-thread", "serial-2-threads", "workers-2"]
    reference, threads, workers = report["modes"]
    assert all(m["exit_code"] == 0 and m["seconds"] > 0 and m["images"] == 2 for m in report["modes"])
    assert reference["identical"] is None and reference["speedup"] == pytest.approx(1.0)
    assert workers["identical"] is True and workers["differing"] == []
    assert workers["speedup"] == pytest.approx(reference["seconds"] / workers["seconds"])
    assert report["workers_over_threads"] == pytest.approx(threads["seconds"] / workers["seconds"])
    kept = sorted(p.relative_to(tmp_path / "kept").as_posix() for p in (tmp_path / "kept").rglob("*.png"))
    assert len(kept) == 6 and kept[0].startswith("serial-1-thread/run_0001/")
    # the table says the same
    text = bench.BenchReport(report["workflow"], report["sweeps"], report["runs"], report["workers"],
                             [bench.ModeTiming(**m) for m in report["modes"]], report["workers_over_threads"]).table()
    assert "(reference)" in text and "yes [2 images]" in text and "--workers 2 over 2-thread serial" in text


FAKE_RUNNER = textwrap.dedent("""
    # stands for nst-run: writes run_0001/out.png whose bytes depend on --workers (a broken fan-out)
    import pathlib, sys
    argv = sys.argv[1:]
    out = pathlib.Path(argv[argv.index("--output-dir") + 1]) / "run_0001"
    out.mkdir(parents=True)
    (out / "out.png").write_bytes(b"workers" if "--workers" in argv else b"serial")
    (out.parent / "manifest.json").write_text('{"runs": [{}]}')
""")


def test_bench_reports_images_that_differ(tmp_path):
    runner = tmp_path / "fake_nst_run.py"
    runner.write_text(FAKE_RUNNER)
    report = bench.run_bench("wf.json", ["A.x=1"], runner=[sys.executable, str(runner)])
    threads, workers = report.modes[1], report.modes[2]
    assert threads.identical is True and workers.identical is False
    assert workers.differing == ["run_0001/out.png"] and not report.ok
    assert "NO (1 differ)" in report.table()


def test_bench_usage_errors(capsys):
    assert bench.main([str(TEMPLATE)]) == 2                                   # no sweep
    assert bench.main([str(TEMPLATE), "--sweep", "A.x=1", "--workers", "1"]) == 2
    assert "--sweep" in capsys.readouterr().err
