"""`infsim scenarios list|copy`: the example scenarios shipped with infsim.

The examples are the top-level `*.yaml` files of the shipped `scenarios/` folder (read from
the package data in an installed wheel, from the repository otherwise: `infsim.package_data`).
`copy` writes one into a directory together with every shipped file it needs, so that
`infsim run DEST/NAME.yaml` works there:

- a scenario value naming a shipped file or folder by a relative path (a trace under
  `traces/`, a calibration directory, a model's config) is copied to `DEST/<its path in the
  shipped data>` and the value in the copy is rewritten to that location
  (`../traces/x.parquet` becomes `traces/x.parquet`);
- a shipped file under `scenarios/` the comments name (`scenarios/sweeps/x.axes.yaml`, the
  example sweep's axes) is copied to `DEST/<its path under scenarios/>`
  (`DEST/sweeps/x.axes.yaml`), beside the copy as it is beside the original.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from infsim.errors import InputError, did_you_mean
from infsim.package_data import data_root

_MENTION = re.compile(r"scenarios/([\w./-]+\.ya?ml)")


@dataclass(frozen=True)
class Example:
    name: str
    path: Path
    description: str


def scenarios_dir() -> Path:
    return data_root().path / "scenarios"


def examples() -> list[Example]:
    """The shipped example scenarios, by name."""
    folder = scenarios_dir()
    if not folder.is_dir():
        return []
    return [
        Example(p.stem, p, _description(p.read_text(encoding="utf-8")))
        for p in sorted(folder.glob("*.yaml"))
    ]


def _description(text: str) -> str:
    """The scenario's `description:`, else its first comment line."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("description"), str):
        return data["description"].strip()
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def find_example(name: str) -> Example:
    known = examples()
    stem = name.removesuffix(".yaml")
    for example in known:
        if example.name == stem:
            return example
    names = [e.name for e in known]
    raise InputError(
        f"unknown example scenario {name!r}{did_you_mean(stem, names)}; the shipped examples "
        f"are: {', '.join(names) or '(none)'}, read from {data_root().describe('scenarios')}; "
        "`infsim scenarios list` describes them"
    )


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _replace_strings(node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, str):
        return mapping.get(node, node)
    if isinstance(node, dict):
        return {k: _replace_strings(v, mapping) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_strings(v, mapping) for v in node]
    return node


def _within(path: Path, root: Path) -> Path | None:
    """`path` relative to `root`, or None when it lies outside."""
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        return None


def _plan(example: Example) -> tuple[str, dict[Path, Path]]:
    """The copy's text and its companions: {relative destination: shipped source}."""
    root, folder = data_root().path, example.path.parent
    text = example.path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    companions: dict[Path, Path] = {}
    rewrites: dict[str, str] = {}
    for value in set(_strings(data)):
        if not value or Path(value).is_absolute():
            continue
        source = folder / value
        # a file (trace, model config) or a calibration directory, nothing else
        if not (source.is_file() or (source / "meta.yaml").is_file()):
            continue
        under_scenarios = _within(source, folder)
        relative = under_scenarios if under_scenarios is not None else _within(source, root)
        if relative is None or relative == Path(example.path.name):
            continue
        companions[relative] = source.resolve()
        if relative.as_posix() != value:
            rewrites[value] = relative.as_posix()
    for mention in _MENTION.findall(text):
        source = folder / mention
        inside = _within(source, folder) is not None
        if mention != example.path.name and source.is_file() and inside:
            companions.setdefault(Path(mention), source.resolve())
    for old, new in sorted(rewrites.items(), key=lambda item: -len(item[0])):
        text = text.replace(old, new)
    if yaml.safe_load(text) != _replace_strings(data, rewrites):  # pragma: no cover
        raise RuntimeError(f"infsim bug: rewriting {sorted(rewrites)} in {example.path} failed")
    return text, companions


def copy_example(name: str, dest: Path, force: bool = False) -> list[Path]:
    """Copy example `name` and the shipped files it needs into `dest`; the written paths,
    the scenario first. Refuses (InputError) to overwrite an existing file unless `force`."""
    example = find_example(name)
    text, companions = _plan(example)
    targets = [dest / example.path.name, *(dest / rel for rel in sorted(companions))]
    if dest.exists() and not dest.is_dir():
        raise InputError(f"{dest}: not a directory; give a directory to copy {name!r} into")
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise InputError(
            f"not copying example {example.name!r}: {', '.join(existing)} already "
            f"exist{'s' if len(existing) == 1 else ''}; pass --force to overwrite, or give "
            "another destination directory"
        )
    dest.mkdir(parents=True, exist_ok=True)
    targets[0].write_text(text, encoding="utf-8")
    for rel in sorted(companions):
        source, target = companions[rel], dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target)
    return targets


@click.group("scenarios")
def scenarios_cli() -> None:
    """The example scenarios shipped with infsim: list them, copy one to start from."""


@scenarios_cli.command("list")
def list_cmd() -> None:
    """Shipped example scenarios: name and description."""
    known = examples()
    width = max((len(e.name) for e in known), default=0)
    for example in known:
        click.echo(f"{example.name:{width}s}  {example.description}")
    click.echo(
        f"examples read from {data_root().describe('scenarios')}; "
        "start from one with: infsim scenarios copy NAME [DEST]"
    )


@scenarios_cli.command("copy")
@click.argument("name")
@click.argument(
    "dest", required=False, default=".", type=click.Path(file_okay=False, path_type=Path)
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist in DEST.")
def copy_cmd(name: str, dest: Path, force: bool) -> None:
    """Copy example scenario NAME (and the trace or other shipped files it uses) into DEST
    (default: the current directory), ready for `infsim run DEST/NAME.yaml`."""
    written = copy_example(name, dest, force)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"run it: infsim run {written[0]}")
