"""The benchmarks run end to end on the CPU with tiny sizes (the numbers themselves are `make bench`'s)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ezclip import bench, bench_gpu
from helpers import TINY, TINY_CONFIG, randomize_trainables


@pytest.fixture(autouse=True)
def one_thread():
    # Many tiny ops: on a shared 2-core machine two threads spend more time in barriers than in work.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_bench_gpu_runs_its_ladder_and_table7_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "bench-gpu.json"
    argv = ["--backbone", TINY, "--frames", "4", "--device", "cpu", "--dtype", "float32", "--max-batch", "2"]
    assert bench_gpu.main([*argv, "--time-limit", "300", "--repeats", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [row["batch_size"] for row in result["ladder"]] == [1, 2]
    assert result["stopped"] == "batch sizes up to 2 done"
    for row in result["ladder"]:
        assert all(row[kind]["views_per_s"] > 0 and row[kind]["peak_mb"] is None for kind in bench_gpu.KINDS)
        assert row["ezclip_over_plain"] > 0
    assert result["largest_batch_that_fit"] == {"inference": 2, "train": 2}
    table7 = result["table7"]
    assert table7["gflops"] > 0 and table7["views_per_s"] > 0 and table7["batch_size"] == 2
    from ezclip.models import build_ezclip, count_parameters

    assert table7["trainable_params"] == count_parameters(build_ezclip(TINY, num_frames=4, device="meta"))["trainable"]
    assert table7["paper"]["views_per_s"] == 322.4
    assert "Table 7:" in capsys.readouterr().out


def test_bench_gpu_stops_a_kinds_ladder_when_memory_runs_out(tmp_path, monkeypatch):
    measure = bench_gpu.measure

    def out_of_memory_for_training_from_batch_2(step, batch_size, device, repeats):
        if batch_size >= 2 and step.__name__ == "train":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return measure(step, batch_size, device, repeats)

    monkeypatch.setattr(bench_gpu, "measure", out_of_memory_for_training_from_batch_2)
    result = bench_gpu.run_ladder(TINY, 4, "cpu", "float32", 4, 300, 1, tmp_path / "out.json")
    assert [row.get("train") for row in result["ladder"]][1:] == ["out of memory", None]  # tried once, then not
    assert isinstance(result["ladder"][0]["train"], dict) and "ezclip" in result["ladder"][2]
    assert result["largest_batch_that_fit"] == {"inference": 4, "train": 1}
    assert json.loads((tmp_path / "out.json").read_text())["largest_batch_that_fit"]["train"] == 1


def test_bench_times_the_kinds_in_turn_in_one_process(tmp_path):
    config = tmp_path / "tiny.json"  # the spawned process does not have the tests' registered name
    config.write_text(json.dumps(TINY_CONFIG))
    (row,) = bench.run_benchmark([str(config)], frames=4, repeats=1, num_texts=3, text_words=0, device="cpu",
                                 memory=False)  # fmt: skip
    assert row["plain_s"] > 0 and row["ezclip_ratio"] == row["ezclip_s"] / row["plain_s"] > 0
    assert row["train_ratio"] > row["ezclip_ratio"] and "train_peak_mb" not in row
    assert "| - / - / - |" in bench.format_table([row])


@pytest.mark.parametrize("train_ratio", [2.0, None])
def test_loader_benchmark_reads_the_raw_clip_and_its_prepared_copy(tmp_path_factory, train_ratio):
    clip = {"seconds": 1, "width": 320, "height": 240, "fps": 16}
    loader = bench.measure_loader(tmp_path_factory.mktemp("loader"), 1, frames=4, image_size=32, clip=clip)
    assert loader["raw_clips_per_s"] > 0 and loader["prepared_clips_per_s"] > 0
    assert (loader["raw_items"], loader["prepared_items"]) == (1, 4) and loader["prepared_mb"] < loader["raw_mb"]
    rows = [{"backbone": "ViT-B-16" if train_ratio else "ViT-B-32", "train_ratio": train_ratio, "train_s": 4.0}]
    loader.update(bench.feeding(loader, rows))
    assert loader["gpu_training_views_per_s"] == pytest.approx(322.4 / (train_ratio or 2.3))
    assert loader["prepared_workers_per_gpu"] == math.ceil(
        loader["gpu_training_views_per_s"] / loader["prepared_clips_per_s"]
    )
    text = bench.format_loader(loader)
    assert "prepared / raw:" in text and ("this run's" in text) == bool(train_ratio)


@pytest.mark.slow
def test_compiled_training_step_computes_the_eager_gradients(tmp_path, capsys):
    from ezclip.models import build_ezclip
    from ezclip.models.accounting import benchmark_steps

    gradients = []
    for torch_compile in (False, True):
        torch.manual_seed(0)
        # no dropout: compiled code draws its random numbers differently
        model = build_ezclip(TINY, num_frames=4, device="cpu", prompt_dropout=0.0, drop_path=0.0, attn_dropout=0.0)
        randomize_trainables(model)  # zero-initialised adapters would give their down projections no gradient
        benchmark_steps(model, 2, torch_compile=torch_compile)["train"]()
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad})
    assert gradients[0].keys() == gradients[1].keys()
    for name, eager in gradients[0].items():
        scale = eager.abs().max().item()
        assert scale > 0, f"{name} got no gradient"
        torch.testing.assert_close(gradients[1][name], eager, rtol=1e-3, atol=1e-4 * scale, msg=name)

    out = tmp_path / "bench-gpu.json"
    argv = ["--backbone", TINY, "--frames", "4", "--device", "cpu", "--dtype", "float32", "--batch-sizes", "2"]
    assert bench_gpu.main([*argv, "--compile", "--repeats", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["compiled"] and [row["batch_size"] for row in result["ladder"]] == [2]
    assert all(isinstance(result["ladder"][0][kind], dict) for kind in bench_gpu.KINDS)
    assert "torch.compile" in capsys.readouterr().out
