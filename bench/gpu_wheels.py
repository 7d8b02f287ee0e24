"""The wheels an offline GPU machine needs for gpu-check, resolved by pip, not listed by hand.

    python -m bench.gpu_wheels [--dest .whl] [--quack] [--check]     # make gpu-wheels

The GPU machine (Python 3.12, x86_64, torch 2.11 built for CUDA 13) has torch, triton and numpy;
what gpu-check adds (Hydra, Liger, QuACK and its CUTLASS DSL with the CUDA 13 libraries) is
resolved here by pip's own resolver for that platform (`pip install --dry-run --report`), with the
machine's torch, triton and numpy stood in by metadata-only stub wheels so that pip neither
fetches them nor their CUDA runtime. Every other wheel of the closure is downloaded into --dest.
--check resolves the downloaded set again with `--no-index` against itself (and the stubs): a
wheel missing from the set fails there, as it would on the machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PLATFORM = [
    "--only-binary=:all:",
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
    *(f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64")),
    "--platform=manylinux2014_x86_64",
    "--platform=any",
]
# What gpu-check needs beyond the machine's own packages
REQUIREMENTS = ["hydra-core==1.3.8", "omegaconf==2.3.1", "liger-kernel==0.8.5"]
# ffn.impl=quack: QuACK and its CUTLASS DSL with the CUDA 13 libraries (torch 2.11 there is
# cu130). Resolved 2026-12-07: 196 MB, of which nvidia-cutlass-dsl-libs-cu13 and -libs-cu12
# (which nvidia-cutlass-dsl requires whatever the extra) are 92 MB each: more than a lent GPU
# machine takes in one call (64 MiB), so they go into a folder of their own (--quack).
QUACK = ["quack-kernels==0.6.5", "nvidia-cutlass-dsl[cu13]==4.8.1"]
CARRY_LIMIT = 64 * 2**20
SDIST_ONLY = "antlr4-python3-runtime==4.9.3"
PROVIDED = {"torch": "2.11.0", "triton": "3.6.0", "numpy": "2.5.2"}  # on the GPU machine


def stub_wheel(folder: Path, name: str, version: str) -> Path:
    """A wheel holding only the metadata of `name` `version`, with no requirements."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(
            f"{dist}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        )
        z.writestr(
            f"{dist}.dist-info/WHEEL",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{dist}.dist-info/RECORD", "")
    return path


def resolve(stubs: Path, extra: list[str], requirements: list[str]) -> list[tuple[str, str]]:
    """(name, version) of every wheel pip would install for `requirements` on the GPU platform,
    the provided packages aside."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q"]
        cmd += [*PLATFORM, "--target", str(Path(tmp) / "t"), "--report", str(report)]
        cmd += ["--find-links", str(stubs), *extra, *requirements]
        cmd += [f"{n}=={v}" for n, v in PROVIDED.items()]
        subprocess.run(cmd, check=True)
        installs = json.loads(report.read_text())["install"]
    found = [(i["metadata"]["name"], i["metadata"]["version"]) for i in installs]
    return sorted((n, v) for n, v in found if n.lower() not in PROVIDED)


def download(wheels: list[tuple[str, str]], dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", *PLATFORM, "-d", str(dest)]
    subprocess.run([*cmd, *(f"{n}=={v}" for n, v in wheels)], check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gpu_wheels", description=__doc__)
    ap.add_argument("--dest", type=Path, default=Path(".whl"))
    ap.add_argument("--check", action="store_true", help="resolve --dest offline against itself")
    ap.add_argument("--quack", action="store_true", help="QuACK's closure too (196 MB)")
    args = ap.parse_args(argv)
    requirements = [*REQUIREMENTS, *(QUACK if args.quack else [])]
    args.dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        stubs = Path(tmp)
        for name, version in PROVIDED.items():
            # A local version sorts above the index's own build: pip takes the stub.
            stub_wheel(stubs, name, f"{version}+provided")
        if args.check:
            found = resolve(stubs, ["--no-index", "--find-links", str(args.dest)], requirements)
            print(f"gpu_wheels: {len(found)} wheels resolve offline from {args.dest}")
            return 0
        # Hydra's parser runtime has no wheel on PyPI: built here (pure Python) and found there
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "-q",
                "-w",
                str(args.dest),
                SDIST_ONLY,
            ],
            check=True,
        )
        wheels = resolve(stubs, ["--find-links", str(args.dest)], requirements)
        print("gpu_wheels: " + ", ".join(f"{n}=={v}" for n, v in wheels), flush=True)
        download([w for w in wheels if f"{w[0]}=={w[1]}" != SDIST_ONLY], args.dest)
    size = sum(p.stat().st_size for p in args.dest.glob("*.whl"))
    print(f"gpu_wheels: {size / 2**20:.0f} MiB in {args.dest}")
    if size > CARRY_LIMIT:
        print(
            f"gpu_wheels: more than a lent GPU machine takes in one call ({CARRY_LIMIT >> 20} "
            "MiB): carry it to a machine of your own",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
