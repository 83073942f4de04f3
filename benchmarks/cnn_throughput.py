"""CNN training and inference throughput: hizkit's ``cnn`` vs a plain eager PyTorch run.

Same architecture, same weights, 64x64x7 inputs. Each variant runs in its own process so
that its peak memory (max RSS) is its own.

- plain:   NCHW tensors, model.train() / model.eval() under no_grad, nothing else;
- plain+malloc: plain, with glibc told to keep freed memory (``keep_freed_memory``): what
           the allocator setting alone is worth;
- hizkit:  what ``CNN.fit`` / ``CNN.predict_proba`` do: the allocator setting,
           channels-last memory, and at inference batch-norm folded into the convolutions
           under inference_mode;
- hizkit+bf16: hizkit under bf16 autocast (``CNN(precision='bf16')``; what
           ``precision='auto'`` picks on CUDA and on CPUs with AVX512-BF16/AMX, and only there);
- hizkit+compile: hizkit through torch.compile (``CNN(compile=True)``).

The headline ratios compare hizkit's default path where it runs (bf16 where the hardware
has bf16 units, fp32 elsewhere) with plain eager fp32. bf16 logits agree with fp32 to
about 1e-2, not 1e-5: the check allows 5e-2 there and reports the largest difference.

Run: python benchmarks/cnn_throughput.py [--batch 64] [--steps 6] [--device cuda] [--smoke]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import time

VARIANTS = ("plain", "plain+malloc", "hizkit", "hizkit+bf16", "hizkit+compile")


def run_variant(
    variant: str,
    mode: str,
    batch: int,
    steps: int,
    threads: int | None,
    device: str = "cpu",
    width: int = 32,
) -> dict:
    import numpy as np
    import torch

    from hizkit.plugins.cnn import build_network, fold_batchnorm, keep_freed_memory

    dev = torch.device(device)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    autocast = (
        torch.autocast(dev.type, dtype=torch.bfloat16)
        if variant.endswith("bf16")
        else contextlib.nullcontext()
    )

    guard = contextlib.ExitStack()  # held until this function returns
    if variant != "plain":
        guard.enter_context(keep_freed_memory())
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_network(7, width)
    with torch.no_grad():  # trained-like batch-norm statistics, so that folding is tested
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    x = torch.randn(batch, 7, 64, 64)
    y = torch.randint(0, 3, (batch,))
    net, x, y = net.to(dev), x.to(dev), y.to(dev)
    fancy = variant.startswith("hizkit")
    if fancy:
        x = x.contiguous(memory_format=torch.channels_last)
        net = net.to(memory_format=torch.channels_last)
    if mode == "train":
        opt = torch.optim.Adam(net.parameters(), lr=5e-4)
        loss_fn = torch.nn.CrossEntropyLoss()
        model = torch.compile(net) if variant.endswith("compile") else net
        net.train()

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = loss_fn(model(x).float(), y)
            loss.backward()
            opt.step()
            sync()

        t0 = time.perf_counter()
        step()  # warm-up (and compilation)
        warm = time.perf_counter() - t0
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        out = None
    else:
        net.eval()
        model = fold_batchnorm(net).to(memory_format=torch.channels_last) if fancy else net
        if variant.endswith("compile"):
            model = torch.compile(model)
        ctx = torch.inference_mode if fancy else torch.no_grad
        with ctx(), autocast:
            t0 = time.perf_counter()
            model(x)
            sync()
            warm = time.perf_counter() - t0
            times = []
            for _ in range(steps):
                t = time.perf_counter()
                out = model(x)
                sync()
                times.append(time.perf_counter() - t)
        out = out.float().cpu().numpy().tolist()[:16]  # logits
    med = float(np.median(times))
    return {
        "variant": variant,
        "mode": mode,
        "samples_per_s": batch / med,
        "warmup_s": warm,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "proba_head": out,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--variant", choices=VARIANTS)
    ap.add_argument("--mode", choices=("train", "infer"))
    ap.add_argument("--skip-compile", action="store_true")
    ap.add_argument("--skip-bf16", action="store_true", help="leave out the bf16 variant")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--width", type=int, default=32, help="the network's width (the poster's: 32)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: the code paths only (CI)")
    args = ap.parse_args()
    if args.smoke:  # eager variants only, two samples, one timed step
        args.batch, args.steps, args.width, args.skip_compile, args.skip_bf16 = 2, 1, 4, True, True
    if args.variant:  # child process
        res = run_variant(
            args.variant, args.mode, args.batch, args.steps, args.threads, args.device, args.width
        )
        print(json.dumps(res))
        return

    import numpy as np
    from _common import finish

    results: dict[str, dict] = {}
    import torch

    from hizkit.plugins.cnn.network import bf16_supported

    variants = [
        v
        for v in VARIANTS
        if not (args.skip_compile and v.endswith("compile"))
        and not (args.skip_bf16 and v.endswith("bf16"))
    ]
    bf16 = bf16_supported(torch.device(args.device)) and "hizkit+bf16" in variants
    default = "hizkit+bf16" if bf16 else "hizkit"
    for mode in ("infer", "train"):
        for v in variants:
            cmd = [
                sys.executable,
                __file__,
                "--variant",
                v,
                "--mode",
                mode,
                "--batch",
                str(args.batch),
                "--steps",
                str(args.steps),
                "--device",
                args.device,
                "--width",
                str(args.width),
            ]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            if args.smoke:  # in this process: the code paths, without 6 interpreter starts
                res = run_variant(
                    v, mode, args.batch, args.steps, args.threads, args.device, args.width
                )
            else:
                res = json.loads(
                    subprocess.run(cmd, capture_output=True, text=True, check=True)
                    .stdout.strip()
                    .splitlines()[-1]
                )
            results[f"{mode}:{v}"] = res
            print(
                f"{mode:5s} {v:15s} {res['samples_per_s']:7.1f} samples/s  "
                f"warm-up {res['warmup_s']:5.1f} s  peak RSS {res['peak_rss_mb']:6.0f} MB"
            )
    ref = np.array(results["infer:plain"]["proba_head"])
    for v in variants[1:]:
        diff = float(np.abs(np.array(results[f"infer:{v}"]["proba_head"]) - ref).max())
        print(f"max |logit_{v} - logit_plain| = {diff:.2e}")
        assert diff < (5e-2 if v.endswith("bf16") else 1e-3), "predictions differ"
    figures = {
        "batch": args.batch,
        "width": args.width,
        "device": args.device,
        "default_variant": default,
    }
    for key, res in results.items():
        figures[key.replace(":", "_") + "_samples_per_s"] = round(res["samples_per_s"], 2)
        figures[key.replace(":", "_") + "_peak_rss_mb"] = round(res["peak_rss_mb"])

    def speedup(mode: str, variant: str, reference: str) -> float:
        rate = results[f"{mode}:{variant}"]["samples_per_s"]
        return rate / results[f"{mode}:{reference}"]["samples_per_s"]

    for mode in ("infer", "train"):
        for v in variants[1:]:
            figures[f"{mode}_speedup_{v}"] = round(speedup(mode, v, "plain"), 2)
            print(f"{mode} speed-up {v}: {speedup(mode, v, 'plain'):.2f}x")
        for v in (v for v in variants if v.startswith("hizkit")):
            ratio = speedup(mode, v, "plain+malloc")
            figures[f"{mode}_speedup_{v}_vs_plain+malloc"] = round(ratio, 2)
            print(f"{mode} speed-up {v} over plain+malloc: {ratio:.2f}x")
        ratio = speedup(mode, default, "plain")
        figures[f"{mode}_speedup_default"] = round(ratio, 2)
        print(f"{mode}: hizkit's default path here ({default}) vs plain eager fp32: {ratio:.2f}x")
    finish("cnn_throughput", figures)


if __name__ == "__main__":
    main()
