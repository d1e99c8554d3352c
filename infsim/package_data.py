"""Where the data shipped beside the code is read from: the built-in calibration tables, the
example scenarios and the traces those scenarios replay.

The repository keeps them in top-level folders (`calibration/<name>/{ops.parquet,meta.yaml}`,
`scenarios/`, `traces/`). A built wheel carries copies of the same layout under
`infsim/_data/` (pyproject.toml's `[tool.hatch.build.targets.wheel.force-include]`), found
through `importlib.resources`. `data_root` is the one place that chooses between the two;
`infsim calibrate list` and `infsim scenarios list` print its answer and an unknown
calibration's error names it, so a user can always see which copy is in use.

An editable install also gets a copy under site-packages/infsim/_data (hatchling applies
force-include to editable wheels too); it is never read, since `infsim` itself is imported
from the checkout, whose `infsim/` has no `_data/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

PACKAGE_DATA = "_data"  # the folder inside the installed package
REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout, when running from one


@dataclass(frozen=True)
class DataRoot:
    path: Path  # holds calibration/, scenarios/, traces/
    origin: str  # "package data" or "source checkout", for messages

    def describe(self, folder: str) -> str:
        """'<path> (<origin>)' of one folder, as `calibrate list` and `scenarios list` say it."""
        where = self.path / folder
        missing = "" if where.is_dir() else ", missing"
        return f"{where} ({self.origin}{missing})"


def _resource_root() -> Path | None:
    """`infsim/_data` of the imported package, if it is a directory on the file system."""
    root = resources.files("infsim") / PACKAGE_DATA
    # A zip import would give a zipfile.Path; infsim is installed unzipped (as its catalogs
    # already assume), so only a real directory counts.
    return root if isinstance(root, Path) and root.is_dir() else None


def data_root() -> DataRoot:
    """The shipped data's root: the package data when present (an installed wheel's
    `infsim/_data/`), else the repository checkout that `infsim/` was imported from (an
    editable install or a source checkout). Never a mix: with package data present, the
    repository's folders are not read."""
    packaged = _resource_root()
    if packaged is not None:
        return DataRoot(Path(packaged), "package data")
    return DataRoot(REPO_ROOT, "source checkout")
