"""Load a YAML fixture into its pydantic model, or fail with one clear line.

The line names the file, the field (dotted path) and what was expected, e.g.::

    fixtures/devices/cs4.yaml: field 'output.compliance_voltage_V': Input should be greater than 0 (got -5)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from rig.errors import FixtureError

M = TypeVar("M", bound=BaseModel)

FIXTURES_DIR = Path(__file__).resolve().parents[2] / "fixtures"


def _field_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def describe_validation_error(path: Path | str, err: ValidationError) -> str:
    """One line: file, first offending field, what was expected, and how many more problems."""
    errors = err.errors(include_url=False)
    first = errors[0]
    field = _field_path(tuple(first.get("loc", ())))
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if first.get("type") == "missing":
        line = f"{path}: field '{field}' is missing (required)"
    elif first.get("type") == "extra_forbidden":
        line = f"{path}: field '{field}' is not a known field (check the spelling against the schema)"
    elif first.get("type") == "value_error" and isinstance(first.get("input"), dict):
        # a check across several fields: its message names them
        line = f"{path}: {msg}" if field == "(top level)" else f"{path}: in '{field}': {msg}"
    else:
        got = first.get("input")
        shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
        line = f"{path}: field '{field}': {msg} (got {shown})"
    if len(errors) > 1:
        line += f" [and {len(errors) - 1} more problem(s) in this file]"
    return line


def read_yaml(path: Path | str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise FixtureError(f"{p}: file not found (expected a YAML fixture file)")
    try:
        with p.open("r", encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FixtureError(f"{p}: not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FixtureError(f"{p}: cannot be read: {exc}") from None


def load_yaml_model(path: Path | str, model: type[M], context: dict[str, Any] | None = None) -> M:
    """Read ``path`` and validate it as ``model``; raise FixtureError with one line otherwise."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise FixtureError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data, context={"path": Path(path), **(context or {})})
    except ValidationError as exc:
        raise FixtureError(describe_validation_error(path, exc)) from None


def resolve_fixture(ref: str | Path, relative_to: Path | None = None) -> Path:
    """Resolve a fixture reference: absolute, relative to the referring file, or to the repo root."""
    p = Path(ref)
    if p.is_absolute():
        return p
    candidates = []
    if relative_to is not None:
        candidates.append(relative_to.parent / p)
    candidates.append(Path.cwd() / p)
    candidates.append(FIXTURES_DIR.parent / p)
    for c in candidates:
        if c.exists():
            return c.resolve()
    return candidates[-1]


def load_device(path: Path | str) -> Any:
    from rig.config.device import DeviceModel

    return load_yaml_model(path, DeviceModel)


def load_program(path: Path | str) -> Any:
    from rig.config.program import Program

    return load_yaml_model(path, Program)


def load_programs(directory: Path | str | None = None) -> list[Any]:
    """All programs in a directory (default: fixtures/programs), sorted by id; ids must be unique."""
    d = Path(directory) if directory is not None else FIXTURES_DIR / "programs"
    files = sorted(d.glob("*.yaml"))
    if not files:
        raise FixtureError(f"{d}: no program fixtures (*.yaml) found (expected at least one)")
    programs = [load_program(f) for f in files]
    seen: dict[str, Path] = {}
    for prog, f in zip(programs, files, strict=True):
        if prog.id in seen:
            raise FixtureError(f"{f}: field 'id': duplicate program id {prog.id!r} (also in {seen[prog.id]})")
        seen[prog.id] = f
    return sorted(programs, key=lambda p: p.id)


def load_bench(path: Path | str) -> Any:
    from rig.config.bench import BenchConfig

    return load_yaml_model(path, BenchConfig)
