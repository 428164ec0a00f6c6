"""Copy deploy/Caddyfile and deploy/nats-auth.conf into the ConfigMaps of proxy.yaml and nats.yaml.

Plain manifests cannot read files outside themselves, so those two ConfigMaps carry copies;
tests/unit/test_deploy.py fails while a copy differs. After editing either file run:

    python deploy/k8s/sync-configmaps.py
"""

from __future__ import annotations

import re
from pathlib import Path

K8S = Path(__file__).resolve().parent
DEPLOY = K8S.parent
# (manifest, the ConfigMap's key, the file it copies)
COPIES = [("proxy.yaml", "Caddyfile", "Caddyfile"), ("nats.yaml", "nats-auth.conf", "nats-auth.conf")]


def block(text: str, indent: str) -> str:
    """``text`` as the body of a YAML literal block scalar at ``indent``."""
    return "".join(indent + line if line.strip() else "\n" for line in text.splitlines(True))


def sync(manifest: Path, key: str, source: Path) -> bool:
    text = manifest.read_text()
    # the key's `|` block: every following line that is empty or indented deeper than the key
    pattern = re.compile(rf"^(?P<indent> *){re.escape(key)}: \|\n(?P<body>(?:(?:(?P=indent)  .*)?\n)*)", re.M)
    match = pattern.search(text)
    if match is None:
        raise SystemExit(f"{manifest.name}: no `{key}: |` block")
    body = match.group("body")
    trailing = body[len(body.rstrip("\n")) + 1 :]  # blank lines after the block belong to the file
    new = f"{match.group('indent')}{key}: |\n{block(source.read_text(), match.group('indent') + '  ')}{trailing}"
    if text[match.start() : match.end()] == new:
        return False
    manifest.write_text(text[: match.start()] + new + text[match.end() :])
    return True


if __name__ == "__main__":
    for manifest, key, source in COPIES:
        changed = sync(K8S / manifest, key, DEPLOY / source)
        print(f"{manifest}: {key} {'updated' if changed else 'up to date'}")
