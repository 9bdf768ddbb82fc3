#!/usr/bin/env python3
"""report.py: reads bench-results/*.json (Google Benchmark output of the bench_* binaries) and writes
bench-results/summary.md (case, weft, baseline, ratio, target, met) and PNG charts when matplotlib is
importable. Standard library otherwise.

Which time: a single-threaded case by its CPU time, a 2-thread case by wall time, an MPI case by its
manual time (see Note [Which clock] in bench_common.h and Note [Lock step] in bench_mpi.cpp). With
--benchmark_repetitions, the fastest repetition is kept (noise on a shared machine only adds)."""
import datetime
import glob
import json
import os
import platform
import re
import subprocess
import sys

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def load(results_dir):
    """name (without /real_time, /manual_time) -> {"ns": chosen time per iteration, "counters": {...}}."""
    runs, contexts = {}, {}
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
        with open(path) as f:
            data = json.load(f)
        contexts[os.path.basename(path)[:-5]] = data.get("context", {})
        for b in data.get("benchmarks", []):
            if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
                continue
            name = b["name"]
            wall = "/manual_time" in name or "threads:2" in name
            ns = (b["real_time"] if wall else b["cpu_time"]) * UNIT_NS[b.get("time_unit", "ns")]
            key = re.sub(r"/(real_time|manual_time)$", "", re.sub(r"/iterations:\d+", "", name))
            counters = {k: v for k, v in b.items() if isinstance(v, (int, float)) and k not in
                        ("real_time", "cpu_time", "iterations", "repetitions", "repetition_index", "threads",
                         "family_index", "per_family_instance_index")}
            if key not in runs or ns < runs[key]["ns"]:
                runs[key] = {"ns": ns, "counters": counters, "binary": os.path.basename(path)[:-5],
                             "label": b.get("label", "")}
    return runs, contexts


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


class Table:
    def __init__(self):
        self.rows = []

    def add(self, area, case, weft, base, ratio, target="—", met=None):
        self.rows.append((area, case, weft, base, ratio, target, met))

    def markdown(self):
        out = ["| area | case | weft | baseline | ratio (weft / baseline) | target | met |",
               "|---|---|---|---|---|---|---|"]
        for area, case, weft, base, ratio, target, met in self.rows:
            ratio_s = ratio if not isinstance(ratio, float) else f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"
            met_s = "n/a" if met is None else ("yes" if met else "**no**")
            out.append(f"| {area} | {case} | {weft} | {base} | {ratio_s} | {target} | {met_s} |")
        return "\n".join(out)


# The peaks bench_peak measured in this run (Note [Which clock]: the best block of each).
PEAKS = {}


def peak_rows(runs, t):
    for threads in (1, 2):
        fma = runs.get(f"BM_peak_fma/threads:{threads}")
        if fma:
            PEAKS[("fma", threads)] = fma["counters"]["GFLOPs"]
            t.add("peak", f"FMA loop ({'AVX-512' if fma['counters'].get('avx512') else 'AVX2'}), {threads} thr (GFLOP/s)",
                  f"{fma['counters']['GFLOPs']:.0f}", "—", "—")
        for kind in ("copy", "add"):
            run = runs.get(f"BM_peak_stream/{kind}/threads:{threads}")
            if run:
                PEAKS[(kind, threads)] = run["counters"]["GBs"]
                t.add("peak", f"STREAM {kind}, 128 MiB arrays, pre-touched huge pages, {threads} thr (GB/s)",
                      f"{run['counters']['GBs']:.1f}", "—", "—")


def of_peak(value, kind, threads):
    """', 37% of FMA peak' when bench_peak ran, else ''."""
    peak = PEAKS.get((kind, threads))
    return f", {value / peak:.0%} of {kind.upper() if kind == 'fma' else 'STREAM ' + kind} peak" if peak else ""


def paired_row(t, area, label, run, base_name, target=None):
    """A row from a paired case's medians; target: the highest ratio (weft time / baseline time) that meets it."""
    c = run["counters"]
    w, b = c["weft_us"] * 1e3, c["baseline_us"] * 1e3
    t.add(area, label, fmt_time(w), f"{fmt_time(b)} ({base_name})", w / b,
          "—" if target is None else f"<= {target:.3g}x", None if target is None else w / b <= target)


def ops_rows(runs, t):
    for threads in (1, 2):
        for kind in ("matmul", "linear"):
            for n in (64, 256, 1024, 2048):
                run = runs.get(f"BM_{kind}/n:{n}/threads:{threads}")  # paired: Note [Paired timing]
                if run:
                    flops = 2.0 * n ** 3
                    w, b = run["counters"]["weft_us"] * 1e3, run["counters"]["baseline_us"] * 1e3
                    ratio = w / b  # >= 0.95 of oneDNN's throughput is <= 1/0.95 of its time
                    t.add("ops", f"{kind} {n}x{n}x{n}, {threads} thr (GFLOP/s{of_peak(flops / w, 'fma', threads)})",
                          f"{flops / w:.3g}", f"{flops / b:.3g} (oneDNN)", ratio, "<= 1.053x", ratio <= 1 / 0.95)
        run = runs.get(f"BM_add/n:{16 << 20}/threads:{threads}")
        if run:
            c = run["counters"]
            t.add("ops", f"add 16M floats, {threads} thr (GB/s{of_peak(c['GBs'], 'add', threads)})", f"{c['GBs']:.1f}",
                  f"{c['GBs_loop']:.1f} (loop, pre-touched)", c["weft_us"] / c["baseline_us"], "<= 1.25x",
                  c["weft_us"] / c["baseline_us"] <= 1.25)
        for kind, label in (("sum", "sum 16M floats"), ("mean_rows", "mean over rows [16384, 1024]")):
            run = runs.get(f"BM_reduce/{kind}/n:{16 << 20}/threads:{threads}")
            if run:
                gbs = run["counters"]["GBs"]
                paired_row(t, "ops", f"{label}, {threads} thr ({gbs:.1f} GB/s{of_peak(gbs, 'copy', threads)})", run, "loop")
        for kind in ("tanh", "exp"):
            run = runs.get(f"BM_transcendental/{kind}/n:{1 << 20}/threads:{threads}")
            if run:
                paired_row(t, "ops", f"{kind} 1M floats, {threads} thr", run, f"std::{kind} loop")
        for kind, label in (("softmax", "softmax [512, 1024]"), ("layer_norm", "layer_norm [512, 1024]"),
                            ("cross_entropy", "cross_entropy [512, 1000]")):
            run = runs.get(f"BM_{kind}/threads:{threads}")
            if run:
                paired_row(t, "ops", f"{label}, {threads} thr", run, "oneDNN", 1.0 if threads == 1 else None)
    # weft's own elementwise and reduction loops against oneDNN's primitives (paired), the measurement
    # behind running them on weft's loops. Target (issue 24): the activations on in-cache arrays at or
    # ahead of oneDNN.
    for run_name in sorted(k for k in runs if k.startswith("BM_vs_onednn/")):
        _, op, n, threads = run_name.split("/")
        n, threads = int(n.split(":")[1]), int(threads.split(":")[1])
        target = 1.0 if n == 16384 and threads == 1 and op in ("gelu", "tanh", "sigmoid") else None
        paired_row(t, "ops", f"{op} {n:,} floats, {threads} thr", runs[run_name], "oneDNN primitive", target)
    run = runs.get("BM_add/n:16/threads:1")
    if run:
        w, b = run["counters"]["weft_us"] * 1e3, run["counters"]["baseline_us"] * 1e3
        t.add("ops", "add 16 floats, no-grad (per call)", fmt_time(w), fmt_time(b) + " (loop)", w / b, "< 100 ns", w < 100)


def autograd_rows(runs, t):
    per_op = {k: runs[k]["ns"] / 200 for k in ("BM_chain_plain_loop", "BM_chain_fwd_nograd", "BM_chain_fwd_grad",
                                               "BM_chain_fwd_bwd") if k in runs}
    if "BM_chain_fwd_grad" in per_op and "BM_chain_fwd_nograd" in per_op:
        w, b = per_op["BM_chain_fwd_grad"], per_op["BM_chain_fwd_nograd"]
        t.add("autograd", "200-op chain forward: recording vs no-grad (ns/op)", f"{w:.0f}", f"{b:.0f} (no-grad)", w / b)
    if "BM_chain_fwd_bwd" in per_op and "BM_chain_plain_loop" in per_op:
        w, b = per_op["BM_chain_fwd_bwd"], per_op["BM_chain_plain_loop"]
        t.add("autograd", "200-op chain forward+backward (ns/op)", f"{w:.0f}", f"{b:.0f} (hand loop)", w / b,
              "< 600 ns/op", w < 600)


def allocator_rows(runs, t):
    for touch in (0, 1):
        for n in (64, 4096, 65536, 1 << 20, 16 << 20):
            w, b = runs.get(f"BM_alloc_weft/bytes:{n}/touch:{touch}"), runs.get(f"BM_alloc_std/bytes:{n}/touch:{touch}")
            if w and b:
                c = w["counters"]
                t.add("allocator", f"alloc+free {n} B{', touching pages' if touch else ''} "
                      f"(hits {c.get('hits', 0):.0f}, misses {c.get('misses', 0):.0f})",
                      fmt_time(w["ns"]), fmt_time(b["ns"]) + " (aligned_alloc)", w["ns"] / b["ns"])
    w, b = runs.get("BM_pattern_weft"), runs.get("BM_pattern_std")
    if w and b:
        t.add("allocator", "8 mixed blocks live, then freed", fmt_time(w["ns"]), fmt_time(b["ns"]) + " (aligned_alloc)",
              w["ns"] / b["ns"])


GPT_LABELS = {0: "GPT step, train_gpt's model (2x64, 4 heads, vocab 16, 32x32 tokens), AdamW + clip",
              1: "GPT step, C=256 (4x256, 4 heads, vocab 256, 8x64 tokens), AdamW + clip"}


def train_rows(runs, t):
    for threads in (1, 2):
        run = runs.get(f"BM_mlp_step/threads:{threads}")
        if run:
            c = run["counters"]
            paired_row(t, "train", f"MLP step 64x512-2048-512, {threads} thr: {c['fraction']:.0%} of its matmul bound "
                       f"({c['GFLOPs']:.0f} GFLOP/s{of_peak(c['GFLOPs'], 'fma', threads)})", run,
                       "its matmuls, oneDNN", 1 / 0.9)
        run = runs.get(f"BM_mlp_step_in_backward/threads:{threads}")
        if run:
            c = run["counters"]
            paired_row(t, "train", f"MLP step, SGD in backward, {threads} thr: {c['fraction']:.0%} of its matmul bound",
                       run, "its matmuls, oneDNN", 1 / 0.9)
        run = runs.get(f"BM_mlp_step_update/threads:{threads}")
        if run:
            c = run["counters"]
            paired_row(t, "train", f"SGD step over the MLP's 2.1M parameters, {threads} thr ({c['GBs']:.1f} GB/s"
                       f"{of_peak(c['GBs'], 'copy', threads)})", run, "raw loop", 1.1)
        run = runs.get(f"BM_mlp_step_fused_floor/threads:{threads}")
        if run:
            c = run["counters"]
            paired_row(t, "train", f"MLP step's matmuls with SGD fused into the weight-gradient products (raw oneDNN), "
                       f"{threads} thr: the bound is {c['fraction']:.0%} of it", run, "its matmuls, oneDNN")
        run = runs.get(f"BM_mlp_step_floor/threads:{threads}")
        if run:
            c = run["counters"]
            paired_row(t, "train", f"MLP step, {threads} thr: {c['fraction']:.0%} of its floor (its matmuls and its "
                       "SGD update as a raw loop)", run, "matmuls, oneDNN, + raw update", 1 / 0.9)
        run = runs.get(f"BM_adamw_step/threads:{threads}")
        if run:
            c = run["counters"]
            paired_row(t, "train", f"AdamW step, C=256 GPT's 3.3M parameters, {threads} thr ({c['GBs']:.1f} GB/s"
                       f"{of_peak(c['GBs'], 'copy', threads)})", run, "the replaced per-parameter scalar loop", 1.0)
        for model in (0, 1):
            run = runs.get(f"BM_gpt_step/model:{model}/threads:{threads}")
            if not run:
                continue
            c = run["counters"]
            label = (f"{GPT_LABELS[model]}, {threads} thr: {c['tokens_per_s']:.0f} tokens/s, {c['fraction']:.0%} of its "
                     f"matmul bound, matmul work at {c['GFLOPs']:.0f} GFLOP/s{of_peak(c['GFLOPs'], 'fma', threads)}")
            if model == 0:
                paired_row(t, "train", label, run, "its matmuls, oneDNN", 1 / 0.75)
            else:
                peak = PEAKS.get(("fma", threads))
                w, b = c["weft_us"] * 1e3, c["baseline_us"] * 1e3
                t.add("train", label, fmt_time(w), fmt_time(b) + " (its matmuls, oneDNN)", w / b,
                      ">= 75% of FMA peak", None if not peak else c["GFLOPs"] / peak >= 0.75)
    autocast_rows(runs, t)


def autocast_rows(runs, t):
    """bench_train's GPT steps under bfloat16 autocast against the same steps in float32 (paired)."""
    for threads in (1, 2):
        for model in (0, 1):
            run = runs.get(f"BM_gpt_autocast_step/model:{model}/threads:{threads}")
            if not run:
                continue
            c = run["counters"]
            w, b = c["weft_us"] * 1e3, c["baseline_us"] * 1e3
            isa = "AVX512-BF16" if c.get("avx512_bf16") else "no AVX512-BF16: products widened to float32"
            label = (f"bf16 autocast GPT step vs float32, {GPT_LABELS[model].split(', ', 1)[1]}, {threads} thr "
                     f"({isa}): {c['tokens_per_s']:.0f} vs {c['tokens_per_s_float32']:.0f} tokens/s, "
                     f"speedup {b / w:.2f}x")
            # >= 1.6x faster is <= 1/1.6 = 0.625x the time
            t.add("train", label, fmt_time(w), fmt_time(b) + " (float32)", w / b, "<= 0.625x", w / b <= 1 / 1.6)


def memory_rows(runs, t):
    """bench_memory: a GPT step's peak bytes in use against what it must hold, per model size."""
    for size in range(4):
        run = runs.get(f"BM_gpt_memory/size:{size}")
        if not run:
            continue
        c = run["counters"]
        label = (f"GPT step {run.get('label', size)} ({c['params_M']:.2f}M params), 1 thr: {c['tokens_per_s']:.0f} tokens/s; "
                 f"peak in use / (params + grads + AdamW state + {c['activations_MiB']:.1f} MiB activations); "
                 f"the allocator holds {c['held_MiB']:.1f} MiB with its cache")
        t.add("memory", label, f"{c['peak_MiB']:.1f} MiB", f"{c['must_hold_MiB']:.1f} MiB (what it must hold)",
              c["peak_ratio"], "<= 1.2x", c["peak_ratio"] <= 1.2)


def attention_rows(runs, t):
    """bench_attention: the fused (flash-style) attention against the composed form, causal float32."""
    for kind, what in (("forward", "forward"), ("forward_backward", "forward+backward")):
        for T in (64, 256, 1024):
            for D in (16, 64):
                run = runs.get(f"BM_attention_{kind}/B:8/T:{T}/D:{D}/threads:1")
                if not run:
                    continue
                c = run["counters"]
                held = (f", held for backward {c['held_fused_MB']:.1f} MB vs {c['held_composed_MB']:.1f} MB"
                        if "held_fused_MB" in c else "")
                paired_row(t, "attention", f"attention {what}, B=8 H=4 T={T} D={D}, causal, 1 thr{held}", run,
                           "composed matmul-softmax-matmul")


# libtorch 1.13 (bench_torch, its own binary) beside weft's same case: (label, torch run, weft run, weft counter).
TORCH = [("add 16 floats, no-grad, per call", "BM_torch_add/n:16/threads:1", "BM_add/n:16/threads:1", "weft_us", 1)]
TORCH += [(f"autograd chain fwd+bwd, 200 ops, per op", "BM_torch_chain_fwd_bwd/threads:1", "BM_chain_fwd_bwd", None, 200)]
TORCH += [(f"matmul {n}^3, {th} thr", f"BM_torch_matmul/n:{n}/threads:{th}", f"BM_matmul/n:{n}/threads:{th}", "weft_us", 1)
          for th in (1, 2) for n in (64, 256, 1024)]
TORCH += [(f"MLP step, {th} thr", f"BM_torch_mlp_step/threads:{th}", f"BM_mlp_step/threads:{th}", "weft_us", 1)
          for th in (1, 2)]
TORCH += [(f"{GPT_LABELS[m].split(',')[0]}, {'train_gpt' if m == 0 else 'C=256'}, {th} thr",
           f"BM_torch_gpt_step/model:{m}/threads:{th}", f"BM_gpt_step/model:{m}/threads:{th}", "weft_us", 1)
          for th in (1, 2) for m in (0, 1)]


def torch_rows(runs, t):
    for label, torch_key, weft_key, counter, per in TORCH:
        tr, wr = runs.get(torch_key), runs.get(weft_key)
        if not tr or not wr:
            continue
        w = (wr["counters"][counter] * 1e3 if counter else wr["ns"]) / per
        b = tr["counters"]["weft_us"] * 1e3 / per
        t.add("libtorch", label, fmt_time(w), fmt_time(b) + " (libtorch 1.13)", w / b)


# Cases timed in pairs inside one binary (bench_conv, bench_rnn): weft and the raw oneDNN primitives
# alternate, and each run carries both medians as the counters weft_us and baseline_us.
PAIRED = {"BM_conv2d_fwd_bwd": ("conv2d fwd+bwd (64->64 ch, 3x3)", 1.1), "BM_batch_norm_fwd_bwd":
          ("batch_norm fwd+bwd (64 ch)", None), "BM_lstm_layer": ("LSTM layer fwd+bwd", None)}


def paired_rows(runs, t):
    for key, run in sorted(runs.items()):
        family = key.split("/")[0]
        if family not in PAIRED or "weft_us" not in run["counters"]:
            continue
        label, target = PAIRED[family]
        w, b = run["counters"]["weft_us"], run["counters"]["baseline_us"]
        shape = key[len(family) + 1:].replace("/", ", ").replace(":", "=")
        t.add("spatial" if family != "BM_lstm_layer" else "rnn", f"{label}, {shape}", fmt_time(w * 1e3),
              fmt_time(b * 1e3) + " (raw oneDNN)", w / b, f"<= {target}x" if target else "—",
              None if target is None else w / b <= target)


# MPI cases carry both medians as counters (see Note [Lock step]).
MPI_TARGETS = {
    "BM_all_reduce/floats:1": ("extra", 2.0), "BM_all_reduce/floats:4194304": ("ratio", 1.1),
    "BM_all_gather/floats:1": ("extra", 2.0), "BM_all_gather/floats:4194304": ("ratio", 1.1),
    "BM_redistribute_s0_r/floats:256": ("extra", 3.0), "BM_redistribute_s0_r/floats:4194304": ("ratio", 1.1),
    "BM_redistribute_p_r/floats:256": ("extra", 3.0), "BM_redistribute_p_r/floats:4194304": ("ratio", 1.1),
    # Issue 24's targets for local_map's fixed cost over its body, with the SPMD type checks on or off.
    "BM_local_map/backward:0/types:0": ("extra", 1.0), "BM_local_map/backward:1/types:0": ("extra", 2.5),
    "BM_local_map/backward:0/types:1": ("extra", 1.0), "BM_local_map/backward:1/types:1": ("extra", 2.5),
}
MPI_LABELS = {"BM_all_reduce": "all_reduce (sum)", "BM_all_gather": "all_gather (per rank)",
              "BM_redistribute_s0_r": "redistribute S(0)->R", "BM_redistribute_p_r": "redistribute P->R"}


def mpi_rows(runs, t):
    for key, run in runs.items():
        c = run["counters"]
        if run["binary"] != "bench_mpi" or "weft_us" not in c:
            continue
        w, b = c["weft_us"] * 1e3, c["baseline_us"] * 1e3
        family, _, arg = key.partition("/")
        if family == "BM_mlp_tensor_parallel":
            speedup = b / w
            t.add("mpi", f"TP MLP 32x1024-4096-1024 fwd+bwd, 2 ranks (speedup {speedup:.2f}x)", fmt_time(w),
                  fmt_time(b) + " (1 rank)", w / b, ">= 1.7x speedup", speedup >= 1.7)
            continue
        if family == "BM_gpt_step":
            cpu = c.get("speedup_cpu", 0)
            t.add("mpi", f"GPT step (2x256, 4 heads, 8x64 tokens), TP (vocab parallel) over 2 ranks: "
                  f"{c['tokens_per_s_tp']:.0f} vs {c['tokens_per_s_single']:.0f} tokens/s (speedup {b / w:.2f}x wall, "
                  f"{cpu:.2f}x in CPU time)", fmt_time(w), fmt_time(b) + " (1 rank)", w / b,
                  ">= 1.8x speedup (CPU time)", cpu >= 1.8 if cpu else None)
            continue
        if family == "BM_gpt_step_vocab_parallel":
            t.add("mpi", f"GPT step as above, TP over 2 ranks with the vocabulary split (embedding, tied head, loss): "
                  f"{c['tokens_per_s_tp_vocab']:.0f} vs {c['tokens_per_s_tp']:.0f} tokens/s with them replicated "
                  f"({b / w:.2f}x wall, {c.get('speedup_cpu', 0):.2f}x in CPU time)", fmt_time(w),
                  fmt_time(b) + " (TP, tail replicated)", w / b)
            continue
        if family == "BM_gpt_step_sequence_parallel":
            t.add("mpi", f"GPT step as above, TP + sequence parallel over 2 ranks, both vocab parallel: {c['tokens_per_s_tp_sp']:.0f} vs "
                  f"{c['tokens_per_s_tp']:.0f} tokens/s under TP alone ({b / w:.2f}x wall, "
                  f"{c.get('speedup_cpu', 0):.2f}x in CPU time)", fmt_time(w), fmt_time(b) + " (TP)", w / b)
            continue
        if family == "BM_local_map":
            label = ("local_map overhead, " + ("fwd+bwd" if "backward:1" in arg else "fwd") + ", 16-elem shards, "
                     "SPMD types " + ("on" if arg.endswith("types:1") else "off"))
            base = " (body direct)"
        elif family == "BM_local_map_types_per_op":
            t.add("mpi", f"SPMD types in a local_map body, 32 ops ({c['per_op_ns']:.0f} ns per op)", fmt_time(w),
                  fmt_time(b) + " (types off)", w / b)
            continue
        else:
            label = f"{MPI_LABELS.get(family, family)} {arg.split(':')[1]} floats"
            base = " (MPI)"
        target, met = "—", None
        if key in MPI_TARGETS:
            kind, limit = MPI_TARGETS[key]
            if kind == "ratio":
                target, met = f"<= {limit}x", w / b <= limit
            else:
                target, met = f"<= +{limit:g} us (got {(w - b) / 1e3:+.2f})", (w - b) / 1e3 <= limit
        t.add("mpi", label, fmt_time(w), fmt_time(b) + base, w / b, target, met)


OVERLAP_LABELS = {"BM_dp_step": ("data parallel", "each gradient's all_reduce started in backward",
                                  "sync_grads: one coalesced all_reduce after backward"),
                  "BM_fsdp_step": ("fully_shard", "prefetched all_gathers, in-flight reduce_scatters",
                                   "each all_gather and reduce_scatter waited for in place")}


def overlap_rows(runs, t):
    """bench_overlap: how much of a step's communication its compute hides, with overlap and without.
    hidden = (compute + communication - step) / communication from three medians (noisy under load); for
    data parallelism also 1 - exposed / exposed without overlap, from the wait left after backward."""
    for family, (name, on, off) in OVERLAP_LABELS.items():
        run = runs.get(family)
        if run is None:
            continue
        c = run["counters"]
        step, plain = c["step_us"] * 1e3, c["no_overlap_us"] * 1e3
        comp, comm = c["compute_us"] * 1e3, c["comm_us"] * 1e3
        parts = f"compute {fmt_time(comp)} + communication {fmt_time(comm)} (raw MPI)"
        tail = ""
        if family == "BM_dp_step" and c.get("exposed_no_overlap_us", 0) > 0:
            tail = (f"; waits {fmt_time(c['exposed_us'] * 1e3)} after backward vs {fmt_time(c['exposed_no_overlap_us'] * 1e3)}"
                    f" without overlap: {1 - c['exposed_us'] / c['exposed_no_overlap_us']:.0%} of it hidden")
        t.add("overlap", f"{name} step, 4 MLP blocks 256-1024-256, 64 rows per rank, 2 ranks, with overlap ({on}): "
              f"{c['hidden']:.0%} of the communication hidden{tail}", fmt_time(step),
              fmt_time(plain) + " (no overlap)", step / plain)
        t.add("overlap", f"{name} step, the same without overlap ({off}): {c['hidden_no_overlap']:.0%} hidden",
              fmt_time(plain), fmt_time(comp + comm) + " (" + parts + ")", plain / (comp + comm))


def machine():
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines() if l.startswith("Model name")), "?")
    except OSError:
        model = platform.processor() or "?"
    return f"{os.cpu_count()} cores (nproc), {model}"


def charts(runs, out_dir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: matplotlib is not importable; no charts (apt-get install python3-matplotlib)")
        return []
    made = []
    # 1. matmul GFLOP/s vs size beside raw oneDNN.
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = [64, 256, 1024, 2048]
    for threads, style in ((1, "-"), (2, "--")):
        for name, counter, label, color in (("BM_matmul", "GFLOPs", "weft matmul", "C0"),
                                            ("BM_matmul", "GFLOPs_onednn", "oneDNN matmul", "C1"),
                                            ("BM_linear", "GFLOPs", "weft linear", "C2"),
                                            ("BM_linear", "GFLOPs_onednn", "oneDNN linear (bias)", "C3")):
            pts = [(n, runs[f"{name}/n:{n}/threads:{threads}"]["counters"][counter]) for n in sizes
                   if f"{name}/n:{n}/threads:{threads}" in runs]
            if pts:
                ax.plot(*zip(*pts), style, marker="o", color=color, label=f"{label}, {threads} thr")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n (n x n x n, float32)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title("matmul throughput: weft vs raw oneDNN primitive")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    made.append(save(fig, out_dir, "matmul_gflops.png"))
    # 2. per-op / per-call overhead.
    bars = []
    for key, label in (("BM_add_loop/n:16/threads:1", "add 16 floats: plain loop"),
                       ("BM_add_weft/n:16/threads:1", "add 16 floats: weft (no-grad)")):
        if key in runs:
            bars.append((label, runs[key]["ns"]))
    for key, label in (("BM_chain_plain_loop", "chain fwd+bwd: hand loop, per op"),
                       ("BM_chain_fwd_nograd", "chain fwd no-grad, per op"),
                       ("BM_chain_fwd_grad", "chain fwd recording, per op"),
                       ("BM_chain_fwd_bwd", "chain fwd+bwd, per op")):
        if key in runs:
            bars.append((label, runs[key]["ns"] / 200))
    for key, label in (("BM_local_map/backward:0/types:1", "local_map fwd, extra per call"),
                       ("BM_local_map/backward:1/types:1", "local_map fwd+bwd, extra per call")):
        if key in runs:
            bars.append((label, runs[key]["counters"]["extra_us"] * 1e3))
    if bars:
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(bars) + 1.2))
        ax.barh([b[0] for b in bars], [max(b[1], 0.1) for b in bars], color="C0")
        for i, (_, v) in enumerate(bars):
            ax.text(max(v, 0.1), i, f" {v:.0f} ns", va="center", fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("ns (log scale)")
        ax.set_title("fixed per-op overhead")
        ax.invert_yaxis()
        fig.tight_layout()
        made.append(save(fig, out_dir, "overhead.png"))
    # 3. collective time vs size beside raw MPI.
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for family, color in (("BM_all_reduce", "C0"), ("BM_all_gather", "C1"), ("BM_redistribute_s0_r", "C2"),
                          ("BM_redistribute_p_r", "C3")):
        pts = sorted((int(k.split(":")[1]), r["counters"]) for k, r in runs.items()
                     if k.startswith(family + "/floats:") and "weft_us" in r["counters"])
        if pts:
            ax.plot([p[0] for p in pts], [p[1]["weft_us"] for p in pts], "-o", color=color, label=f"{MPI_LABELS[family]}: weft")
            ax.plot([p[0] for p in pts], [p[1]["baseline_us"] for p in pts], ":x", color=color, label=f"{MPI_LABELS[family]}: raw MPI")
    if ax.lines:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("floats")
        ax.set_ylabel("median time (us)")
        ax.set_title("collectives, 2 ranks: weft vs raw MPI")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        made.append(save(fig, out_dir, "collectives.png"))
    # 4. scaling: tokens/s and memory over the GPT sizes of bench_memory.
    pts = [runs[f"BM_gpt_memory/size:{s}"] for s in range(4) if f"BM_gpt_memory/size:{s}" in runs]
    if pts:
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
        params = [r["counters"]["params_M"] for r in pts]
        left.plot(params, [r["counters"]["tokens_per_s"] for r in pts], "-o", color="C0")
        for p, r in zip(params, pts):
            left.annotate(r.get("label", ""), (p, r["counters"]["tokens_per_s"]), fontsize=7)
        left.set_xscale("log")
        left.set_yscale("log")
        left.set_xlabel("parameters (M)")
        left.set_ylabel("tokens/s, 1 thread")
        left.set_title("GPT step throughput")
        for counter, label, color in (("peak_MiB", "peak in use", "C0"), ("must_hold_MiB", "must hold", "C1"),
                                      ("held_MiB", "held with the cache", "C2")):
            right.plot(params, [r["counters"][counter] for r in pts], "-o", color=color, label=label)
        right.set_xscale("log")
        right.set_yscale("log")
        right.set_xlabel("parameters (M)")
        right.set_ylabel("MiB")
        right.set_title("GPT step memory")
        right.legend(fontsize=7)
        for ax in (left, right):
            ax.grid(alpha=0.3)
        made.append(save(fig, out_dir, "gpt_scaling.png"))
    plt.close("all")
    return [m for m in made if m]


def save(fig, out_dir, name):
    fig.tight_layout()
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=110)
    return name


def main():
    results_dir = sys.argv[1] if len(sys.argv) > 1 else "bench-results"
    mode = sys.argv[2] if len(sys.argv) > 2 else "full"
    runs, contexts = load(results_dir)
    table = Table()
    for rows in (peak_rows, ops_rows, autograd_rows, allocator_rows, train_rows, memory_rows, attention_rows, torch_rows,
                 paired_rows, mpi_rows, overlap_rows):
        rows(runs, table)
    one_thread = [r["counters"]["cpu_per_wall"] for k, r in runs.items()
                  if "threads:1" in k and "cpu_per_wall" in r["counters"]]
    cpu_wall = f"{max(one_thread):.2f}" if one_thread else "?"
    loads = ", ".join(f"{name} {ctx['load_avg'][0]:.1f}" for name, ctx in contexts.items() if ctx.get("load_avg"))
    met = [r for r in table.rows if r[6] is not None]
    busy = [ctx["load_avg"][0] for ctx in contexts.values() if ctx.get("load_avg")]
    warning = []
    if busy and max(busy) > (os.cpu_count() or 1):
        warning = [f"- **warning**: load average up to {max(busy):.1f} on {os.cpu_count()} cores: other work shared the "
                   "cores, so the 2-thread rows (wall time, OpenMP threads waiting on a descheduled peer) and the MPI "
                   "rows measure the scheduler as much as the code; the 1-thread rows (CPU time) hold up best."]
    lines = [
        f"# weft benchmarks ({mode})",
        "",
        f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- machine: {machine()}",
        f"- load average when each binary started: {loads or '?'} (the machine is shared; compare ratios, "
        "which pair runs made in the same binary, not absolute times)",
        "- ratios: every ratio is weft's time / the baseline's time (below 1: weft is faster); a throughput target "
        "such as >= 0.95x is written as the time ratio it allows (<= 1.053x)",
        "- times: single-threaded cases in the process's CPU time (all its threads: a 1-thread row cannot show more "
        "than one core's work), 2-thread cases in wall time; paired cases alternate blocks of weft and baseline calls "
        "and take medians; MPI cases as the median of per-iteration times with weft and raw MPI interleaved",
        f"- one thread: the 1-thread paired cases' process CPU time / wall time is at most {cpu_wall}"
        " (above 1 would mean a second busy thread)",
        "- peaks: bench_peak in this run (an FMA loop, STREAM copy/add); GFLOP/s and GB/s rows give their fraction",
        "- libtorch: " + ("bench_torch (libtorch 1.13 with OpenBLAS, its own binary, same shapes and threads)"
                          if any(k.startswith("BM_torch") for k in runs) else "not run (apt-get install libtorch-dev)"),
        f"- targets met: {sum(1 for r in met if r[6])} of {len(met)}",
    ] + warning + [
        "",
        table.markdown(),
        "",
    ]
    made = charts(runs, results_dir)
    lines += [f"![{m}]({m})" for m in made]
    with open(os.path.join(results_dir, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
