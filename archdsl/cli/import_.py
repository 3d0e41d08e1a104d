"""``archdsl import SOURCE``: a spec from a torchvision or timm model, or a checkpoint."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

_ASSUMED = "sets what a checkpoint cannot tell"


def _size(text: str) -> int | list[int]:
    m = re.fullmatch(r"(\d{1,5})(?:x(\d{1,5}))?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"expected N or HxW such as 224 or 160x192, got "
                                         f"{text!r}")
    h, w = int(m.group(1)), int(m.group(2) or m.group(1))
    return h if h == w else [h, w]


def _strides(text: str) -> list[int]:
    if not re.fullmatch(r"\d(,\d){0,63}", text.strip()):
        raise argparse.ArgumentTypeError(f"expected one stride a stage such as 1,2,2,2, got "
                                         f"{text!r}")
    return [int(s) for s in text.split(",")]


def _dilations(text: str) -> list[int]:
    if not re.fullmatch(r"\d{1,2}(,\d{1,2}){1,3}", text.strip()):
        raise argparse.ArgumentTypeError(f"expected a dilation a path (2 to 4 paths) such "
                                         f"as 1,2, got {text!r}")
    return [int(s) for s in text.split(",")]


def _bool(text: str) -> bool:
    if text.strip().lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.strip().lower() == "true"


def _antialias(text: str) -> dict[str, Any] | None:
    m = re.fullmatch(r"(none|blur|avg)(?::([35]))?", text.strip())
    if not m or (m.group(1) != "blur" and m.group(2)):
        raise argparse.ArgumentTypeError(f"expected none, avg, blur or blur:SIZE (3 or 5), "
                                         f"got {text!r}")
    if m.group(1) == "none":
        return None
    return {"kind": m.group(1), "size": int(m.group(2) or 3)}


def _flags() -> list[tuple[str, str, dict[str, Any]]]:
    """(flag, import_spec override, argparse keywords) of each assumption a flag sets."""
    from ..blocks.common import Placement
    from ..blocks.shortcut import Shortcut
    from ..blocks.stems import StemPool
    from ..spec.fields import ActKind

    forms = Shortcut.model_fields["form"].annotation.__args__  # type: ignore[union-attr]
    return [
        ("--input-size", "input_size", {"type": _size, "metavar": "N|HxW",
                                        "help": "input size (default 224; 32 with a CIFAR "
                                                "stem)"}),
        ("--strides", "strides", {"type": _strides, "metavar": "S,S,…",
                                  "help": "each stage's stride (default 1,2,2,2 where the "
                                          "projections do not show otherwise)"}),
        ("--stride-on", "stride_on", {"choices": ("1x1", "3x3"),
                                      "help": "where a bottleneck strides: 3x3 (v1.5, "
                                              "default) or 1x1 (MSRA)"}),
        ("--stem-pool", "stem_pool", {"choices": [v for v in StemPool.__args__ if v != "conv"],
                                      "help": "the stem max-pool: padded (max, default), ceil "
                                              "mode (max_ceil) or after a zero pad "
                                              "(zero_pad_max, BiT)"}),
        ("--anti-alias", "antialias", {"type": _antialias, "default": False,
                                       "metavar": "none|avg|blur[:5]",
                                       "help": "anti-aliased downsampling (default none; blur "
                                               "where a conv stem pool shows one)"}),
        ("--downsample", "downsample", {"choices": ("conv", "avgpool"),
                                        "help": "ResNet-v2's projection: strided conv "
                                                "(default) or average pool first"}),
        ("--conv", "conv", {"choices": ("plain", "standardized"),
                            "help": "weight standardisation (default plain; BiT's is "
                                    "standardized)"}),
        ("--conv-eps", "conv_eps", {"type": float, "metavar": "EPS",
                                    "help": "ε of standardized convs (default 1e-6; BiT's "
                                            "1e-8)"}),
        ("--norm-groups", "norm_groups", {"type": int, "metavar": "N",
                                          "help": "groups of a group norm or EvoNorm-S0 "
                                                  "(default 32)"}),
        ("--norm-group-size", "norm_group_size", {
            "type": int, "metavar": "N",
            "help": "channels a group instead of --norm-groups (timm's GroupNormAct"
                    "(group_size=16))"}),
        ("--norm-eps", "norm_eps", {"type": float, "metavar": "EPS",
                                    "help": "ε of a group norm, EvoNorm-S0 or FRN (default "
                                            "1e-5)"}),
        ("--se-rounding", "se", {"choices": ("floor", "divisor8", "round"),
                                 "help": "SE's rounding where both give the checkpoint's "
                                         "widths (default divisor8; floor with senet.py's "
                                         "names)"}),
        ("--placement", "placement", {"choices": Placement.__args__,
                                      "help": "where BN and ReLU sit (default post)"}),
        ("--shortcut-form", "form", {"choices": forms,
                                     "help": "the shortcut's form (default identity; "
                                             "exclusive_gating where gates show)"}),
        ("--shortcut-scale", "scale", {"type": float, "metavar": "λ",
                                       "help": "a scaled shortcut's λ (implies "
                                               "--shortcut-form scaling)"}),
        ("--shortcut-dropout", "shortcut_dropout", {
            "type": float, "metavar": "P",
            "help": "a dropout shortcut's p (implies --shortcut-form dropout)"}),
        ("--dropout", "dropout", {"type": float, "metavar": "P",
                                  "help": "dropout before the classifier (default 0)"}),
        ("--act", "act", {"choices": ActKind.__args__,
                          "help": "the activation (default relu; RegNetV/Z's silu)"}),
        ("--head-act", "head_act", {"type": _bool, "metavar": "true|false",
                                    "help": "a final activation before the pool, without a "
                                            "norm (default false; regnetz_040's true)"}),
        ("--avd", "avd", {"choices": ("after", "before", "none"),
                          "help": "ResNeSt's strided average pool: after the split-attention "
                                  "conv (default), before it (resnest50d_4s2x40d) or none"}),
        ("--sk-dilations", "sk_dilations", {
            "type": _dilations, "metavar": "D,D,…",
            "help": "each selective-kernel path's dilation (default 1,2: timm's 3x3 and "
                    "5x5)"}),
    ]


SHORTCUT = ("form", "scale", "shortcut_dropout")  # flags that make one shortcut_form


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import", help="write the spec of a torchvision/timm model or a checkpoint",
        description="Write the spec of an existing network: torchvision:NAME or timm:NAME "
                    "(instantiated on the meta device and read from its module types and "
                    "attributes, so nothing is assumed), or a checkpoint file (.pth/.pt read "
                    "with torch.load(weights_only=True), or .safetensors) whose architecture "
                    "is inferred from its keys and shapes alone. What a checkpoint cannot "
                    "tell is assumed and marked with a comment on its field naming the flag "
                    "below that sets it. The spec is checked before it is written: its model "
                    "holds exactly the source's keys at their shapes. A source archdsl "
                    "cannot say is refused in one line, exit 2 (docs/import.md).")
    p.add_argument("source", metavar="SOURCE",
                   help="torchvision:NAME, timm:NAME, or a checkpoint file")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the spec here (atomically) instead of to stdout")
    p.add_argument("--name", help="the spec's name (default: the model's, or the file's stem)")
    p.add_argument("--classes", type=int, metavar="N",
                   help="classes of the classifier, for a head-less checkpoint")
    p.add_argument("--ema", action="store_true",
                   help="read a timm training checkpoint's EMA weights (state_dict_ema) "
                        "instead of its state_dict")
    g = p.add_argument_group(f"assumptions (each {_ASSUMED})")
    for flag, key, kwargs in _flags():
        g.add_argument(flag, dest=key, **kwargs)
    p.set_defaults(run=run)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given, as ``import_spec``'s overrides."""
    given = {key: getattr(args, key) for key in ("name", "classes")}
    given.update((key, getattr(args, key)) for _, key, _ in _flags())
    # --anti-alias none gives None, so its "not given" is False
    out = {k: v for k, v in given.items()
           if (v is not None or k == "antialias") and v is not False and k not in SHORTCUT}
    shortcut = {k: given[k] for k in SHORTCUT if given[k] is not None}
    if shortcut:
        form = shortcut.get("form") or ("scaling" if "scale" in shortcut else "dropout")
        out["shortcut_form"] = {"form": form, **{("dropout" if k == "shortcut_dropout" else k): v
                                                 for k, v in shortcut.items() if k != "form"}}
    return out


def schema_path(output: str | None) -> str | None:
    """The modeline's schema, relative to the output's folder, where this checkout has
    the schema file; else None (the schema's URL)."""
    schema = Path(__file__).resolve().parents[2] / "schema" / "archdsl.schema.json"
    if not schema.is_file():
        return None
    folder = Path(output).resolve().parent if output else Path.cwd()
    return Path(os.path.relpath(schema, folder)).as_posix()


def run(args: argparse.Namespace) -> int:
    from ..bundle import atomic_file
    from ..importer.read import import_spec

    text = import_spec(args.source, overrides(args), schema=schema_path(args.output),
                       ema=args.ema)
    if not args.output:
        sys.stdout.write(text)
        return 0
    with atomic_file(args.output) as tmp:
        tmp.write_text(text, encoding="utf-8")
    assumed = text.count("assumed: ")  # stage fields may share the stages line
    print(f"{args.output}: written; " + (f"{assumed} field(s) assumed, each marked "
                                         "'# assumed:'" if assumed else "nothing assumed"),
          file=sys.stderr)
    return 0
