"""An export as a list of files, whatever it came as: a zip, an unpacked folder, a folder of
zips (Claude's `-batch-000N` archives, Takeout's `-001.zip` parts), or a single file.

Zip members are read as streams (never extracted, never read whole), and every file is
opened afresh for each pass, so an importer holds one record at a time in memory.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, TypeVar

import ijson
import orjson

from auditor.importers.common import (
    CountingReader,
    ImportFormatError,
    ImportSummary,
    Progress,
    RecordError,
)

# Files that can carry records; attachments (.dat, .png, .webp ...) are never opened.
READABLE = (".json", ".jsonl", ".html")
MAX_DEPTH = 8
MAX_FILES = 200_000


@dataclass
class Entry:
    """One file of the export. `path` is relative to the export (zip members: `a.zip/x.json`)."""

    path: str
    size: int
    opener: Callable[[], BinaryIO]
    shape: Shape | None = None

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def parts(self) -> tuple[str, ...]:
        return PurePosixPath(self.path).parts


@dataclass
class Tree:
    root: Path
    entries: list[Entry]
    single_file: bool
    zips: list[zipfile.ZipFile] = field(default_factory=list)
    progress: Progress | None = None

    def open(self, entry: Entry) -> BinaryIO:
        raw = entry.opener()
        if self.progress is not None:
            return CountingReader(raw, self.progress)  # type: ignore[return-value]
        return raw

    def close(self) -> None:
        for z in self.zips:
            with suppress(Exception):
                z.close()


def open_tree(path: Path) -> Tree:
    """List the readable files of an export; raises ImportFormatError for a missing path."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ImportFormatError(f"{path}: no such file or folder")
    tree = Tree(root=path, entries=[], single_file=path.is_file())
    if path.is_file():
        if zipfile.is_zipfile(path):
            tree.single_file = False
            _add_zip(tree, path, prefix="")
        else:
            tree.entries.append(_file_entry(path, path.name))
        return tree
    if not path.is_dir():
        raise ImportFormatError(f"{path}: not a file or a folder")
    count = 0
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        rel = Path(dirpath).relative_to(path)
        if len(rel.parts) >= MAX_DEPTH:
            dirnames[:] = []
        dirnames.sort()
        for name in sorted(filenames):
            count += 1
            if count > MAX_FILES:
                raise ImportFormatError(
                    f"{path}: more than {MAX_FILES} files; give the export's own folder or zip")
            full = Path(dirpath) / name
            relname = (rel / name).as_posix()
            if name.lower().endswith(".zip") and zipfile.is_zipfile(full):
                _add_zip(tree, full, prefix=relname + "/")
            elif name.lower().endswith(READABLE) and full.is_file():
                tree.entries.append(_file_entry(full, relname))
    return tree


def _file_entry(full: Path, relname: str) -> Entry:
    return Entry(relname, full.stat().st_size, lambda: open(full, "rb"))


def _add_zip(tree: Tree, zpath: Path, prefix: str) -> None:
    try:
        archive = zipfile.ZipFile(zpath)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportFormatError(f"{zpath}: not a readable zip archive ({exc})") from None
    tree.zips.append(archive)
    infos = sorted((i for i in archive.infolist() if not i.is_dir()), key=lambda i: i.filename)
    for info in infos:
        if not info.filename.lower().endswith(READABLE):
            continue
        name = PurePosixPath(info.filename)
        if ".." in name.parts or name.is_absolute():
            continue

        def opener(info: zipfile.ZipInfo = info) -> BinaryIO:
            return archive.open(info)  # type: ignore[return-value]
        tree.entries.append(Entry(prefix + info.filename, info.file_size, opener))


# --- peeking at a file's shape ---------------------------------------------------------------

@dataclass
class Shape:
    """What a file holds, judged from its first records only.

    kind: "array" (records at `item`), "object" (the file is one record), "wrapped"
    (`{"conversations": [...]}`, as one tool stores Claude exports), "jsonl", "html", "other".
    """

    kind: str
    prefix: str = "item"
    samples: list[dict[str, Any]] = field(default_factory=list)
    empty: bool = False
    error: str | None = None

    @property
    def keys(self) -> set[str]:
        out: set[str] = set()
        for s in self.samples:
            out.update(s)
        return out


DECISIVE_KEYS = {"mapping", "chat_messages", "messages", "logical_files", "export_files"}
WRAPPERS = ("conversations", "projects")


def peek(tree: Tree, entry: Entry, *, max_records: int = 3) -> Shape:
    """Classify a file by its first records, reading as little of it as possible."""
    lower = entry.name.lower()
    try:
        if lower.endswith(".jsonl"):
            return _peek_jsonl(entry, max_records=20)
        if lower.endswith(".html"):
            with entry.opener() as f:
                head = f.read(65536)
            return Shape("html", samples=[{"_html": head.decode("utf-8", "replace")}])
        return _peek_json(entry, max_records)
    except (ijson.JSONError, ijson.IncompleteJSONError, ValueError, OSError,
            zipfile.BadZipFile) as exc:
        return Shape("other", error=f"not valid JSON ({_first_line(exc)})")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else type(exc).__name__


def _peek_json(entry: Entry, max_records: int) -> Shape:
    with entry.opener() as f:
        events = ijson.parse(f)
        try:
            _prefix, first, _value = next(events)
        except StopIteration:
            return Shape("other", error="empty file")
        if first == "start_array":
            with entry.opener() as g:
                samples = _sample_items(g, "item", max_records)
            return Shape("array", "item", samples, empty=not samples)
        if first != "start_map":
            return Shape("other", error="not a JSON object or array")
        keys: dict[str, Any] = {}
        current: str | None = None
        for prefix, event, value in events:
            if prefix == "" and event == "map_key":
                current = value
                continue
            if current is not None and prefix == current:
                if event == "start_array" and current in WRAPPERS:
                    with entry.opener() as g:
                        samples = _sample_items(g, f"{current}.item", max_records)
                    return Shape("wrapped", f"{current}.item", samples, empty=not samples)
                keys[current] = value if event in ("string", "number", "boolean", "null") \
                    else ("<list>" if event == "start_array" else "<object>")
                if current in DECISIVE_KEYS:
                    break
                current = None
            if len(keys) >= 64:
                break
        return Shape("object", "", [keys])


def _sample_items(f: BinaryIO, prefix: str, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        for item in ijson.items(f, prefix):
            out.append(item if isinstance(item, dict) else {"_scalar": item})
            if len(out) >= n:
                break
    except (ijson.JSONError, ijson.IncompleteJSONError, ValueError):
        if not out:  # broken before its first record: not an export; later, a cut-off one
            raise
    return out


def _peek_jsonl(entry: Entry, max_records: int) -> Shape:
    samples = []
    with entry.opener() as f:
        for _ in range(max_records * 5):
            line = f.readline(16 << 20)
            if not line:
                break
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                samples.append(obj)
            if len(samples) >= max_records:
                break
    return Shape("jsonl", "", samples, empty=not samples)


def records(tree: Tree, entry: Entry) -> Iterator[tuple[int, Any]]:
    """The records of a JSON file, streamed: (index, record). Lazy so memory stays bounded."""
    shape = entry.shape or peek(tree, entry)
    with tree.open(entry) as f:
        if shape.kind == "object":
            yield 0, next(ijson.items(f, ""), None)
            return
        yield from enumerate(ijson.items(f, shape.prefix))


def lines(tree: Tree, entry: Entry) -> Iterator[tuple[int, bytes]]:
    """The lines of a JSON-lines file: (line number from 1, raw bytes)."""
    with tree.open(entry) as f:
        n = 0
        while True:
            line = f.readline()
            if not line:
                return
            n += 1
            if line.strip():
                yield n, line


def safe_records(tree: Tree, entry: Entry, summary: ImportSummary) -> Iterator[tuple[int, Any]]:
    """`records`, but a file cut off or broken midway ends with a skip, not a crash."""
    it = records(tree, entry)
    read = 0
    while True:
        try:
            index, record = next(it)
        except StopIteration:
            return
        except (ijson.JSONError, ijson.IncompleteJSONError, ValueError, OSError, EOFError,
                zipfile.BadZipFile, zlib.error) as exc:
            summary.skip(entry.path, f"unreadable after {read} records, rest of the file "
                         f"not read ({_first_line(exc)})")
            return
        read += 1
        yield index, record


ChatRecord = TypeVar("ChatRecord", bound=tuple[Any, ...])


def new_chats(tree: Tree, entry: Entry, summary: ImportSummary,
              parse: Callable[[Any, str], ChatRecord], *, name: Callable[[str, Any], str],
              seen: set[str], again: str) -> Iterator[tuple[str, ChatRecord]]:
    """Each record of `entry` as `parse(record, where)` reads it (a tuple starting with the
    chat id), with where it is (`"<path> record <n>"`). A record `parse` refuses
    (RecordError), or a chat id already in `seen`, is skipped and named in `summary` by
    `name(where, record)`; the second time with the reason `again`."""
    for index, record in safe_records(tree, entry, summary):
        where = f"{entry.path} record {index}"
        try:
            parsed = parse(record, where)
        except RecordError as exc:
            summary.skip(name(where, record), str(exc))
            continue
        if parsed[0] in seen:
            summary.skip(name(where, record), again)
            continue
        seen.add(parsed[0])
        yield where, parsed
