"""The daily self-training job as deployed: deploy.sh --self-training installs the trainer's
packages, a oneshot unit systemd accepts and a daily timer; compose runs it as an opt-in service
on the same data volume. Dry runs and static checks only: nothing is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.test_deploy import SECRET, _deploy, _in_order

REPO = Path(__file__).resolve().parent.parent


def test_systemd_dry_run_with_self_training_installs_the_trainer_and_enables_its_timer() -> None:
    proc = _deploy("--systemd", "--dry-run", "--self-training", "--prefix", "/opt/scan", env={"TG_TOKEN": SECRET, "ALLOWED_IDS": "42"})
    assert proc.returncode == 0, proc.stderr
    _in_order(proc.stdout, ["-r /opt/scan/app/requirements-train.txt", "write /etc/systemd/system/mexc-pump-scanner.service",
                            "write /etc/systemd/system/mexc-pump-scanner-train.service (mode 644)",
                            "ExecStart=/opt/scan/app/.venv/bin/python -m supervisor.train --self-train --config /opt/scan/app/config.yaml",
                            "write /etc/systemd/system/mexc-pump-scanner-train.timer (mode 644)", "OnCalendar=*-*-* 03:00:00 UTC",
                            "systemctl daemon-reload", "systemctl enable --now mexc-pump-scanner-train.timer",
                            "systemctl restart mexc-pump-scanner.service", "done"])  # fmt: skip
    plain = _deploy("--systemd", "--dry-run", "--prefix", "/opt/scan", env={"TG_TOKEN": SECRET, "ALLOWED_IDS": "42"})
    assert "train" not in plain.stdout.replace("supervisor.train", "")  # opt-in: no trainer without the flag
    docker = _deploy("--dry-run", "--self-training", env={"PATH": "/usr/bin:/bin", "TG_TOKEN": SECRET, "ALLOWED_IDS": "42"})
    assert docker.returncode == 0 and "--profile training up -d --build" in docker.stdout


def test_the_training_units_are_valid_systemd_units(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / ".venv" / "bin").mkdir(parents=True)
    os.symlink(shutil.which("python3") or "/usr/bin/python3", app / ".venv" / "bin" / "python")
    (tmp_path / ".env").write_text("")
    units = []
    for name in ("mexc-pump-scanner-train.service", "mexc-pump-scanner-train.timer"):
        text = (REPO / "deploy" / name).read_text()
        for key, value in (("@APP_DIR@", str(app)), ("@DATA_DIR@", str(tmp_path / "data")), ("@ENV_FILE@", str(tmp_path / ".env")),
                           ("@USER@", "root"), ("@GROUP@", "root")):  # fmt: skip
            text = text.replace(key, value)
        (tmp_path / name).write_text(text)
        units.append(str(tmp_path / name))
    proc = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_compose_trainer_is_opt_in_shares_the_data_volume_and_has_the_training_packages() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    trainer = services["trainer"]
    assert trainer["profiles"] == ["training"] and trainer["build"]["args"] == {"REQUIREMENTS": "requirements-train.txt"}
    assert "./data:/data" in trainer["volumes"] and trainer["environment"]["SCANNER_DATA_DIR"] == "/data"
    assert "python -m supervisor.train --self-train --config config.yaml" in trainer["command"][-1]
    assert "$$(date +%s)" in trainer["command"][-1]  # a literal $ for the shell, not a compose variable
    assert "image" in trainer and trainer["image"] != services["scanner"]["image"]
    train_reqs = (REPO / "requirements-train.txt").read_text()
    assert "-r requirements.txt" in train_reqs and "scikit-learn==" in train_reqs and "scipy==" in train_reqs
    assert "requirements-train.txt" in (REPO / "Dockerfile").read_text()
    assert "scikit-learn" not in (REPO / "requirements.txt").read_text()  # never a package of the service itself
