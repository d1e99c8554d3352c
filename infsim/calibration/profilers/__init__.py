"""Importers for profiler exports a user records on their own hardware.

    torch-profiler   PyTorch profiler / Kineto Chrome traces (`.json`, `.json.gz`), the
                     files vLLM's `--profiler-config '{"profiler": "torch", ...}'` writes
    nsys-kern-sum    `nsys stats --report cuda_gpu_kern_sum --format csv`
    nsys-sqlite      `nsys export --type sqlite`

Registered in the shared importer registry (`infsim.calibration.importers.importers`) on
import; `infsim calibrate import FORMAT PATH …` imports this package for that.
"""

from __future__ import annotations

from pathlib import Path

from infsim.calibration.importers import ImportOptions, ImportResult, importers
from infsim.calibration.importers._common import SOURCE, one_device, sha256
from infsim.calibration.profilers import nsys, torch_profiler
from infsim.cost.table import Provenance

__all__ = ["import_nsys_kern_sum", "import_nsys_sqlite", "import_torch_profiler"]


@importers.register("torch-profiler")
def import_torch_profiler(paths: list[Path], options: ImportOptions) -> ImportResult:
    """Kineto traces → op rows (per op and shape) and vLLM step rows (see torch_profiler)."""
    files = _files(paths, ("*.json", "*.json.gz"))
    frame, notes, gpu = torch_profiler.read_traces(files)
    if gpu is None:
        device = options.device or "cpu-host"
        notes.insert(0, f"CPU-only trace(s): op times are CPU op durations; device {device}")
    else:
        device = one_device(dict.fromkeys(files, _catalog_gpu(gpu)), options.device)
        notes.insert(0, f"GPU trace(s) of {gpu!r}: op times are summed kernel durations")
    meta = {
        "device": device,
        "engine": options.engine or "torch",
        "engine_version": options.engine_version or "",
        "source": "user's PyTorch profiler traces",
        "profiler": torch_profiler.PROFILER,
        "notes": tuple(notes),
    }
    return ImportResult(frame=frame, meta=meta, provenance=_provenance(files, frame))


@importers.register("nsys-kern-sum")
def import_nsys_kern_sum(paths: list[Path], options: ImportOptions) -> ImportResult:
    """`cuda_gpu_kern_sum` CSVs → per-token kernel rows (needs `<csv>.shape.json`)."""
    return _nsys(_files(paths, ("*.csv",)), options, nsys.read_kern_sum, "nsys stats")


@importers.register("nsys-sqlite")
def import_nsys_sqlite(paths: list[Path], options: ImportOptions) -> ImportResult:
    """`nsys export --type sqlite` → NVTX step rows and per-token kernel rows."""
    return _nsys(_files(paths, ("*.sqlite",)), options, nsys.read_sqlite, "nsys export")


def _nsys(files: list[Path], options: ImportOptions, read, tool: str) -> ImportResult:
    frames, notes = [], []
    for path in files:
        frame, file_notes = read(path)
        frames.append(frame.assign(**{SOURCE: str(path)}))
        notes += [f"{path.name}: {note}" for note in file_notes]
    frame = torch_profiler.pd.concat(frames, ignore_index=True)
    meta = {
        "device": one_device(dict.fromkeys(files), options.device),
        "engine": options.engine or "unknown",
        "engine_version": options.engine_version or "",
        "source": f"user's Nsight Systems report ({tool})",
        "profiler": "Nsight Systems (CUPTI kernel activity)",
        "notes": tuple(notes),
    }
    return ImportResult(frame=frame, meta=meta, provenance=_provenance(files, frame))


def _files(paths: list[Path], patterns: tuple[str, ...]) -> list[Path]:
    """Files as given; a directory contributes its files matching `patterns`, sorted."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out += sorted({f for pattern in patterns for f in path.glob(pattern)})
        else:
            out.append(path)
    return out


def _catalog_gpu(name: str) -> str | None:
    from infsim.calibration.importers._common import device_name

    return device_name(name.removeprefix("NVIDIA ").strip())


def _provenance(files: list[Path], frame) -> tuple[Provenance, ...]:
    counts = frame[SOURCE].value_counts()
    return tuple(
        Provenance(path=str(f), rows=int(counts.get(str(f), 0)), sha256=sha256(f)) for f in files
    )
