"""Benchmark the importers on a large generated ChatGPT-shaped export.

    python bench/import_bench.py               # ~1 GB single conversations.json
    python bench/import_bench.py --quick       # ~30 MB, for a smoke run
    python bench/import_bench.py --size-mb 300 --layout sharded

The export is written to a temporary folder, then each measurement runs in a child process of
its own, so the generator's memory is not counted and each peak RSS (ru_maxrss) is that
reader's alone: a plain read of the same bytes (the floor), ijson building every conversation
(the parse cost), and the importer consumed as the CLI would (validate every event again,
collect the ids). The target is a peak RSS of at most 250 MB for the importer.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

RSS_TARGET_MB = 250
USER_ID = "user-BenchUser000000000001"


def _rss_mb() -> float:
    # Linux reports KiB, macOS bytes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# --- the generator ---------------------------------------------------------------------------

_WORDS = ("token", "rotation", "vault", "digest", "ledger", "consent", "policy", "export",
          "shard", "branch", "model", "answer", "question", "import", "stream", "memory",
          "bounded", "chat", "assistant", "user", "system", "tool")


def _text(rng: int, n: int) -> str:
    return " ".join(_WORDS[(rng * 7 + i * 13) % len(_WORDS)] for i in range(n))


def _conversation(i: int) -> dict:
    """One conversation shaped like a 2025 export: hidden system node, custom instructions,
    a regenerated answer (two branches), tool turns and metadata noise."""
    cid = f"6800{i:08x}-0000-8000-9000-{i:012x}"
    t0 = 1_700_000_000 + i * 37.25
    mapping: dict = {"client-created-root": {"id": "client-created-root", "message": None,
                                             "parent": None, "children": ["sys"]}}

    def add(nid: str, parent: str, role: str, t: float | None, parts: list, **meta: object) -> None:
        mapping[parent]["children"].append(nid) if nid not in mapping[parent]["children"] else None
        mapping[nid] = {"id": nid, "parent": parent, "children": [], "message": {
            "id": nid, "author": {"role": role, "name": None, "metadata": {}},
            "create_time": t, "update_time": None,
            "content": {"content_type": "text", "parts": parts},
            "status": "finished_successfully", "end_turn": role == "assistant", "weight": 1.0,
            "metadata": {"model_slug": "gpt-4o", "request_id": f"req-{i}-{nid}",
                         "message_type": None, "timestamp_": "absolute", **meta},
            "recipient": "all", "channel": None}}

    mapping["sys"] = {"id": "sys", "parent": "client-created-root", "children": [], "message": {
        "id": "sys", "author": {"role": "system", "name": None, "metadata": {}},
        "create_time": None, "update_time": None,
        "content": {"content_type": "text", "parts": [""]}, "status": "finished_successfully",
        "end_turn": True, "weight": 0.0,
        "metadata": {"is_visually_hidden_from_conversation": True}, "recipient": "all"}}
    prev = "sys"
    turns = 4 + i % 9
    for k in range(turns):
        u, a = f"{cid[:8]}-u{k}", f"{cid[:8]}-a{k}"
        add(u, prev, "user", t0 + k * 60.5, [_text(i + k, 40 + (i * k) % 80)])
        add(a, u, "assistant", t0 + k * 60.5 + 7.125, [_text(i - k, 180 + (i + k) % 300)],
            finish_details={"type": "stop", "stop_tokens": [200002]},
            citations=[], content_references=[])
        if k == 1:  # a regenerated answer: a second branch under the same prompt
            add(a + "b", u, "assistant", t0 + k * 60.5 + 9.5, [_text(i * 3, 150)])
        prev = a
    return {"title": f"Bench conversation {i}", "create_time": t0, "update_time": t0 + turns * 61,
            "mapping": mapping, "moderation_results": [], "current_node": prev,
            "plugin_ids": None, "conversation_id": cid, "conversation_template_id": None,
            "gizmo_id": None, "gizmo_type": None, "is_archived": False, "is_starred": None,
            "safe_urls": [], "blocked_urls": [], "default_model_slug": "gpt-4o",
            "conversation_origin": None, "voice": None, "async_status": None,
            "disabled_tool_ids": [], "is_do_not_remember": False,
            "memory_scope": "global_enabled", "id": cid}


def generate(folder: Path, size_mb: int, layout: str) -> tuple[int, int]:
    """Write the export; returns (bytes of conversation files, conversations)."""
    target = size_mb * 1024 * 1024
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "user.json").write_text(json.dumps({"id": USER_ID, "email": "bench@example.invalid"}))
    total = count = 0
    shards: list[str] = []
    out = None
    per_shard = 100
    while total < target:
        if out is None or (layout == "sharded" and count % per_shard == 0 and count):
            if out is not None:
                out.write(b"\n]\n")
                out.close()
            name = ("conversations.json" if layout == "single"
                    else f"conversations-{len(shards):03d}.json")
            shards.append(name)
            out = open(folder / name, "wb")  # noqa: SIM115 - closed on rotation below
            out.write(b"[\n")
            first = True
        blob = orjson.dumps(_conversation(count))
        if not first:
            out.write(b",\n")
        out.write(blob)
        first = False
        total += len(blob) + 2
        count += 1
    assert out is not None
    out.write(b"\n]\n")
    out.close()
    if layout == "sharded":
        (folder / "export_manifest.json").write_text(json.dumps({
            "version": 1, "manifest_file": "export_manifest.json",
            "export_files": [{"path": s, "size_bytes": (folder / s).stat().st_size}
                             for s in shards],
            "logical_files": {"conversations.json": {"files": shards, "sharded": True}}}))
    feedback = [{"id": f"fb-{k}", "conversation_id": f"6800{k:08x}-0000-8000-9000-{k:012x}",
                 "rating": "thumbsUp" if k % 3 else "thumbsDown",
                 "create_time": 1_700_000_000 + k * 37.25 + 30} for k in range(0, count, 97)]
    (folder / "message_feedback.json").write_text(json.dumps(feedback))
    return sum(p.stat().st_size for p in folder.iterdir()), count


# --- the measured children -------------------------------------------------------------------

def child(mode: str, folder: Path) -> dict:
    start = time.perf_counter()
    result: dict = {"mode": mode}
    if mode == "read":
        n = 0
        for p in sorted(folder.iterdir()):
            with open(p, "rb") as f:
                while chunk := f.read(1 << 20):
                    n += len(chunk)
        result["bytes"] = n
    elif mode == "ijson":
        import ijson
        n = 0
        for p in sorted(folder.glob("conversations*.json")):
            with open(p, "rb") as f:
                for _conv in ijson.items(f, "item"):
                    n += 1
        result["conversations"] = n
    elif mode == "import":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from auditor.events import validate_event
        from auditor.importers import read_export
        res = read_export(folder, salt=b"\x01" * 32, progress=False)
        ids = set()
        n = 0
        for event in res.events:
            validate_event(event)
            ids.add(event["id"])
            n += 1
        s = res.summary
        result.update(events=n, unique_ids=len(ids), chats=s.chats, messages=s.messages,
                      feedback=s.feedback, skipped=s.skipped_count, complete=s.complete)
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_mb"] = _rss_mb()
    return result


def run_child(mode: str, folder: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(folder)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="export size (default 1024)")
    ap.add_argument("--quick", action="store_true", help="a ~30 MB export, for a smoke run")
    ap.add_argument("--layout", choices=("single", "sharded"), default="single")
    ap.add_argument("--dir", type=Path, help="write the export here (kept) instead of a temp dir")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return 0
    size = 30 if args.quick else args.size_mb
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        folder = args.dir or Path(tmp) / "chatgpt-export"
        t = time.perf_counter()
        nbytes, convs = generate(folder, size, args.layout)
        mb = nbytes / 1e6
        print(f"generated {mb:,.0f} MB ({convs:,} conversations, {args.layout}) in "
              f"{time.perf_counter() - t:,.1f} s at {folder}")
        rows = [run_child(mode, folder) for mode in ("read", "ijson", "import")]
        print(f"{'reader':<34}{'seconds':>9}{'MB/s':>9}{'peak RSS MB':>13}")
        labels = {"read": "baseline: plain read, 1 MB chunks",
                  "ijson": "baseline: ijson.items per record",
                  "import": "read_export + validate + ids"}
        for r in rows:
            print(f"{labels[r['mode']]:<34}{r['seconds']:>9.1f}{mb / r['seconds']:>9.1f}"
                  f"{r['peak_rss_mb']:>13.1f}")
        imp = rows[-1]
        print(f"importer: {imp['events']:,} events ({imp['unique_ids']:,} distinct ids), "
              f"{imp['chats']:,} chats, {imp['messages']:,} messages, {imp['feedback']:,} "
              f"feedback, {imp['skipped']} skipped, complete={imp['complete']}")
        ok = imp["peak_rss_mb"] <= RSS_TARGET_MB
        print(f"peak RSS {imp['peak_rss_mb']:.1f} MB: {'within' if ok else 'OVER'} the "
              f"{RSS_TARGET_MB} MB target")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
