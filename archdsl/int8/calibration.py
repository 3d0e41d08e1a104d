"""Calibration inputs: images from a folder, preprocessed as ImageNet evaluation does, or
synthetic ones (which calibrate nothing real, and say so)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..spec.errors import SpecError

SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CROP = 0.875  # the centre crop's share of the resized image (timm's crop_pct; 224/256)
PREPROCESSING = (f"resize the shorter side to size/{CROP}, centre-crop to the input size, "
                 f"values in [0, 1]; RGB normalised by mean {MEAN} and std {STD}, "
                 "grayscale (1 channel) not")
SYNTHETIC = ("calibrating on synthetic inputs (standard normal): no real calibration; pass "
             "--calibration DIR for images")


def _bad(path: str | os.PathLike[str], what: str) -> SpecError:
    return SpecError(what, file=str(path), field="--calibration")


def load_images(folder: str | os.PathLike[str], shape: tuple[int, ...], limit: int
                ) -> list[np.ndarray]:
    """Up to ``limit`` images from ``folder`` (sorted by name, not recursive), each as a
    (1, C, H, W) float32 array for an input of ``shape`` (C, H, W), preprocessed as
    PREPROCESSING says. Raises SpecError (one line) for a missing or empty folder or a file
    that is no image."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise _bad(folder, "reading images needs Pillow (pip install pillow)") from exc
    root = Path(folder)
    if not root.is_dir():
        raise _bad(folder, "no such folder")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
    if not files:
        raise _bad(folder, f"no images in the folder; allowed: {', '.join(SUFFIXES)}")
    c, h, w = shape
    if c not in (1, 3):
        raise _bad(folder, f"images give 1 (grayscale) or 3 (RGB) channels; the spec's input "
                           f"has {c}")
    out = []
    for p in files[:limit]:
        try:
            with Image.open(p) as im:
                im = im.convert("RGB" if c == 3 else "L")
                scale = max(h, w) / CROP / min(im.size)
                im = im.resize((max(w, round(im.width * scale)),
                                max(h, round(im.height * scale))), Image.BILINEAR)
                left, top = (im.width - w) // 2, (im.height - h) // 2
                a = np.asarray(im.crop((left, top, left + w, top + h)), np.float32) / 255
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise _bad(p, f"not a readable image ({exc.__class__.__name__})") from exc
        a = a.reshape(h, w, c).transpose(2, 0, 1)
        if c == 3:
            a = (a - np.array(MEAN, np.float32)[:, None, None]) / np.array(
                STD, np.float32)[:, None, None]
        out.append(a[None].astype(np.float32))
    return out


def synthetic(shape: tuple[int, ...], n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` standard-normal (1, C, H, W) inputs, reproducible by ``seed``."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1, *shape), dtype=np.float32) for _ in range(n)]
