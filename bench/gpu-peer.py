"""The PyTorch peer of bench/gpu-check.sh (docs/cuda.md): the same operations a PyTorch user would write,
float64 on the same GPU, timed with CUDA events (medians of 5 after a warm-up). Prints one JSON object.

  polar     Y·(YᵀY)^{-1/2} through torch.linalg.eigh, the algorithm of the CUDA addon's retraction,
            with Y resident on the device ("resident") and with the host↔device copies ("copies"),
            which is what one nsa-flow call includes.
  nmfMu     one Frobenius multiplicative-update iteration of W and H (A resident), the per-iteration
            figure for the device NMF still to come.
"""
import json
import sys

import torch


def median_ms(fn, repeats=5):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def polar(Y):
    lam, V = torch.linalg.eigh(Y.T @ Y)
    return Y @ ((V * lam.rsqrt()) @ V.T)


def main():
    if not torch.cuda.is_available():
        print(json.dumps({"error": "torch.cuda.is_available() is False"}))
        return 3
    dev = torch.device("cuda")
    g = torch.Generator(device="cpu").manual_seed(0)
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "polar": [], "nmfMu": []}
    for p, k in [(1_000_000, 64), (200_000, 256)]:
        host = torch.rand(p, k, generator=g, dtype=torch.float64) - 0.5
        Y = host.to(dev)
        out["polar"].append({
            "shape": [p, k],
            "residentMs": median_ms(lambda: polar(Y)),
            "copiesMs": median_ms(lambda: polar(host.to(dev)).cpu()),
        })
    for n, m, r in [(20_000, 10_000, 50)]:
        A = torch.rand(n, m, generator=g, dtype=torch.float64).to(dev)
        W = torch.rand(n, r, generator=g, dtype=torch.float64).to(dev)
        H = torch.rand(r, m, generator=g, dtype=torch.float64).to(dev)
        eps = 1e-10

        def iteration():
            nonlocal W, H
            W = W * (A @ H.T) / (W @ (H @ H.T) + eps)
            H = H * (W.T @ A) / ((W.T @ W) @ H + eps)

        out["nmfMu"].append({"shape": [n, m, r], "iterationMs": median_ms(iteration)})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
