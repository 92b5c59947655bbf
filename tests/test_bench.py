"""The benchmark runs on a tiny setting and reports every figure, positive."""

import json
import subprocess

import pytest

from conftest import TEST_DATA, cpu_only_env, cpu_only_module
from cwgan.bench_lib import canonical_op_type


def test_bench_smoke_prints_all_keys_with_positive_numbers(tmp_path):
    out = tmp_path / "bench.json"
    # On the CPU on every machine: on a GPU the profiler's host events time kernel
    # launches, not kernels, so which op types lead the profile would depend on the machine.
    proc = subprocess.run(
        cpu_only_module("cwgan.bench", "--width=4", "--batch_size=4", "--n_critic=2",
                        "--iterations=2", "--repeats=1", "--batch_sizes=4,8",
                        f"--data_dir={TEST_DATA}", "--large_size=600", "--matmul_n=64",
                        f"--json_out={out}"),
        env=cpu_only_env(), cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
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
    auto = result["xla"]["auto"]  # what --jit_compile=auto chooses for these networks
    assert auto["chose"] in ("on", "off") and auto["measured"] in ("now", "cached")
    assert auto["seconds_xla_on"] > 0 and auto["seconds_xla_off"] > 0
    assert result["dataset_scaling"]["large_images"] == 600
    assert set(result["batch_scaling"]) == {"4", "8"}
    shares = result["profile_top_ops_xla_off"]
    assert shares and all(0 < v <= 1 for v in shares.values()) and sum(shares.values()) <= 1
    # The critic's weight gradients are profiled, under TensorFlow's canonical op type
    # whatever kernel ran them (oneDNN's _MklNativeConv2DBackpropFilter... or not).
    assert "Conv2DBackpropFilter" in shares
    assert all(canonical_op_type(op) == op for op in shares), shares
    assert "fast vs textbook" in proc.stdout and "--jit_compile=auto chose" in proc.stdout


@pytest.mark.parametrize("recorded, canonical", [
    # oneDNN's kernels (Intel/AMD x86 CPUs, TF_ENABLE_ONEDNN_OPTS=1)
    ("_MklNativeConv2DBackpropFilter", "Conv2DBackpropFilter"),
    ("_MklNativeConv2DBackpropFilterWithBias", "Conv2DBackpropFilter"),
    ("_MklConv2DBackpropFilter", "Conv2DBackpropFilter"),
    ("_MklConv2DBackpropFilterWithBias", "Conv2DBackpropFilter"),
    ("_MklNativeConv2DBackpropInput", "Conv2DBackpropInput"),
    ("_MklFusedConv2D", "Conv2D"),
    ("_MklNativeFusedConv2D", "Conv2D"),
    ("_MklNativeConv2DWithBias", "Conv2D"),
    ("_MklNativePadWithFusedConv2D", "Conv2D"),
    ("_MklMatMul", "MatMul"),
    ("_MklFusedMatMul", "MatMul"),
    ("_MklNativeFusedMatMul", "MatMul"),
    ("_MklFusedBatchMatMulV2", "BatchMatMulV2"),
    ("_MklNativeFusedBatchNormV3", "FusedBatchNormV3"),  # "Fused" is part of the op's name
    ("_MklNativeFusedBatchNormGradV3", "FusedBatchNormGradV3"),
    ("_MklNativeFusedBatchNormEx", "FusedBatchNormV3"),
    ("_MklLeakyRelu", "LeakyRelu"),
    ("_MklSwish", "Swish"),
    # TensorFlow's own fusions (CPU without oneDNN, GPU)
    ("_FusedConv2D", "Conv2D"),
    ("_FusedMatMul", "MatMul"),
    ("_FusedBatchNormEx", "FusedBatchNormV3"),
    # already canonical
    ("Conv2DBackpropFilter", "Conv2DBackpropFilter"),
    ("FusedBatchNormV3", "FusedBatchNormV3"),
    ("MatMul", "MatMul"),
    ("_Mkl", "_Mkl"),
])
def test_op_types_are_reported_under_tensorflows_canonical_names(recorded, canonical):
    assert canonical_op_type(recorded) == canonical
    assert canonical_op_type(canonical) == canonical
