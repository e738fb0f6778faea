"""What every benchmark script shares: its flags (--json, --quick, --table) and how it writes results."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any, Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_TABLE = ROOT.parent / "shared" / "data" / "nb201_cifar10.csv"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10_train10k.npz"


def parser(description: str, *, table: bool = False) -> argparse.ArgumentParser:
    """An argument parser with the flags every benchmark takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    p.add_argument("--quick", action="store_true", help="a reduced run of the same code path (< 5 min on 2 cores)")
    if table:
        p.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="NAS-Bench-201-style CSV")
    return p


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    return f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def publish(name: str, results: dict[str, Any], markdown: str, json_path: Path | None, *, quick: bool,
            echo: bool = True) -> None:
    """Print the markdown table (unless not `echo`) and write it with the JSON to benchmarks/results/ (and to --json)."""
    if echo:
        print(markdown)
    suffix = "_quick" if quick else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    (RESULTS / f"{name}{suffix}.json").write_text(text)
    (RESULTS / f"{name}{suffix}.md").write_text(f"# {name}{' (quick)' if quick else ''}\n\nMachine: {machine()}\n\n{markdown}\n")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text)
