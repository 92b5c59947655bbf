"""The benchmark runs on a tiny setting and reports every figure, positive."""

import json
import math
import os
import shutil
import subprocess

import pytest

import cwgan
from conftest import TEST_DATA, class_norm_embeddings, cpu_only_env, cpu_only_module
from cwgan.benchmarks import data as bench_data
from cwgan.benchmarks.speed import (build_bench_model, canonical_op_type,
                                    measure_folder_pipeline, pipeline_lines)
from cwgan.data.folder import list_files


def test_bench_smoke_prints_all_keys_with_positive_numbers(tmp_path):
    out = tmp_path / "bench.json"
    # On the CPU on every machine: on a GPU the profiler's host events time kernel
    # launches, not kernels, so which op types lead the profile would depend on the machine.
    proc = subprocess.run(
        cpu_only_module("cwgan.bench", "--width=4", "--batch_size=4", "--n_critic=2",
                        "--iterations=2", "--repeats=1", "--batch_sizes=4,8",
                        f"--data_dir={TEST_DATA}", "--large_size=600", "--matmul_n=64",
                        # The input pipeline: test_folder_pipeline_reports_overhead_...
                        "--nopipeline", f"--json_out={out}"),
        env=cpu_only_env(), cwd=str(tmp_path), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    for key in ("fast_path", "textbook_loop", "speedup_fast_vs_textbook", "xla",
                "in_graph_sampling", "input_pipeline", "flops", "dataset_scaling",
                "batch_scaling", "peak_rss_mib", "profile_top_ops_xla_off",
                "warmup_schedule", "critic_layers", "generator_output",
                "generator_conditioning"):
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
    for mode in ("off", "on"):  # the critic's own layers against the stock ones, timed
        assert result["critic_layers"][mode]["speedup_vs_stock"] > 0, mode
        # and the recipe's generator output against the last transposed convolution
        assert result["generator_output"][mode]["cost_vs_upsample"] > 0, mode
        # and class-conditional batch norm against the label at the input only
        assert result["generator_conditioning"][mode]["cost_norm_vs_input"] > 0, mode
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
    assert "the critic's own layers vs stock layers" in proc.stdout
    assert (f"generator output ({cwgan.TrainConfig().generator_output}) vs the last "
            "transposed convolution") in proc.stdout
    assert "folder_pipeline" not in result and "input pipeline on" not in proc.stdout
    assert result["config"]["generator_output"] == cwgan.TrainConfig().generator_output
    assert ("class-conditional batch norm in the generator (colour images' recipe) vs the "
            "label at the input only") in proc.stdout


def test_the_bench_times_the_recipes_networks():
    import keras

    recipe = cwgan.TrainConfig()
    model = build_bench_model(width=4, n_critic=1, jit_compile=False)
    image = model.generator.get_layer("image")
    assert isinstance(image, keras.layers.Conv2DTranspose) == (
        recipe.generator_output == "upsample")
    has_batch_norm = any(isinstance(layer, keras.layers.BatchNormalization)
                         for layer in model.critic.layers)
    assert has_batch_norm == (recipe.critic_norm == "batch")
    # The baseline the recipe's generator output is timed against: DCGAN's.
    upsample = build_bench_model(width=4, n_critic=1, jit_compile=False,
                                 generator_output="upsample")
    assert isinstance(upsample.generator.get_layer("image"), keras.layers.Conv2DTranspose)
    # MNIST's grey images: the label at the input only; class-conditional batch norm (the
    # colour images' recipe) is timed against it.
    assert class_norm_embeddings(model.generator) == 0
    norm = build_bench_model(width=4, n_critic=1, jit_compile=False,
                             generator_conditioning="norm")
    assert class_norm_embeddings(norm.generator) > 0
    build_bench_model(width=4, n_critic=1, jit_compile=False, architecture="mlp")


def _subset(folder, root, per_class):
    """A folder holding the first `per_class` files of each class folder of `folder`."""
    for name in sorted(os.listdir(folder)):
        os.makedirs(root / name)
        for f in sorted(os.listdir(os.path.join(folder, name)))[:per_class]:
            shutil.copy(os.path.join(folder, name, f), root / name / f)
    return root


def test_folder_pipeline_reports_overhead_speed_and_memory(colour_folder, tmp_path):
    small = _subset(colour_folder, tmp_path / "small", 8)
    result = measure_folder_pipeline([small, colour_folder], batch_size=4, n_critic=2,
                                     width=4, jit_compile=False, iterations=2, repeats=1)
    images = len(list_files(colour_folder)[1])  # the training split
    assert result["images"] == images and result["image_shape"] == [32, 32, 3]
    assert result["xla"] == "off"
    for fed in ("in_memory", "from_disk"):
        assert result[fed]["seconds_per_iteration"] > 0 and result[fed]["compile_seconds"] > 0
    assert math.isfinite(result["overhead_fraction"]) and result["overhead_fraction"] > -1
    alone = result["stream_alone"]
    assert alone["steps_per_s"] > 0 and alone["headroom"] > 0
    assert alone["images_per_s"] == pytest.approx(8 * alone["steps_per_s"])
    memory = result["peak_memory"]
    assert memory["steps"] == images // 8 + 2  # one pass over the largest, into the next
    sizes = {str(len(list_files(small)[1])), str(images)}
    for mode, in_memory in (("streamed", False), ("in_memory", True)):
        assert set(memory[mode]["by_images"]) == sizes
        for probe in memory[mode]["by_images"].values():
            assert probe["in_memory"] is in_memory and probe["baseline_mib"] > 0
            assert probe["rise_mib"] >= probe["rise_mib_load"] >= 0 and probe["rise_mib"] > 0
            assert probe["peak_mib"] == pytest.approx(probe["baseline_mib"]
                                                      + probe["rise_mib"])
        assert memory[mode]["peak_ratio_largest_vs_smallest"] > 0
        assert math.isfinite(memory[mode]["difference_mib"])
        assert math.isfinite(memory[mode]["bytes_per_extra_image"])
    lines = pipeline_lines(result | {"source": "colour_folder", "xla_from": "given"})
    assert "overhead" in lines[1] and "steps/s" in lines[2] and "MiB" in lines[3]


def test_bench_folders_are_written_once(tmp_path, monkeypatch):
    monkeypatch.setenv("CWGAN_CACHE_DIR", str(tmp_path))
    root, seconds = bench_data.bench_folder(30, "coloured_digits")
    assert root == str(tmp_path / "bench" / "coloured_digits_30") and seconds > 0
    assert sorted(os.listdir(root)) == ["test", "train"]
    class_names, paths, _ = list_files(root, "train")
    assert class_names == tuple(str(d) for d in range(10)) and len(paths) == 30
    assert len(list_files(root, "test")[1]) == 10
    assert not os.path.exists(root + ".tmp")
    assert bench_data.bench_folder(30, "coloured_digits") == (root, 0.0)  # cached


@pytest.mark.parametrize("args, message", [
    (["--pipeline_sizes=x"], "--pipeline_sizes"),
    (["--pipeline_sizes=100,5", "--batch_size=2", "--n_critic=5"], ">= 10"),
    (["--pipeline_only", "--nopipeline"], "nothing to measure"),
    (["--pipeline_source=fashion_mnist", "--pipeline_sizes=70000"], "coloured_digits"),
])
def test_bad_pipeline_flags_are_usage_errors(args, message):
    proc = subprocess.run(cpu_only_module("cwgan.bench", *args), env=cpu_only_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


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
