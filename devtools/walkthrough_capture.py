"""Capture the README's HTTP walkthrough against a running `botranks up`, normalised so two runs compare.

    export BOTRANKS_HOME=/tmp/x/home                  # the home of the running `botranks up`
    REPO/.venv/bin/python devtools/walkthrough_capture.py --repo REPO --base http://127.0.0.1:8000 --out a.txt
    diff a.txt b.txt                                   # b.txt: the same against another system

Every ```bash block of REPO/README.md runs verbatim and in order in one bash, as
tests/integration/test_readme.py runs them (cwd REPO, so `.venv/bin/botranks` is REPO's; 127.0.0.1:8000
rewritten to --base), with `curl` a shell function that hands its arguments back to this script (--curl):
the same request goes out through httpx (curl's -s -X -H -d only; anything else stops the run), its body is
printed as curl prints it, and request and response are logged. The output lists every exchange (request,
status, response headers, body bytes as sent), then each block's stdout and exit status.

Normalised, nothing else (placeholders numbered per kind by first appearance, so equal values stay equal):
API keys fq_*_... and their shown prefixes -> <key-N>; the session cookie access_token=... -> <token-N>;
UUIDs -> <uuid-N>; 64-hex hash-chain values -> <hash-N>; datetimes from the run's start on (the servers'
clocks: created_at, a session's expires_at...; the README's and the demo market's are all earlier) ->
<now-N>; --base -> <base>; the CLI import summary's speed ("seconds", "rows_per_s"; "0.0 s (148 rows/s)")
-> <timing>. Response headers: date and etag left out (etag hashes ids), ratelimit-reset -> <reset>.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from http.cookiejar import MozillaCookieJar
from pathlib import Path

import httpx

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
DROPPED_HEADERS = {"date", "etag"}
VOLATILE = re.compile(
    r"(?P<key>fq_[a-z]+_[A-Za-z0-9_\-]{2,})"
    r"|(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"|(?P<hash>\b[0-9a-f]{64}\b)"
    r"|(?P<now>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
    r"|(?P<token>(?<=access_token=)[A-Za-z0-9_\-]{20,})"
    r'|(?P<timing>(?:(?<="seconds": )|(?<="rows_per_s": ))[0-9.e+-]+|\d+(?:\.\d+)? s \(\d+ rows/s\))'
)
VALUED = {"-X": "method", "--request": "method", "-H": "header", "--header": "header"}
VALUED |= {"-d": "data", "--data": "data", "--data-raw": "data", "-b": "read", "-c": "write"}
SILENT = {"-s", "--silent", "-S", "--show-error", "--fail-with-body"}


def curl(args: list[str], log: Path) -> int:
    """One curl command line of the README, sent with httpx; the body on stdout, the exchange appended to log."""
    method, url, data = None, None, []
    headers: list[tuple[str, str]] = []
    jars: dict[str, str] = {}
    it = iter(args)
    for arg in it:
        if arg in VALUED:
            value = next(it)
            kind = VALUED[arg]
            method = value if kind == "method" else method
            name, _, text = value.partition(":")
            headers += [(name.strip(), text.strip())] if kind == "header" else []
            data += [value] if kind == "data" else []
            jars |= {kind: value} if kind in ("read", "write") else {}
        elif arg in SILENT:
            pass
        elif arg.startswith("-") or url is not None:
            sys.exit(f"walkthrough_capture: curl argument not replayed: {arg!r}")
        else:
            url = arg
    body = "&".join(data).encode() if data else None
    if body is not None and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))  # what curl -d sends
    jar = MozillaCookieJar()  # curl's cookie-jar format: -b reads it, -c writes it
    if "read" in jars and os.path.getsize(jars["read"]):
        jar.load(jars["read"], ignore_discard=True, ignore_expires=True)
    with httpx.Client(timeout=120, cookies=jar) as client:
        client.headers = httpx.Headers({"Accept": "*/*", "User-Agent": "curl"})  # no httpx defaults
        response = client.request(method or ("POST" if data else "GET"), str(url), headers=headers, content=body)
    if "write" in jars:
        jar.save(jars["write"], ignore_discard=True, ignore_expires=True)
    entry = {
        "block": os.environ.get("WALK_BLOCK"),
        "request": [method or ("POST" if data else "GET"), url, headers, (body or b"").decode()],
        "status": response.status_code,
        "headers": [(k, v) for k, v in response.headers.multi_items() if k not in DROPPED_HEADERS],
        "body": base64.b64encode(response.content).decode(),
    }
    with log.open("a") as f:
        f.write(json.dumps(entry) + "\n")
    sys.stdout.buffer.write(response.content)
    return 0


def normalise(text: str, base: str, start: datetime) -> str:
    seen: dict[str, dict[str, str]] = {}

    def placeholder(match: re.Match[str]) -> str:
        kind, value = next((k, v) for k, v in match.groupdict().items() if v is not None)
        if kind == "timing":
            return "<timing>"
        if kind == "now":
            when = datetime.fromisoformat(value.replace(" ", "T"))
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            if when < start:
                return value  # a time of the README's own (or of the demo's market): compared as is
        names = seen.setdefault(kind, {})
        return names.setdefault(value, f"<{kind}-{len(names) + 1}>")

    return VOLATILE.sub(placeholder, text.replace(base, "<base>"))


def render(entries: list[dict], blocks: list[tuple[int, str]]) -> str:
    out = []
    for n, e in enumerate(entries, 1):
        method, url, headers, body = e["request"]
        out.append(f"=== exchange {n} (README bash block {e['block']}): {method} {url}")
        out += [f"> {name}: {value}" for name, value in headers] + ([f"> body: {body}"] if body else [])
        out.append(f"< {e['status']}")
        out += [f"< {k}: {'<reset>' if k == 'ratelimit-reset' else v}" for k, v in e["headers"]]
        content = base64.b64decode(e["body"])
        try:
            out.append(content.decode())
        except UnicodeDecodeError:
            out.append(f"(binary, {len(content)} bytes, base64) {e['body']}")
    for n, stdout in blocks:
        out.append(f"=== stdout of README bash block {n}\n{stdout}")
    return "\n".join(out) + "\n"


def capture(repo: Path, base: str, out: Path) -> int:
    blocks = [body for lang, body in FENCE.findall((repo / "README.md").read_text()) if lang == "bash"]
    log = out.with_suffix(".raw.jsonl")
    log.unlink(missing_ok=True)
    script = [
        "set -euo pipefail",
        f'curl() {{ {sys.executable} {Path(__file__).resolve()} --curl --log {log} -- "$@"; }}',
    ]
    for n, block in enumerate(blocks, 1):
        script += [f"export WALK_BLOCK={n}; printf '\\n@@@ block {n}\\n'", block.replace("http://127.0.0.1:8000", base)]
    env = {**os.environ, "BOTRANKS_URL": base}
    start = datetime.now(UTC) - timedelta(minutes=5)
    run = subprocess.run(["bash", "-c", "\n".join(script)], cwd=repo, env=env, capture_output=True, text=True)
    parts = re.split(r"\n@@@ block (\d+)\n", run.stdout)[1:]  # each block's output, as printed
    stdouts = [(int(n), text) for n, text in zip(parts[::2], parts[1::2], strict=True)]
    failed = run.stderr[-2000:] if run.returncode else ""
    stdouts.append((0, f"(exit status of the blocks: {run.returncode})\n{failed}"))
    entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    out.write_text(normalise(render(entries, stdouts), base, start))
    print(f"{len(entries)} exchanges, {len(stdouts) - 1} blocks, exit {run.returncode}: {out}")
    return run.returncode


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1], help="checkout with .venv")
    p.add_argument("--base", default="http://127.0.0.1:8000", help="where its `botranks up` answers")
    p.add_argument("--out", type=Path, default=Path("walkthrough.txt"))
    p.add_argument("--curl", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    args, rest = p.parse_known_args()
    if args.curl:
        sys.exit(curl(rest[1:] if rest[:1] == ["--"] else rest, args.log))
    sys.exit(capture(args.repo.resolve(), args.base.rstrip("/"), args.out.resolve()))


if __name__ == "__main__":
    main()
