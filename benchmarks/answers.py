"""Every answer archdsl gives, as digests: record them on one commit, check them on another.

A change that must change no answer (a refactor) is held to this. For every shipped spec
and ablation: counts per node under every convention (JSON), every profile's plan (JSON,
text and Markdown), the DOT diagram at every level, the generated Python and the default
bundle's files; ``archdsl import`` of every timm ResNet-family architecture (by name);
the YAML ``archdsl import`` writes from each shipped spec's state_dict (meta device);
the JSON Schemas and the spec reference. Everything runs through ``archdsl.cli.main`` in
this process, so the answers are the CLI's own.

    python benchmarks/answers.py record answers.json   # on the commit before
    python benchmarks/answers.py check answers.json    # on the commit after: lists changes

benchmarks/answers/main-239cdb7.json holds the answers of main before #33's restructuring
(``check`` it to see what any later commit changed since).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's archdsl, whatever is installed

LEVELS = ("stage", "block", "layer")


def _run(argv: list[str]) -> str:
    """The digest of what ``archdsl ARGV`` prints (stdout), with its exit status."""
    from archdsl.cli.main import main

    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    out.flush()
    data = out.buffer.getvalue() if rc == 0 else f"exit {rc}: {err.getvalue()}".encode()
    return hashlib.sha256(data).hexdigest()


def _digest_files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def _imported(path: Path) -> str:
    """The digest of the YAML imported from the state_dict of ``path``'s module."""
    import torch

    from archdsl import build_model, import_spec
    from archdsl.load import load_spec

    with torch.device("meta"):
        state = build_model(load_spec(path)).state_dict()
    return hashlib.sha256(import_spec(state).encode()).hexdigest()


def answers(timm: bool) -> dict[str, str]:
    """Case name -> digest of its output."""
    from archdsl.analysis.counts import CONVENTIONS

    profiles = sorted(p.stem for p in (ROOT / "archdsl/fusion/profiles").glob("*.yaml"))
    out: dict[str, str] = {}
    for spec in sorted((ROOT / "specs").rglob("*.yaml")):
        s = str(spec.relative_to(ROOT))
        for conv in CONVENTIONS:
            out[f"{s} count {conv}"] = _run(["count", s, "--by", "node", "--format", "json",
                                             "--convention", conv])
        for profile in profiles:
            for fmt in ("json", "text", "markdown"):
                out[f"{s} plan {profile} {fmt}"] = _run(["plan", s, "--device", profile,
                                                        "--format", fmt])
        for level in LEVELS:
            out[f"{s} diagram {level}"] = _run(["diagram", s, "--level", level, "--format",
                                                "dot", "-o", "-"])
        with tempfile.TemporaryDirectory() as tmp:
            bundle = Path(tmp) / "bundle"
            _run(["build", s, "-o", str(bundle)])
            for name, digest in _digest_files(bundle).items():
                out[f"{s} bundle {name}"] = digest
        out[f"{s} import state_dict"] = _imported(spec)
    if timm:
        from timm_family import all_names  # every registered ResNet-family architecture

        for arch in all_names():
            out[f"import timm:{arch}"] = _run(["import", f"timm:{arch}"])
    for path in sorted([*(ROOT / "schema").glob("*.json"), ROOT / "docs/spec-reference.md"]):
        out[str(path.relative_to(ROOT))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("record", "check"))
    parser.add_argument("file", type=Path)
    parser.add_argument("--no-timm", action="store_true", help="skip the 110 timm imports")
    args = parser.parse_args()
    now = answers(timm=not args.no_timm)
    if args.mode == "record":
        args.file.write_text(json.dumps(now, indent=0, sort_keys=True) + "\n")
        print(f"{len(now)} answers recorded in {args.file}")
        return 0
    before = json.loads(args.file.read_text())
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    for k in changed:
        print(f"changed: {k}" if k in before and k in now else
              f"{'new' if k in now else 'gone'}: {k}")
    print(f"{len(now) - len(changed)} of {len(now)} answers unchanged, {len(changed)} changed")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
