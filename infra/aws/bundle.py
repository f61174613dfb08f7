"""Build the Lambda code artifact that serverless.yml deploys (`package.artifact`).

    python -m infra.aws.bundle deps   # pip: dependencies for python3.12 / arm64 -> build/aws-deps
    python -m infra.aws.bundle zip    # build/aws/grokgate.zip: our code + run.sh + build/aws-deps

The zip holds `core/`, `infra/` (without the simulator), `functions/` and `run.sh` (mode 755,
the Lambda Web Adapter's start script), and, at its root, whatever `deps` installed, so the
Python runtime finds everything on /var/task. `zip` never touches the network; without `deps` it
packs the code alone (enough for `osls package` and its test, not for a deployment). Entries
are sorted and dated 1980-01-01, so the same tree gives the same bytes (and the same code hash).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPS = ROOT / "build" / "aws-deps"
ARTIFACT = ROOT / "build" / "aws" / "grokgate.zip"
PACKAGES = ("core", "infra", "functions")
# Not needed by any deployable: the simulator, the CLI, the all-in-one local app.
ASSET_DIRS = ("functions/console",)
EXCLUDED = ("infra/sim/", "functions/cli.py", "functions/local.py", "functions/sandbox.py")
PLATFORM = ["--platform", "manylinux2014_aarch64", "--implementation", "cp", "--python-version", "3.12"]


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    with pyproject.open("rb") as handle:
        deps: list[str] = tomllib.load(handle)["project"]["dependencies"]
    return deps


def install_deps(target: Path = DEPS) -> None:
    """Lambda wheels (manylinux aarch64, CPython 3.12) into `target`, never an sdist build."""
    target.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--upgrade", "--no-compile"]
    command += [*PLATFORM, "--only-binary=:all:", "--target", str(target), *runtime_requirements()]
    subprocess.run(command, check=True)  # noqa: S603 (our own argv, no shell)


def code_files(root: Path = ROOT) -> Iterator[tuple[Path, str]]:
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = path.relative_to(root).as_posix()
            if "__pycache__" in name or name.startswith(EXCLUDED):
                continue
            yield path, name
    for folder in ASSET_DIRS:  # the console's page, CSS and JS: served by the admin function
        for path in sorted((root / folder).iterdir()):
            if path.is_file():
                yield path, path.relative_to(root).as_posix()
    yield root / "run.sh", "run.sh"


def dep_files(deps: Path = DEPS) -> Iterator[tuple[Path, str]]:
    if not deps.is_dir():
        return
    for path in sorted(deps.rglob("*")):
        name = path.relative_to(deps).as_posix()
        if path.is_file() and "__pycache__" not in name and not name.startswith("bin/"):
            yield path, name


def build_zip(artifact: Path = ARTIFACT, root: Path = ROOT, deps: Path = DEPS) -> Path:
    artifact.parent.mkdir(parents=True, exist_ok=True)
    temporary = artifact.with_suffix(".tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path, name in [*code_files(root), *dep_files(deps)]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            mode = 0o755 if name == "run.sh" or path.stat().st_mode & 0o111 else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    temporary.replace(artifact)
    return artifact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.aws.bundle", description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=["deps", "zip"])
    args = parser.parse_args(argv)
    if args.step == "deps":
        install_deps()
        return 0
    artifact = build_zip()
    has_deps = DEPS.is_dir() and any(DEPS.iterdir())
    print(f"{artifact.relative_to(ROOT)}: {artifact.stat().st_size} bytes", end="")
    print("" if has_deps else " (code only: run `make deps-aws` before deploying)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
