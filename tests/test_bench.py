"""The benchmark runs on a tiny setting and reports every figure, positive."""

import json
import subprocess

from conftest import PYTHON, TEST_DATA, subprocess_env


def test_bench_smoke_prints_all_keys_with_positive_numbers(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [PYTHON, "-m", "cwgan.bench", "--width=4", "--batch_size=4", "--n_critic=2",
         "--iterations=2", "--repeats=1", "--batch_sizes=4,8", f"--data_dir={TEST_DATA}",
         "--large_size=600", "--matmul_n=64", f"--json_out={out}"],
        env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    for key in ("fast_path", "textbook_loop", "speedup_fast_vs_textbook", "xla",
                "in_graph_sampling", "input_pipeline", "flops", "dataset_scaling",
                "batch_scaling", "peak_rss_mib", "profile_top_ops_xla_off",
                "warmup_schedule"):
        assert key in result, key
    for path in (("fast_path", "generator_iterations_per_s"),
                 ("fast_path", "critic_images_per_s"), ("fast_path", "compile_seconds"),
                 ("textbook_loop", "generator_iterations_per_s"),
                 ("xla", "speedup_on_vs_off"), ("in_graph_sampling", "speedup_vs_tf_data"),
                 ("flops", "achieved_gflops"),
                 ("flops", "matmul_peak_gflops"), ("flops", "utilisation"),
                 ("dataset_scaling", "ratio_large_vs_small"),
                 ("warmup_schedule", "slowdown_xla_on"), ("warmup_schedule", "slowdown_xla_off")):
        assert result[path[0]][path[1]] > 0, path
    assert result["dataset_scaling"]["large_images"] == 600
    assert set(result["batch_scaling"]) == {"4", "8"}
    shares = result["profile_top_ops_xla_off"]
    assert shares and all(0 < v <= 1 for v in shares.values()) and sum(shares.values()) <= 1
    assert "Conv2DBackpropFilter" in shares  # the critic's weight gradients are profiled
    assert "fast vs textbook" in proc.stdout
