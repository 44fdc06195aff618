"""Whole-volume inference time and peak memory of the default U-Net, against an nnU-Net-sized peer.

Ours: the default `ModelConfig()` network (residual U-Net 16-32-64-128, 96^3 windows, overlap 0.25,
Gaussian blending) through `predict_volume`. Peer (``--peer``): MONAI's DynUNet in nnU-Net's default
3d_fullres topology for a 1 mm brain (6 levels, 32-64-128-256-320-320 filters, 128^3 patch, overlap 0.5),
through MONAI's sliding window. Weights are random: time and memory do not depend on them.
Each run is one process so its peak resident memory is its own.

    python benchmarks/bench_inference.py                 # ours, 182x218x182, 2 threads
    python benchmarks/bench_inference.py --tta           # ours with 8-fold mirror TTA
    python benchmarks/bench_inference.py --peer          # the DynUNet peer (about 150 s on 2 cores)
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

SHAPE = (182, 218, 182)


def run_ours(tta: bool, batch: int) -> tuple[float, int]:
    from neurolesion.infer.predict import predict_volume
    from neurolesion.models.card import LoadedModel, ModelCard
    from neurolesion.models.complexity import count_parameters
    from neurolesion.models.config import ModelConfig
    from neurolesion.models.networks import build_network

    cfg = ModelConfig()
    model = LoadedModel(build_network(cfg).eval(), cfg, ModelCard.for_config("bench", cfg))
    image = np.random.default_rng(0).normal(size=(1, *SHAPE)).astype(np.float32)
    predict_volume(model, image[:, :96, :96, :96], (1.0, 1.0, 1.0), device="cpu")  # warm-up
    t0 = time.perf_counter()
    prob = predict_volume(model, image, (1.0, 1.0, 1.0), tta=tta, batch_size=batch, device="cpu")
    elapsed = time.perf_counter() - t0
    assert prob.shape == (1, *SHAPE)
    return elapsed, count_parameters(model.net)


def run_peer() -> tuple[float, int]:
    from monai.inferers import sliding_window_inference
    from monai.networks.nets import DynUNet

    net = DynUNet(
        spatial_dims=3,
        in_channels=1,
        out_channels=2,
        kernel_size=[3] * 6,
        strides=[1, 2, 2, 2, 2, 2],
        upsample_kernel_size=[2] * 5,
        filters=[32, 64, 128, 256, 320, 320],
        norm_name="instance",
        res_block=False,
    ).eval()
    image = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 1, *SHAPE)).astype(np.float32))
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = sliding_window_inference(image, (128, 128, 128), 1, net, overlap=0.5, mode="gaussian")
    elapsed = time.perf_counter() - t0
    assert isinstance(out, torch.Tensor) and out.shape[2:] == SHAPE
    return elapsed, sum(p.numel() for p in net.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peer", action="store_true", help="time the DynUNet 3d_fullres peer instead")
    parser.add_argument("--tta", action="store_true", help="8-fold mirror test-time augmentation (ours)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2, help="windows per forward pass (ours)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = "DynUNet nnU-Net 3d_fullres (peer)" if args.peer else "neurolesion default U-Net"
    seconds, params = run_peer() if args.peer else run_ours(args.tta, args.batch)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"model        {name}")
    print(f"parameters   {params / 1e6:.2f} M")
    print(f"input        1 x {'x'.join(map(str, SHAPE))} (1 mm), threads {args.threads}, tta {args.tta}")
    print(f"time         {seconds:.1f} s")
    print(f"peak memory  {peak_gb:.2f} GB (process max RSS)")


if __name__ == "__main__":
    main()
