"""Side-by-side inference benchmark of every deployment path of one architecture, on the
CPU or on a CUDA GPU.

Variants are timed interleaved (one call of each per round, each round starting one
variant later) so that a noisy machine slows all of them alike; medians and spread are
reported, with ratios to the eager twin (or to archdsl eager where the spec has no
torchvision/timm twin) and to each engine on the twin's export. On CUDA each call is timed
by CUDA events (the GPU's time, launches included), after a warm-up.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .emit.onnx import export_onnx
from .emit.torch import build_model
from .fusion.executor import fuse
from .fusion.planner import plan_for
from .ir.graph import Graph

Fn = Callable[[torch.Tensor], Any]
PAUSE_S = 0.05
AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Result:
    name: str
    times: list[float] = field(default_factory=list)
    skipped: str = ""
    setup_s: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def spread(self) -> tuple[float, float]:
        q = statistics.quantiles(self.times, n=4) if len(self.times) > 1 else [self.median] * 3
        return q[0], q[2]


def twin(graph: Graph) -> torch.nn.Module | None:
    """The torchvision or timm model of the same name, if one exists."""
    import torchvision

    if hasattr(torchvision.models, graph.name):
        return getattr(torchvision.models, graph.name)()
    try:
        import timm

        return timm.create_model(graph.name, pretrained=False)
    except Exception:  # noqa: BLE001 (no twin under that name, or no timm)
        return None


def _ort(path: Path, threads: int) -> Fn:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    # the paths run interleaved: ORT's threads must not spin on after a run, burning the
    # cores the next path's run needs (with spinning, OpenVINO's fp32 ran 2.2x slower and
    # ORT's int8 no faster than its fp32 at batch 1: benchmarks/int8.py, docs/benchmarks.md)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"input": x.numpy()})


def _openvino(path: Any, threads: int) -> Fn:
    """OpenVINO's CPU plugin at f32 inference precision on an ONNX file or an ov.Model."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(path) if isinstance(path, Path) else path, "CPU", {
        "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()
    return lambda x: request.infer({0: x.numpy()})


def built_and_twin(graph: Graph, log: Callable[[str], None]
                   ) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """archdsl's module and its twin (None without one), both in eval mode, with the
    twin's weights: every path runs the same weights, since engines' speed varies by some
    percent with the random draw alone, which would otherwise pass for a difference
    between exports."""
    model = build_model(graph).eval()
    ref = twin(graph)
    if ref is None:
        return model, None
    try:
        model.load_state_dict(ref.state_dict())
    except RuntimeError as exc:  # a spec that only shares the twin's name
        log(f"no twin: {graph.name}'s torchvision/timm model has other weights "
            f"({str(exc).splitlines()[0][:80]})")
        return model, None
    return model, ref.eval()


def int8_variants(graph: Graph, plain_export: Callable[[], Path], tmp: Path, threads: int
                  ) -> list[tuple[str, Callable[[], Fn]]]:
    """Each engine's int8 model of archdsl's plain export, quantized as ``archdsl
    quantize`` does (its settings for this CPU) on 16 synthetic calibration inputs."""
    from .int8 import calibration, engines
    from .int8.settings import choose

    data = calibration.synthetic(graph.input.shape, 16)

    def ort_int8() -> Fn:
        engines.ort_prepare(plain_export(), tmp / "pre.onnx")
        engines.ort_quantize(tmp / "pre.onnx", tmp / "int8.onnx", data,
                             choose("onnxruntime", len(data)), [])
        return _ort(tmp / "int8.onnx", threads)

    def ov_int8() -> Fn:
        return _openvino(engines.ov_quantize(plain_export(), data,
                                             choose("openvino", len(data)), []), threads)

    return [("onnxruntime int8, plain export", ort_int8),
            ("openvino int8, plain export", ov_int8)]


def variants(graph: Graph, threads: int, device: str, log: Callable[[str], None],
             scope: contextlib.ExitStack, int8: bool = False
             ) -> list[tuple[str, Callable[[], Fn]]]:
    """(name, setup) pairs; a setup returns the callable to time, or raises to skip. What
    a setup changes or writes (Inductor's freezing setting, the ONNX exports' temporary
    folder) lasts until ``scope`` closes, once the timing is done."""
    tmp = Path(scope.enter_context(tempfile.TemporaryDirectory(prefix="archdsl-bench-")))
    model, ref = built_and_twin(graph, log)
    fused = fuse(model, device)

    def no_grad(m: torch.nn.Module) -> Fn:
        def run(x: torch.Tensor) -> Any:
            with torch.inference_mode():
                return m(x)
        return run

    def channels_last() -> Fn:
        m = fuse(model, device).to(memory_format=torch.channels_last)
        return lambda x: no_grad(m)(x.contiguous(memory_format=torch.channels_last))

    def scripted() -> Fn:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = torch.jit.optimize_for_inference(torch.jit.freeze(
                torch.jit.trace(model, torch.zeros(1, *graph.input.shape)).eval()))
        return no_grad(m)

    def inductor(m: torch.nn.Module) -> Callable[[], Fn]:
        def setup() -> Fn:
            import torch._inductor.config as cfg

            scope.enter_context(cfg.patch(freezing=True))  # read when the warm-up compiles
            return no_grad(torch.compile(m))
        return setup

    plan = plan_for(graph, device)

    def without(*rules: str) -> torch.nn.Module:
        """The module fused by the plan less the groups of ``rules``."""
        return fuse(model, replace(plan, groups=tuple(
            g for g in plan.groups if not set(rules) & set(g.rules or (g.rule,)))))

    def ort_fused_unmerged() -> Fn:
        # ONNX Runtime fuses BN itself, and a merged conv's split (Slice) keeps its own
        # NCHWc layout passes from fusing the branch: export only what ORT can't do itself
        # (kernel-1 pooling and the sum merge), so that its optimiser does the rest.
        path = tmp / "fused_unmerged.onnx"
        export_onnx(without("horizontal_merge"), path)
        return _ort(path, threads)

    def export(name: str, m: torch.nn.Module | None) -> Callable[[], Path]:
        """The module's ONNX file, written once for every engine that runs it."""
        def make() -> Path:
            if m is None:
                raise RuntimeError("no torchvision/timm twin")
            path = tmp / f"{name}.onnx"
            if not path.exists():
                export_onnx(m, path, input_shape=graph.input.shape)
            return path
        return make

    twin_export, plain_export = export("twin", ref), export("plain", model)
    fused_export = export("fused", fused)
    summed = any("sum_merge" in (g.rules or ()) for g in plan.groups)
    unsummed = without("sum_merge") if summed else None
    unsummed_export = export("fused_unsummed", unsummed)

    def on_openvino(make: Callable[[], Path]) -> Callable[[], Fn]:
        return lambda: _openvino(make(), threads)

    out: list[tuple[str, Callable[[], Fn]]] = []
    if ref is not None:
        out.append(("twin eager", lambda: no_grad(ref.eval())))
    out += [("archdsl eager", lambda: no_grad(model)),
            (f"archdsl fused ({device})", lambda: no_grad(fused)),
            ("fused + channels_last", channels_last),
            ("jit.freeze + optimize_for_inference", scripted),
            ("inductor (freezing), fused", inductor(fused)),
            ("onnxruntime, twin export", lambda: _ort(twin_export(), threads)),
            ("onnxruntime, plain export", lambda: _ort(plain_export(), threads)),
            ("onnxruntime, fused export", lambda: _ort(fused_export(), threads)),
            ("onnxruntime, fused export, no merges", ort_fused_unmerged),
            ("openvino, twin export", on_openvino(twin_export)),
            ("openvino, plain export", on_openvino(plain_export)),
            ("openvino, fused export", on_openvino(fused_export))]
    if unsummed is not None:  # the sum merge's effect, engine by engine (docs/fusion.md)
        out += [(f"archdsl fused ({device}), no sum merge", lambda: no_grad(unsummed)),
                ("inductor (freezing), fused, no sum merge", inductor(unsummed)),
                ("onnxruntime, fused export, no sum merge",
                 lambda: _ort(unsummed_export(), threads)),
                ("openvino, fused export, no sum merge", on_openvino(unsummed_export))]
    return out + (int8_variants(graph, plain_export, tmp, threads) if int8 else [])


def cuda_variants(graph: Graph, device: str, autocast: str | None, channels_last: bool,
                  log: Callable[[str], None], on: str = "cuda",
                  ) -> list[tuple[str, Callable[[], Fn]]]:
    """(name, setup) pairs on the GPU: the twin and archdsl's module eager, the fused module,
    and ``torch.compile`` (default mode) of the twin and of the fused module. With
    ``autocast`` the twin and archdsl eager run under ``torch.autocast`` with float32
    weights, the fused module holds weights folded in float32 and cast once to that dtype
    (and reads the input in it); ``channels_last`` converts every module and the input.
    ``on``: the torch device (another than cuda only to test these variants)."""
    dt = AUTOCAST[autocast] if autocast else None
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    torch._dynamo.reset()  # once: a reset between compiles would discard the first's code
    model, ref = built_and_twin(graph, log)
    model, ref = model.to(on), ref.to(on) if ref is not None else None

    def call(m: torch.nn.Module, cast: bool = False) -> Fn:
        m = m.to(memory_format=fmt)

        def fn(x: torch.Tensor) -> Any:
            x = x.contiguous(memory_format=fmt)
            amp = torch.autocast(on, dtype=dt) if dt and not cast else \
                contextlib.nullcontext()
            with torch.inference_mode(), amp:
                return m(x.to(dt) if cast else x)
        return fn

    def fused() -> torch.nn.Module:
        return fuse(model, device, dtype=dt)

    def compiled(make: Callable[[], torch.nn.Module], cast: bool = False) -> Callable[[], Fn]:
        def setup() -> Fn:
            return call(torch.compile(make().to(memory_format=fmt)), cast)
        return setup

    weights = f", {autocast} weights" if dt else ""
    out: list[tuple[str, Callable[[], Fn]]] = []
    if ref is not None:
        out.append(("twin eager", lambda: call(ref)))
    out += [("archdsl eager", lambda: call(model)),
            (f"archdsl fused ({device}{weights})", lambda: call(fused(), cast=dt is not None))]
    if ref is not None:
        out.append(("torch.compile, twin", compiled(lambda: ref)))
    out.append((f"torch.compile, fused ({device})",
                compiled(fused, cast=dt is not None)))
    return out


def _cuda_time(fn: Fn, x: torch.Tensor) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn(x)
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3


def _cpu_time(fn: Fn, x: torch.Tensor) -> float:
    # ONNX Runtime's and OpenVINO's idle threads spin for a while after a run; let them
    # stop so they don't steal the cores from the next variant
    time.sleep(PAUSE_S)
    t = time.perf_counter()
    fn(x)
    return time.perf_counter() - t


def run(graph: Graph, *, batch: int = 1, threads: int | None = None, repeat: int = 20,
        warmup: int = 3, device: str = "eager", only: tuple[str, ...] = (),
        on: str = "cpu", autocast: str | None = None, channels_last: bool = False,
        int8: bool = False, log: Callable[[str], None] = lambda s: None) -> list[Result]:
    """Time every variant (or those whose name contains one of ``only``) on ``batch``
    images, interleaved over ``repeat`` rounds, on the CPU or (``on="cuda"``) the GPU;
    ``int8`` adds each engine's int8 model of the plain export.
    The caller's process is left as it was: torch's thread count and Inductor's settings
    restored, the temporary exports removed."""
    with contextlib.ExitStack() as scope:
        scope.callback(torch.set_num_threads, torch.get_num_threads())
        threads = threads or torch.get_num_threads()
        torch.set_num_threads(threads)
        made = cuda_variants(graph, device, autocast, channels_last, log) if on == "cuda" \
            else variants(graph, threads, device, log, scope, int8)
        x = torch.randn(batch, *graph.input.shape, device=on)
        return time_variants([(n, s) for n, s in made if not only or any(o in n for o in only)],
                             x, repeat=repeat, warmup=warmup, log=log)


def time_variants(made: list[tuple[str, Callable[[], Fn]]], x: Any, *,
                  repeat: int = 20, warmup: int = 3,
                  log: Callable[[str], None] = lambda s: None) -> list[Result]:
    """Set up each variant (a setup that raises is skipped, with the reason), warm it up,
    and time the ready ones on ``x`` (a tensor, or what the variants take: a tuple of
    inputs), interleaved over ``repeat`` rounds."""
    cuda = isinstance(x, torch.Tensor) and x.is_cuda
    timer = _cuda_time if cuda else _cpu_time
    results, fns = [], []
    for name, setup in made:
        r = Result(name)
        start = time.perf_counter()
        try:
            fn = setup()
            for _ in range(warmup):
                fn(x)
            if cuda:
                torch.cuda.synchronize()
        except Exception as exc:  # noqa: BLE001 (a path this machine can't run: skip it)
            r.skipped = f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}"
            fn = None
        r.setup_s = time.perf_counter() - start
        log(f"ready: {name} ({r.setup_s:.1f} s)" if fn else f"skipped: {name}: {r.skipped}")
        results.append(r)
        fns.append(fn)
    ready = [(r, fn) for r, fn in zip(results, fns, strict=True) if fn is not None]
    for k in range(repeat):
        # each round starts one variant later: what runs before a variant (an engine whose
        # idle threads still spin, a cold cache) changes from round to round instead of
        # always favouring the same variant
        start = k % max(len(ready), 1)
        for r, fn in ready[start:] + ready[:start]:
            r.times.append(timer(fn, x))
        log(f"round {k + 1}/{repeat}")
    return results


def _engine_base(ok: list[Result], engine: str) -> Result | None:
    """The engine's run of the twin's export, or of archdsl's plain one without a twin."""
    by_name = {r.name: r for r in ok}
    return by_name.get(f"{engine}, twin export", by_name.get(f"{engine}, plain export"))


def table(results: list[Result], batch: int) -> str:
    ok = [r for r in results if r.times]
    base = next((r for r in ok if r.name == "twin eager"), ok[0])
    engines = [(e, b) for e in ("onnxruntime", "openvino") if (b := _engine_base(ok, e))]
    short = {"onnxruntime": "ORT", "openvino": "OV"}
    heads = "".join(f"{'vs ' + short[e] + ' ' + b.name.split(', ')[1].split()[0]:>12}"
                    for e, b in engines)
    lines = [f"{'variant':40} {'median ms':>10} {'IQR ms':>15} {'img/s':>8} "
             f"{'vs ' + base.name:>16} {heads}"]
    for r in results:
        if not r.times:
            lines.append(f"{r.name:40} skipped: {r.skipped}")
            continue
        lo, hi = r.spread()
        vs = "".join(f"{b.median / r.median:11.2f}x" for _, b in engines)
        extra = f"  (setup {r.setup_s:.0f} s)" if r.setup_s > 5 else ""
        lines.append(f"{r.name:40} {1e3 * r.median:10.2f} {1e3 * lo:7.2f}..{1e3 * hi:6.2f} "
                     f"{batch / r.median:8.1f} {base.median / r.median:15.2f}x {vs}{extra}")
    return "\n".join(lines) + "\n"


def to_json(results: list[Result], batch: int) -> list[dict[str, Any]]:
    return [{"variant": r.name, "batch": batch, "median_s": r.median if r.times else None,
             "times_s": r.times, "setup_s": r.setup_s, "skipped": r.skipped or None}
            for r in results]
