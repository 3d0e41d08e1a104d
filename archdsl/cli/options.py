"""Argument types shared by several commands."""

from __future__ import annotations

import argparse
import re


def input_shape(text: str) -> tuple[int, int, int]:
    """``CxHxW`` (e.g. 3x224x224) as a tuple of positive ints."""
    m = re.fullmatch(r"(\d{1,5})x(\d{1,5})x(\d{1,5})", text.strip())
    if not m or min(map(int, m.groups())) < 1:
        raise argparse.ArgumentTypeError(f"expected CxHxW such as 3x224x224, got {text!r}")
    c, h, w = map(int, m.groups())
    return c, h, w


def add_input(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=input_shape, metavar="CxHxW",
                   help="count at this input shape instead of the spec's (e.g. 3x160x192)")


def add_convention(p: argparse.ArgumentParser) -> None:
    from ..analysis.counts import CONVENTIONS

    p.add_argument("--convention", choices=CONVENTIONS, default="conv+linear",
                   help="conv+linear: MACs of convolutions and linear layers only "
                        "(torchvision's, FlopCounterMode/2); all: also BN, activations, "
                        "pooling, the residual add and SE's pool/sigmoid/scale, each as "
                        "documented in docs/counting.md; fvcore, ptflops, ptflops-aten, thop, "
                        "torchinfo: exactly what that tool reports for the torchvision/timm "
                        "model (its pinned release; docs/counting.md says what each counts) "
                        "(default: conv+linear)")
