"""The built-in library's files (`services/contracts/library/`): read from disk and handed, as
loaded YAML, to the domain's parser (`domain/library_loader.py`).

Files are read with `yaml.safe_load` only: a library file is data, never code. A file that is
not valid YAML is refused naming the file, like every other error in it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from services.contracts.domain.library_loader import LibraryFileError, LoadedFile, build_library
from services.contracts.domain.templates import ContractLibrary

__all__ = ["BUILT_IN", "LibraryFileError", "load_library"]

BUILT_IN = Path(__file__).resolve().parents[1] / "library"


def load_library(root: Path | str = BUILT_IN) -> ContractLibrary:
    root = Path(root)
    return build_library(_read_all(root / "clauses"), _read_all(root / "templates"))


def _read_all(folder: Path) -> list[LoadedFile]:
    return [(path, _read(path)) for path in sorted(folder.glob("*.yaml"))]


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise LibraryFileError(path, f"not valid YAML: {error}") from error
