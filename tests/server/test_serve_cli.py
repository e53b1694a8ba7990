"""`nis2kube serve` refuses to start without credentials or with bad settings (it never runs open)."""

from __future__ import annotations

from typer.testing import CliRunner

from nis2kube.cli.main import app


def test_serve_requires_a_credential(tmp_path, monkeypatch):
    monkeypatch.delenv("NIS2KUBE_WEBHOOK_TOKEN", raising=False)
    monkeypatch.delenv("NIS2KUBE_WEBHOOK_HMAC_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["serve", "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2 and "bearer token or an HMAC secret" in result.output


def test_serve_reports_bad_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("NIS2KUBE_WEBHOOK_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nis2kube.yaml").write_text("server:\n  token_file: missing.txt\n")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2 and "missing.txt: cannot read secret" in result.output
    (tmp_path / "nis2kube.yaml").write_text("incidents:\n  timezone: Mars/Olympus\n")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2 and "unknown time zone 'Mars/Olympus'" in result.output
