"""deploy/: the example configs parse with the real parsers, the units and the compose file call
real `chartsync` commands with flags those commands accept, and every option is documented.

Tools (systemd-analyze, docker compose, nginx, openssl) are used only when present; without them
those checks skip, naming the missing tool. Nothing here needs the network or PostgreSQL.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from chartsync.cli import build_parser
from cloud_hub.cli.serve import raw_options
from cloud_hub.config import HubConfig, parse_hub_config
from edge_node.cli.serve import edge_config, sync_options
from edge_node.config import LIMIT_OPTIONS, EdgeConfig
from edge_node.hub_link.settings import SyncSettings, parse_sync_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
HUB_TOML = DEPLOY / "hub.toml"
EDGE_ENV = DEPLOY / "edge.env"
UNITS = DEPLOY / "systemd"
COMPOSE = DEPLOY / "compose.yaml"
NGINX = DEPLOY / "nginx" / "chartsync-hub.conf"
README = DEPLOY / "README.md"
INSTALLED_BINARY = "/opt/chartsync/bin/chartsync"
HUB_OPTIONS = [f.name for f in fields(HubConfig)]
SYNC_OPTIONS = [f.name for f in fields(SyncSettings)]


def parse_cli(argv: list[str]) -> argparse.Namespace:
    """Parse `argv` with the real `chartsync` parser; fail the test on a usage error."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"chartsync {shlex.join(argv)}: {err.getvalue()}")


def run_help(argv: list[str]) -> None:
    """`python -m chartsync ARGV --help` in a real process exits 0."""
    done = subprocess.run([sys.executable, "-m", "chartsync", *argv, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


# --- hub.toml ---------------------------------------------------------------------------------


def test_hub_toml_parses_with_the_real_parser() -> None:
    raw = tomllib.loads(HUB_TOML.read_text(encoding="utf-8"))["hub"]
    config = parse_hub_config(raw)
    assert config.store.startswith("postgresql://")
    assert ":" not in config.store.removeprefix("postgresql://").split("@")[0], \
        "no password in the store URL"
    # The values written out are the defaults: the example changes nothing by itself.
    defaults = HubConfig(store=config.store)
    # hub_key_file has no default with PostgreSQL: the example must set it.
    assert config.hub_key_file is not None
    for key in raw.keys() - {"hub_key_file"}:
        assert getattr(config, key) == getattr(defaults, key), key


def test_hub_toml_through_hub_serve_with_store_overridden(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'hub.db'}"
    args = parse_cli(["hub", "serve", "--config", str(HUB_TOML), "--store", store])
    config = parse_hub_config(raw_options(args))
    assert config.store == store
    assert config.host == "127.0.0.1"


def test_hub_toml_commented_examples_parse_too() -> None:
    """Uncommenting the `# key = value` examples (tls_cert/tls_key, metrics_token) still parses."""
    text = HUB_TOML.read_text(encoding="utf-8")
    uncommented = re.sub(r"^# ([a-z_]+ = .+)$", r"\1", text, flags=re.MULTILINE)
    raw = tomllib.loads(uncommented)["hub"]
    assert set(raw) == set(HUB_OPTIONS), "every hub option is set or shown commented out"
    config = parse_hub_config(raw)
    assert config.tls_cert is not None and config.metrics_token is not None


@pytest.mark.parametrize("option", HUB_OPTIONS)
def test_hub_option_documented_with_default(option: str) -> None:
    text = HUB_TOML.read_text(encoding="utf-8")
    default = getattr(HubConfig(store="sqlite:x"), option)
    comment = re.search(rf"^# (?:[a-z_]+ / )?{option}(?: / [a-z_]+)?:? (.*)$", text,
                        flags=re.MULTILINE)
    assert comment, f"{option}: no '# {option}: default — effect' comment in hub.toml"
    if option == "store":
        assert comment.group(1).startswith("(required)")
    else:
        shown = "unset" if default is None else str(default)
        assert comment.group(1).strip('"').startswith((shown, f'"{shown}"')), \
            f"{option}: documented default {comment.group(1)!r}, code says {shown}"
    assert option in README.read_text(encoding="utf-8"), f"{option} missing in deploy/README"


# --- edge.env and the systemd units -------------------------------------------------------------


def edge_env() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in EDGE_ENV.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"edge.env: {line!r} is not KEY=VALUE"
            out[key.strip()] = value.strip()
    return out


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values...]}} (systemd allows repeated keys)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            current = sections.setdefault(stripped[1:-1], {})
            continue
        assert current is not None, f"{path.name}:{number}: key outside a section"
        key, sep, value = stripped.partition("=")
        assert sep and key.strip(), f"{path.name}:{number}: {line!r} is not Key=Value"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def systemd_argv(command: str, env: dict[str, str]) -> list[str]:
    """ExecStart expanded as systemd does: ${X} is one word, $X splits on whitespace."""
    argv: list[str] = []
    for word in shlex.split(command):
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:
            argv.extend(env[whole.group(1)].split())
        else:
            argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env[m.group(1)],
                               word))
    return argv


HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
             "PrivateTmp": "yes", "CapabilityBoundingSet": "", "Restart": "on-failure",
             "User": "chartsync"}


@pytest.mark.parametrize("side", ["hub", "edge"])
def test_unit_is_hardened(side: str) -> None:
    unit = read_unit(UNITS / f"chartsync-{side}.service")
    service = unit["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], f"{side}: {key}={value} expected"
    assert service["StateDirectory"], "a StateDirectory for the data"
    after = unit["Unit"]["After"][0].split()
    assert "network-online.target" in after
    assert "network-online.target" in unit["Unit"]["Wants"][0].split()
    if side == "hub":
        assert "postgresql.service" in after
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_hub_unit_runs_a_real_command() -> None:
    service = read_unit(UNITS / "chartsync-hub.service")["Service"]
    argv = systemd_argv(service["ExecStart"][0], {})
    assert argv[0] == INSTALLED_BINARY
    args = parse_cli(argv[1:])
    assert (args.command, args.hub_command) == ("hub", "serve")
    assert args.config == Path("/etc/chartsync/hub.toml")
    # ProtectSystem=strict: the hub can create its key file only in its StateDirectory.
    config = parse_hub_config(tomllib.loads(HUB_TOML.read_text(encoding="utf-8"))["hub"])
    assert config.hub_key_file is not None
    assert config.hub_key_file.parent == Path(f"/var/lib/{service['StateDirectory'][0]}")
    run_help(["hub", "serve"])


def test_edge_unit_runs_a_real_command_with_edge_env() -> None:
    service = read_unit(UNITS / "chartsync-edge.service")["Service"]
    assert service["EnvironmentFile"] == ["/etc/chartsync/edge.env"]
    env = edge_env()
    used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", service["ExecStart"][0]))
    assert used == set(env), "edge.env defines exactly the variables the unit uses"
    argv = systemd_argv(service["ExecStart"][0], env)
    assert argv[0] == INSTALLED_BINARY
    args = parse_cli(argv[1:])
    assert (args.command, args.edge_command) == ("edge", "serve")
    assert str(args.data) == f"/var/lib/{service['StateDirectory'][0]}"
    config = edge_config(args)
    assert config.tls_cert is not None and config.tls_key is not None, "HTTPS by default"
    assert config.tls_cert.parent == args.data
    parse_sync_settings(sync_options(args))
    run_help(["edge", "serve"])


def test_edge_env_documented_example_parses() -> None:
    text = EDGE_ENV.read_text(encoding="utf-8")
    example = re.search(r"^#\s+example: CHARTSYNC_EDGE_EXTRA_ARGS=(.+)$", text, re.MULTILINE)
    assert example
    env = {**edge_env(), "CHARTSYNC_EDGE_EXTRA_ARGS": example.group(1)}
    service = read_unit(UNITS / "chartsync-edge.service")["Service"]
    args = parse_cli(systemd_argv(service["ExecStart"][0], env)[1:])
    assert args.sync_option and args.access_log and args.limit_option
    parse_sync_settings(sync_options(args))
    edge_config(args)


def serve_flags() -> list[str]:
    """The long flags `chartsync edge serve --help` lists, as a user reads them."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args(["edge", "serve", "--help"])
    return sorted({flag for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", out.getvalue())
                   if flag != "--help"})


def test_edge_env_documents_every_serve_flag_and_sync_option() -> None:
    text = EDGE_ENV.read_text(encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    flags = serve_flags()
    assert "--data" in flags and "--sync-option" in flags
    for flag in flags:
        assert flag in text, f"edge.env does not document {flag}"
        assert flag in readme, f"deploy/README.md does not document {flag}"
    defaults = SyncSettings()
    for name in SYNC_OPTIONS:
        value = getattr(defaults, name)
        shown = str(int(value)) if float(value).is_integer() else str(value)
        assert f"{name}={shown}" in text, f"edge.env: sync option {name}={shown} missing"
        assert name in readme, f"deploy/README.md does not document sync option {name}"
    limits = EdgeConfig(data_dir=Path("/var/lib/chartsync"))
    for name in LIMIT_OPTIONS:
        value = getattr(limits, name)
        shown = str(int(value)) if float(value).is_integer() else str(value)
        assert f"{name}={shown}" in text, f"edge.env: limit option {name}={shown} missing"
        assert f"| `{name}` | `{shown}` |" in readme, f"deploy/README.md: {name} {shown}"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    # verify checks that ExecStart is executable: point it at a wrapper of this checkout.
    wrapper = tmp_path / "chartsync"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m chartsync \"$@\"\n")
    wrapper.chmod(0o755)
    for side in ("hub", "edge"):
        text = (UNITS / f"chartsync-{side}.service").read_text(encoding="utf-8")
        (tmp_path / f"chartsync-{side}.service").write_text(
            text.replace(INSTALLED_BINARY, str(wrapper)))
    done = subprocess.run([tool, "verify", *sorted(str(p) for p in tmp_path.glob("*.service"))],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if "chartsync-" in line]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr


# --- compose.yaml and the Dockerfile ------------------------------------------------------------


def compose() -> dict:  # type: ignore[type-arg]
    yaml = pytest.importorskip("yaml", reason="PyYAML (the test extra) is not installed")
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_services_images_healthchecks() -> None:
    services = compose()["services"]
    assert set(services) == {"db", "hub", "edge"}
    assert services["db"]["image"] == "postgres:15"
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        assert service.get("restart") == "unless-stopped", name
    for name in ("hub", "edge"):
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() \
            == DEPLOY / "Dockerfile"
    assert services["hub"]["depends_on"]["db"]["condition"] == "service_healthy"
    volumes = compose()["volumes"]
    assert "db-data" in volumes and "edge-data" in volumes
    assert "db-data:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert "edge-data:/var/lib/chartsync" in services["edge"]["volumes"]


def test_compose_commits_no_secret() -> None:
    data = compose()
    secret = data["secrets"]["db_password"]["file"]
    assert secret.startswith("./secrets/")
    ignored = (DEPLOY / ".gitignore").read_text(encoding="utf-8")
    assert "secrets/*" in ignored.splitlines()
    for name, service in data["services"].items():
        for key in service.get("environment") or {}:
            assert "PASSWORD" not in key or key.endswith("_FILE"), f"{name}: {key} in clear"
            assert "TOKEN" not in key, f"{name}: {key}"
    assert data["services"]["db"]["environment"]["POSTGRES_PASSWORD_FILE"] == \
        "/run/secrets/db_password"
    text = COMPOSE.read_text(encoding="utf-8")
    assert not re.search(r"postgres(ql)?://[^@/\s]+:[^@/\s]+@", text), "password in a URL"


def test_compose_commands_are_real_chartsync_commands(tmp_path: Path) -> None:
    services = compose()["services"]
    hub = services["hub"]
    assert hub["entrypoint"] == ["/bin/sh", "-c"]
    script = shlex.split(hub["command"][0])
    argv = script[script.index("exec") + 1:]
    assert argv[0] == "chartsync"
    args = parse_cli(argv[1:])
    assert (args.command, args.hub_command) == ("hub", "serve")
    assert f"./hub.toml:{args.config}:ro" in hub["volumes"]
    config = parse_hub_config(raw_options(argparse.Namespace(
        **{**vars(args), "config": HUB_TOML})))
    assert config.store == "postgresql://chartsync@db:5432/chartsync"
    assert config.host == "0.0.0.0"
    assert config.hub_key_file is not None
    assert f"hub-key:{config.hub_key_file.parent}" in hub["volumes"], \
        "the hub key file is on a volume (the container is read-only)"
    assert f"127.0.0.1:{config.port}:{config.port}" in hub["ports"]
    edge = parse_cli(services["edge"]["command"])
    assert (edge.command, edge.edge_command) == ("edge", "serve")
    # --insecure-http is for a loopback hub only: the edge shares the hub's network, so
    # the hub service publishes the edge's port too
    assert services["edge"]["network_mode"] == "service:hub"
    assert f"127.0.0.1:{edge.port}:{edge.port}" in hub["ports"]
    assert f":{edge.port}/status.html" in services["edge"]["healthcheck"]["test"][-1]
    assert f":{config.port}/healthz" in hub["healthcheck"]["test"][-1]


def test_dockerfile_is_minimal_and_non_root() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(line.startswith("RUN pip install .") for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert 'ENTRYPOINT ["chartsync"]' in lines
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_docker_compose_config() -> None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) is None:
            continue
        probe = subprocess.run([*cmd, "version"], capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            break
    else:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    secrets = DEPLOY / "secrets" / "db_password.txt"
    created = not secrets.exists()
    if created:  # compose checks that secret files exist; a throwaway one, removed below
        secrets.write_text("not-a-real-password")
    try:
        done = subprocess.run([*cmd, "-f", str(COMPOSE), "config", "--quiet"],
                              capture_output=True, text=True, timeout=120)
    finally:
        if created:
            secrets.unlink()
    assert done.returncode == 0, done.stderr


# --- nginx ----------------------------------------------------------------------------------------


def _locations(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in
            re.finditer(r"location (?:= )?(\S+) \{(.*?)\n    \}", text, re.DOTALL)}


def _mib(size: str) -> int:
    assert size.endswith("m"), size
    return int(size[:-1]) * 1024 * 1024


def test_nginx_limits_and_timeouts_match_the_hub() -> None:
    text = NGINX.read_text(encoding="utf-8")
    defaults = HubConfig(store="sqlite:x")
    loc = _locations(text)
    body = re.compile(r"client_max_body_size (\S+);")
    batches_body = body.search(loc["/v1/batches"])
    assert batches_body is not None
    assert _mib(batches_body.group(1)) == defaults.max_batch_bytes
    snapshots_body = body.search(loc["/v1/snapshots"])
    assert snapshots_body is not None
    assert _mib(snapshots_body.group(1)) == defaults.max_snapshot_bytes
    assert "proxy_set_header Upgrade $http_upgrade;" in loc["/v1/stream"]
    assert "proxy_buffering off;" in loc["/v1/stream"]
    from cloud_hub.api.batches import MAX_WAIT_S
    read = re.search(r"proxy_read_timeout (\d+)s;", loc["/v1/batches"])
    assert read and int(read.group(1)) > MAX_WAIT_S
    assert re.search(r"^\s*ssl_protocols TLSv1\.2 TLSv1\.3;", text, re.MULTILINE)
    ciphers_line = re.search(r"ssl_ciphers (\S+);", text)
    assert ciphers_line is not None
    ciphers = ciphers_line.group(1).split(":")
    assert all(c.startswith("ECDHE-") and ("GCM" in c or "CHACHA20" in c) for c in ciphers)
    assert "Strict-Transport-Security" in text
    assert re.search(r"^\s*gzip off;", text, re.MULTILINE)
    assert "server 127.0.0.1:8443;" in text  # deploy/hub.toml's host and port


def test_nginx_t(tmp_path: Path) -> None:
    nginx, openssl = shutil.which("nginx"), shutil.which("openssl")
    if nginx is None or openssl is None:
        pytest.skip(f"{'nginx' if nginx is None else 'openssl'} not installed "
                    "(apt-get install nginx openssl)")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=hub.example.jp", "-keyout", str(tmp_path / "hub.key"),
                    "-out", str(tmp_path / "hub.pem")], check=True, capture_output=True,
                   timeout=60)
    site = NGINX.read_text(encoding="utf-8") \
        .replace("/etc/ssl/chartsync/hub.fullchain.pem", str(tmp_path / "hub.pem")) \
        .replace("/etc/ssl/chartsync/hub.key", str(tmp_path / "hub.key"))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n  include {tmp_path}/site.conf;\n}}\n")
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


# --- README -------------------------------------------------------------------------------------


def test_readme_covers_files_backups_and_trust() -> None:
    text = README.read_text(encoding="utf-8")
    for name in ("hub.toml", "edge.env", "chartsync-hub.service", "chartsync-edge.service",
                 "compose.yaml", "Dockerfile", "chartsync-hub.conf"):
        assert name in text, name
    assert "chartsync edge backup" in text
    assert "--hub-ca" in text
    assert "site.key" in text
