"""The memory report: its stages, JSON, text, plot, progress bar, and its command line."""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_report(*args):
    return subprocess.run([sys.executable, "-m", "gpuinit", "report", *args], capture_output=True,
                          text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""})


def test_report_json_schema_and_stages():
    out = run_report("--model", "lenet", "--device", "cpu", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["model"] == "lenet" and report["device"] == "cpu" and report["dtype"] == "float32"
    assert [s["name"] for s in report["stages"]] == ["start", "built", "initialized", "materialized", "steady"]
    for s in report["stages"]:
        assert {"name", "seconds", "store_bytes", "rss_bytes", "device_used_bytes"} <= s.keys()
    stages = {s["name"]: s for s in report["stages"]}
    assert stages["initialized"]["store_bytes"] == 0
    assert stages["materialized"]["store_bytes"] == report["plan"]["total_bytes"]
    assert report["materialization"]["planned_bytes_equal_allocated"]
    assert {"name", "shape", "dtype", "bytes"} <= report["plan"]["parameters"][0].keys()
    assert stages["materialized"]["device_used_bytes"] is None  # CPU: NVML not read


def test_report_exits_3_without_allocating_when_the_model_does_not_fit():
    out = run_report("--model", "llama2-70b", "--device", "cpu")
    assert out.returncode == 3, out.stderr
    assert "DOES NOT FIT" in out.stdout and "missing" in out.stdout
    assert "materialized" not in [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def test_report_text_says_what_is_unavailable():
    out = run_report("--model", "mlp", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    assert "NVML: unavailable" in out.stdout and "CuPy pool: unavailable" in out.stdout
    assert "planned bytes == allocated bytes: True" in out.stdout


def test_report_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = run_report("--model", "mlp", "--device", "cpu", "--plot", str(tmp_path / "m.png"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "m.png").stat().st_size > 1000


def test_report_draws_a_progress_bar_on_a_terminal():
    """Materializing GPT-2 medium takes over a second on one core: stderr, a terminal, gets a bar."""
    import os
    import pty
    import threading

    leader, follower = pty.openpty()
    chunks = []

    def drain():  # keep the terminal's buffer from filling while the report runs
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        out = subprocess.run([sys.executable, "-m", "gpuinit", "report", "--model", "gpt2-medium", "--device", "cpu",
                              "--json"],
                             stdout=subprocess.PIPE, stderr=follower, cwd=ROOT, text=True, timeout=120,
                             env={"PYTHONPATH": str(ROOT), "PATH": "", "GPUINIT_NUM_THREADS": "1"})
    finally:
        os.close(follower)
        reader.join(timeout=5)
        os.close(leader)
    assert out.returncode == 0
    assert "materializing [" in b"".join(chunks).decode(errors="replace")
    json.loads(out.stdout)  # the bar never mixes into stdout


def test_default_text_fits_a_screen_and_verbose_lists_everything():
    """GPT-2 small has 148 parameters: the default report gives the stages and a summary, the
    full tables only with --verbose."""
    short = run_report("--model", "gpt2-small", "--device", "cpu", "--plan-only")
    assert short.returncode == 0, short.stderr
    lines = short.stdout.splitlines()
    assert len(lines) <= 30, short.stdout
    assert "largest layers" in short.stdout and "wte" in short.stdout and "fits: yes" in short.stdout
    full = run_report("--model", "gpt2-small", "--device", "cpu", "--plan-only", "--verbose")
    assert full.returncode == 0 and "h.11.mlp_proj.weight" in full.stdout and len(full.stdout.splitlines()) > 200


BAD_OPTIONS = [
    (["--batch-size", "0"], "--batch-size"), (["--batch-size", "-1"], "--batch-size"),
    (["--batch-size", "two"], "--batch-size"), (["--input-shape=-1,64"], "--input-shape"),
    (["--input-shape", "2,0"], "--input-shape"), (["--input-shape", "2,x"], "--input-shape"),
    (["--input-shape", ""], "--input-shape"), (["--seed", "-3"], "--seed"), (["--seed", "1.5"], "--seed"),
    (["--model", "gpt5"], "--model"), (["--dtype", "int8"], "--dtype"), (["--device", "tpu"], "'tpu'"),
    (["--device", "cuda:x"], "'cuda:x'"), (["--plot", "/no/such/folder/m.png"], "--plot"),
    (["--model", "lenet", "--device", "cpu", "--input-shape", "1,2,3"], "(1, 2, 3)"),
    (["--frobnicate"], "--frobnicate"),
]


@pytest.mark.parametrize("args,culprit", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_a_bad_option_exits_2_with_one_line_naming_it(args, culprit):
    out = run_report("--model", "mlp", "--device", "cpu", *args) if "--model" not in args else run_report(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert culprit in lines[0] and lines[0].startswith("gpuinit-report: error:"), lines[0]
    assert out.stdout == ""


def test_the_batch_size_replaces_the_first_size():
    out = run_report("--model", "mlp", "--device", "cpu", "--batch-size", "7", "--json", "--plan-only")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["plan"]["output_shape"] == [7, 10]
