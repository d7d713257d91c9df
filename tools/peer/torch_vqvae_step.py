#!/usr/bin/env python3
"""torch_vqvae_step.py: the PyTorch peer of `vqvae bench --step`.

What it measures: the wall time of one VQ-VAE training step in PyTorch, step by step with
time.perf_counter (torch.cuda.synchronize() before each reading on cuda), after --warmup untimed steps.
A step is the work of VqVaeTrainer.TrainStep: zero_grad, forward, loss, backward, Adam step, EMA
codebook update. It does not include what ours does around the step (data loading, reading the losses
back, dead-code restarts). The input is one fixed batch drawn uniformly in [0, 1] from --seed, reused
every step: the cost of a step does not depend on the pixel values.

How it matches VqVaeCuda (src/VqVaeCuda/Models/VqVae.cs and Modules/):
- layers: encoder conv 4x4/2 -> H/2, ReLU, conv 4x4/2 -> H, ReLU, conv 3x3 -> H, residual stack,
  conv 1x1 -> D; quantizer; decoder conv 3x3 -> H, residual stack, convT 4x4/2 -> H/2, ReLU,
  convT 4x4/2 -> C. Residual block x + conv1x1(ReLU(conv3x3(ReLU(x)))); the stack ends with a ReLU.
- names and shapes: the module tree has our names (encoder.residual.0.conv3.weight, quantizer.codebook,
  quantizer.ema.cluster_sizes, ...), so state_dict() equals our StateDict and our checkpoints load
  (--load; --describe prints the names and shapes).
- init: every conv weight and bias uniform in +-1/sqrt(fan_in), fan_in = weight.size(1) * k * k (as
  PyTorch computes it, also for ConvTranspose2d's [in, out, k, k] weight); codebook uniform in +-1/K;
  EMA state N_k = 1, m_k = e_k. Set explicitly, so it does not depend on PyTorch's defaults.
- loss: mean-squared reconstruction error + beta * commitment (mean over N*D*h*w), straight-through
  estimator; with the codebook loss (use_ema false) + mean ||sg[z_e] - e||^2. With EMA the codebook
  has no gradient and moves by N_k <- g N_k + (1-g) n_k, m_k <- g m_k + (1-g) s_k,
  e_k = m_k / ((N_k + eps) / (sum N + K eps) * sum N), as kernels/codebook_update.cu.
- Adam: lr 2e-4, betas (0.9, 0.999), eps 1e-8, no weight decay (Optim/Adam.cs, TrainingOptions.cs).
- precision: FP32 (TF32 off on cuda, as our default) unless --tf32.

Modes (--mode): eager (as written); graph (cuda only: the whole step, Adam and the EMA update included, captured once
as a CUDA graph after warm-up on a side stream and replayed, as ours replays its step; Adam runs with capturable=True);
compile (torch.compile of the model's forward, PyTorch 2.x). A mode that fails (no torch.compile, a capture error)
is reported on stderr and in the result's notes, and the step is timed eagerly instead: the result's "mode" says
what ran, "mode_requested" what was asked. tools/gpu-check.sh runs each mode in its own process.

On a machine whose cores are busy with other work, PyTorch's OpenMP threads spin while they wait and the step times
scatter over tens of times the quiet figure (measured on two shared cores: median 0.2-5 s, p10 70 ms); with
OMP_WAIT_POLICY=PASSIVE in the environment they hold steady (~124 ms there). The script leaves PyTorch's defaults.

Written for PyTorch 1.13 and 2.x. Prints one summary line; --json also writes the result.
"""
import argparse
import json
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# VqVaeConfig's defaults, in the snake_case names of its ToJson (a run folder's config.json).
DEFAULT_CONFIG = dict(input_channels=1, image_size=28, hidden=128, residual_hidden=32, residual_layers=2,
                      codebook_size=512, embedding_dim=64, beta=0.25, use_ema=True, ema_decay=0.99, ema_epsilon=1e-5)


def conv_init_(conv):
    bound = 1.0 / (conv.weight.size(1) * conv.weight[0, 0].numel()) ** 0.5
    nn.init.uniform_(conv.weight, -bound, bound)
    nn.init.uniform_(conv.bias, -bound, bound)
    return conv


def conv(cin, cout, k, stride, pad):
    return conv_init_(nn.Conv2d(cin, cout, k, stride, pad))


def deconv(cin, cout, k, stride, pad):
    return conv_init_(nn.ConvTranspose2d(cin, cout, k, stride, pad))


class ResidualBlock(nn.Module):
    def __init__(self, hidden, residual_hidden):
        super().__init__()
        self.conv3 = conv(hidden, residual_hidden, 3, 1, 1)
        self.conv1 = conv(residual_hidden, hidden, 1, 1, 0)

    def forward(self, x):
        return x + self.conv1(F.relu(self.conv3(F.relu(x))))


class ResidualStack(nn.ModuleList):
    """Blocks named 0, 1, ... as ours, then a ReLU."""

    def __init__(self, hidden, residual_hidden, layers):
        super().__init__([ResidualBlock(hidden, residual_hidden) for _ in range(layers)])

    def forward(self, x):
        for block in self:
            x = block(x)
        return F.relu(x)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, half = c["hidden"], max(1, c["hidden"] // 2)
        self.conv1 = conv(c["input_channels"], half, 4, 2, 1)
        self.conv2 = conv(half, h, 4, 2, 1)
        self.conv3 = conv(h, h, 3, 1, 1)
        self.residual = ResidualStack(h, c["residual_hidden"], c["residual_layers"])
        self.pre_quantize = conv(h, c["embedding_dim"], 1, 1, 0)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.pre_quantize(self.residual(self.conv3(x)))


class Decoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, half = c["hidden"], max(1, c["hidden"] // 2)
        self.conv1 = conv(c["embedding_dim"], h, 3, 1, 1)
        self.residual = ResidualStack(h, c["residual_hidden"], c["residual_layers"])
        self.deconv1 = deconv(h, half, 4, 2, 1)
        self.deconv2 = deconv(half, c["input_channels"], 4, 2, 1)

    def forward(self, z):
        return self.deconv2(F.relu(self.deconv1(self.residual(self.conv1(z)))))


class CodebookEma(nn.Module):
    """Buffers cluster_sizes N_k [K] and embedding_sums m_k [K, D], starting at N_k = 1, m_k = e_k."""

    def __init__(self, codebook):
        super().__init__()
        self.register_buffer("cluster_sizes", torch.ones(codebook.size(0)))
        self.register_buffer("embedding_sums", codebook.detach().clone())


class VectorQuantizer(nn.Module):
    def __init__(self, c):
        super().__init__()
        k, d = c["codebook_size"], c["embedding_dim"]
        self.beta, self.use_ema = c["beta"], c["use_ema"]
        self.decay, self.epsilon = c["ema_decay"], c["ema_epsilon"]
        self.codebook = nn.Parameter(torch.empty(k, d).uniform_(-1.0 / k, 1.0 / k))
        if self.use_ema:
            # With EMA the optimizer has nothing to do for the codebook (ours gives it a zero gradient).
            self.codebook.requires_grad_(False)
            self.ema = CodebookEma(self.codebook)

    def forward(self, z):
        """z_e [N, D, h, w] -> (z_q with the straight-through gradient, code map [N*h*w], loss terms)."""
        n, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        e = self.codebook
        with torch.no_grad():  # argmin_j ||z - e_j||^2 = argmin_j (||e_j||^2 - 2 z.e_j), as our kernel
            codes = ((e * e).sum(1) - 2.0 * flat @ e.t()).argmin(1)
        zq = F.embedding(codes, e).view(n, h, w, d).permute(0, 3, 1, 2).contiguous()
        loss = self.beta * F.mse_loss(z, zq.detach())
        if not self.use_ema:
            loss = loss + F.mse_loss(zq, z.detach())
        return z + (zq - z).detach(), codes, loss

    @torch.no_grad()
    def update_codebook(self, z, codes):
        """One EMA step from this step's z_e and code map (after the optimizer step, as ours)."""
        k, d = self.codebook.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        # Counts by index_add_ of ones, not bincount: bincount on cuda reads the largest code back to the host, which a
        # CUDA graph cannot capture. The counts are small integers, exact in float32: the same numbers either way.
        counts = torch.zeros(k, dtype=flat.dtype, device=flat.device).index_add_(0, codes, torch.ones_like(codes, dtype=flat.dtype))
        sums = torch.zeros_like(self.codebook).index_add_(0, codes, flat)
        sizes, ema_sums = self.ema.cluster_sizes, self.ema.embedding_sums
        sizes.mul_(self.decay).add_(counts, alpha=1.0 - self.decay)
        ema_sums.mul_(self.decay).add_(sums, alpha=1.0 - self.decay)
        total = sizes.sum()
        smoothed = (sizes + self.epsilon) / (total + k * self.epsilon) * total
        self.codebook.copy_(ema_sums / smoothed.unsqueeze(1))


class VqVae(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.encoder = Encoder(c)
        self.quantizer = VectorQuantizer(c)
        self.decoder = Decoder(c)

    def forward(self, x):
        z = self.encoder(x)
        zq, codes, vq_loss = self.quantizer(z)
        return self.decoder(zq), z, codes, vq_loss


# ---- safetensors by hand (8-byte little-endian header length, JSON header, raw little-endian data) ----

DTYPES = {"F32": np.float32, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """{name: tensor} and the metadata of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in DTYPES:
            raise SystemExit(f"{path}: tensor '{name}' is {info['dtype']}; this script reads {', '.join(DTYPES)}")
        start, end = info["data_offsets"]
        array = np.frombuffer(data[8 + length + start:8 + length + end], np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        tensors[name] = torch.from_numpy(array.astype(DTYPES[info["dtype"]]).reshape(info["shape"]))
    return tensors, header.get("__metadata__", {})


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        array = t.detach().cpu().contiguous().numpy()
        dtype = {np.dtype(v): k for k, v in DTYPES.items()}[array.dtype]
        blob = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)  # data 8-byte aligned, as ours writes it
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


def load_weights(model, path):
    """Our state dict or checkpoint (whose optimizer.* and trainer.* entries are not the model's), strictly."""
    state = {k: v for k, v in read_safetensors(path)[0].items() if not k.startswith(("optimizer.", "trainer."))}
    ours = model.state_dict()
    problems = [f"{k} is {list(v.shape)} in the file, {list(ours[k].shape)} in the model" for k, v in state.items() if k in ours and v.shape != ours[k].shape]
    problems += [f"{k} is missing" for k in ours if k not in state] + [f"{k} is not the model's" for k in state if k not in ours]
    if problems:  # one line per problem, the first ones: load_state_dict's own message is long and ends in the least useful part
        raise SystemExit(f"{path} does not fit the model of this config: " + "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else ""))
    model.load_state_dict(state, strict=True)


# ---- timing ----

def percentile(sorted_values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    position = (len(sorted_values) - 1) * q
    lower = int(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * (position - lower)


def adam(model, capturable=False):
    """Our Adam's defaults; with EMA the codebook is not among the parameters it updates (ours gives it a zero gradient).
    capturable: keeps Adam's step count on the device, so a CUDA graph can capture its update."""
    extra = dict(capturable=True) if capturable else {}
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-4, betas=(0.9, 0.999), eps=1e-8, **extra)


def training_step(model, optimizer, x, forward):
    """One step as VqVaeTrainer.TrainStep; returns the reconstruction loss and the quantizer's term (beta * commitment [+ codebook])."""
    optimizer.zero_grad(set_to_none=True)
    reconstruction, z, codes, vq_loss = forward(x)
    mse = F.mse_loss(reconstruction, x)
    (mse + vq_loss).backward()
    optimizer.step()
    if model.quantizer.use_ema:
        model.quantizer.update_codebook(z.detach(), codes)
    return mse, vq_loss


def first_line(e):
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def capture_step(model, optimizer, x):
    """The whole training step as one CUDA graph (PyTorch's whole-network capture recipe): a few eager steps on a side
    stream first (cuBLAS/cuDNN workspaces and Adam's state exist before capture), then one captured step. Replaying the
    graph recomputes the gradients into the same tensors (captured with set_to_none, so written, not accumulated)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            training_step(model, optimizer, x, model)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        training_step(model, optimizer, x, model)
    return graph.replay


INTERLEAVED_RUN = 5  # StepBenchmark.InterleavedRun


def time_steps(args, config, model, device):
    generator = torch.Generator().manual_seed(args.seed)
    x = torch.rand(args.batch, config["input_channels"], config["image_size"], config["image_size"], generator=generator).to(device)
    mode, notes = args.mode, []
    asked = "--compile" if args.compile else f"--mode {mode}"  # notes name the option as it was given
    if mode == "graph" and device.type != "cuda":
        notes.append("--mode graph: CUDA graphs need --device cuda; ran eagerly")
        mode = "eager"
    optimizer = adam(model, capturable=(mode == "graph"))
    forward = model

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def eager_step():
        training_step(model, optimizer, x, forward)

    step = eager_step
    if mode == "compile":
        if not hasattr(torch, "compile"):
            notes.append(f"{asked}: torch {torch.__version__} has no torch.compile; ran eagerly")
            mode = "eager"
        else:
            forward = torch.compile(model)
            try:  # compilation happens at the first call; failures show there
                eager_step()
                sync()
            except Exception as e:  # noqa: BLE001 — any compiler failure means: measure eagerly instead
                notes.append(f"{asked}: torch.compile failed ({first_line(e)}); ran eagerly")
                forward, mode = model, "eager"
    elif mode == "graph":
        try:
            step = capture_step(model, optimizer, x)
            step()
            sync()
        except Exception as e:  # noqa: BLE001 — a capture failure means: measure eagerly instead
            notes.append(f"--mode graph: capture failed ({first_line(e)}); ran eagerly")
            # Adam's state may be half-made by the failed capture: a fresh optimizer for the eager steps.
            try:
                torch.cuda.synchronize()
            except Exception as e2:  # noqa: BLE001 — the eager steps will say whether the device is still usable
                notes.append(f"after the failed capture: {first_line(e2)}")
            optimizer, step, mode = adam(model), eager_step, "eager"
    for note in notes:
        print(note, file=sys.stderr)
    for _ in range(args.warmup):
        step()
    sync()
    time_inference(model, x, forward, sync)
    # Runs of INTERLEAVED_RUN timed steps and as many timed forwards alone, in turn, as in our bench: both medians see the
    # same minutes of the machine, and each step or forward follows one of its own kind.
    times, inference = [], []
    while len(times) < args.repetitions:
        run = min(INTERLEAVED_RUN, args.repetitions - len(times))
        for _ in range(run):
            start = time.perf_counter()
            step()
            sync()
            times.append((time.perf_counter() - start) * 1e3)
        for _ in range(run):
            inference.append(time_inference(model, x, forward, sync))
    return sorted(times), mode, notes, statistics.median(inference)


def time_inference(model, x, forward, sync):
    """Ms of one forward alone on the batch, in eval mode without autograd: the peer of our `inference_ms` (one sample)."""
    model.eval()
    try:
        with torch.no_grad():
            start = time.perf_counter()
            forward(x)
            sync()
            return (time.perf_counter() - start) * 1e3
    finally:
        model.train()


def main():
    p = argparse.ArgumentParser(description="Times one VQ-VAE training step in PyTorch (the peer of `vqvae bench --step`).")
    p.add_argument("--config", help="VqVaeConfig as JSON (a file, e.g. a run's config.json, or a string); missing fields take our defaults; "
                                   "without it, the config in --load's metadata (our checkpoints carry one), else our defaults")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=0, help="intra-op and inter-op threads (0: PyTorch's choice)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repetitions", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--mode", choices=["eager", "graph", "compile"], default="eager",
                   help="eager; graph: the whole step captured as one CUDA graph and replayed (cuda); compile: torch.compile of the "
                        "model (PyTorch 2.x). A mode that fails falls back to eager with a message (the result's notes)")
    p.add_argument("--compile", action="store_true", help="the same as --mode compile")
    p.add_argument("--tf32", action="store_true", help="allow TF32 in convolutions and matmuls on cuda")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--describe", action="store_true", help="print {name: shape} of the state dict and exit")
    p.add_argument("--init-stats", action="store_true", help="print {name: [min, max]} of the freshly initialised state dict and exit")
    p.add_argument("--load", help="load weights from a safetensors state dict or checkpoint of ours")
    p.add_argument("--reconstruct", nargs=2, metavar=("IN", "OUT"),
                   help="one forward of IN's tensor 'x' [N,C,S,S]; writes z_e, codes (int32 [N,h,w]) and reconstruction to OUT; no timing")
    p.add_argument("--train-step", nargs=2, metavar=("IN", "OUT"),
                   help="one training step (the timed one) on IN's tensor 'x'; writes the state dict after it and the losses to OUT; no timing")
    args = p.parse_args()
    if args.compile:
        args.mode = "compile"

    if args.config is not None:
        text = open(args.config).read() if os.path.isfile(args.config) else args.config
    else:
        text = read_safetensors(args.load)[1].get("config", "{}") if args.load else "{}"
    given = json.loads(text)
    unknown = sorted(set(given) - set(DEFAULT_CONFIG))
    if unknown:  # a field this script does not build would make it another model than ours
        raise SystemExit(f"config fields this script does not know: {', '.join(unknown)}; it knows {', '.join(DEFAULT_CONFIG)}")
    config = dict(DEFAULT_CONFIG, **given)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch.cuda.is_available() is false")
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    device = torch.device(args.device)

    torch.manual_seed(args.seed)
    model = VqVae(config)
    if args.describe:
        print(json.dumps({name: list(t.shape) for name, t in model.state_dict().items()}))
        return
    if args.init_stats:
        print(json.dumps({name: [t.min().item(), t.max().item()] for name, t in model.state_dict().items()}))
        return
    if args.load:
        load_weights(model, args.load)
    model.to(device)

    if args.reconstruct:
        x = read_safetensors(args.reconstruct[0])[0]["x"].to(device)
        with torch.no_grad():
            reconstruction, z, codes, _ = model(x)
        n, _, h, w = z.shape
        write_safetensors(args.reconstruct[1], {"z_e": z, "codes": codes.view(n, h, w).to(torch.int32), "reconstruction": reconstruction})
        return
    if args.train_step:
        x = read_safetensors(args.train_step[0])[0]["x"].to(device)
        mse, vq_loss = training_step(model, adam(model), x, model)
        write_safetensors(args.train_step[1], dict(model.state_dict(), **{"loss.reconstruction": mse.detach().reshape(1),
                                                                           "loss.quantizer": vq_loss.detach().reshape(1)}))
        return

    times, mode, notes, inference = time_steps(args, config, model, device)
    median = statistics.median(times)
    result = dict(step_ms=median, step_ms_min=times[0], step_ms_max=times[-1], step_ms_p10=percentile(times, 0.1),
                  step_ms_p90=percentile(times, 0.9), images_per_second=args.batch * 1e3 / median,
                  inference_ms=inference, inference_images_per_second=args.batch * 1e3 / inference, torch_version=torch.__version__,
                  threads=torch.get_num_threads(), batch=args.batch, device=args.device,
                  parameter_count=sum(p.numel() for p in model.parameters()), repetitions=args.repetitions, warmup=args.warmup,
                  compiled=(mode == "compile"), mode=mode, mode_requested=args.mode, tf32=args.tf32, notes=notes)
    print(f"torch {result['torch_version']} {args.device}: {median:.2f} ms per step (p10 {result['step_ms_p10']:.2f}, p90 {result['step_ms_p90']:.2f}), "
          f"{result['images_per_second']:.1f} images/s, forward alone {inference:.2f} ms, batch {args.batch}, {result['threads']} threads, {result['parameter_count']} parameters"
          + ("" if mode == "eager" else f", {mode}") + (", TF32" if args.tf32 else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
