"""The scan command end to end: exit codes, stdin, formats, errors, config discovery."""

import json

from typer.testing import CliRunner

from conftest import EXAMPLE
from nis2kube.cli.main import app

runner = CliRunner()
LATEST = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: mes}\nspec: {containers: [{name: c, image: nginx}]}\n"
)


def test_stdin_json_output_and_fail_on(tmp_path):
    result = runner.invoke(app, ["scan", "-", "-o", "json", "--checks", "images.*", "--fail-on", "medium"],
                           input=LATEST)  # fmt: skip
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["summary"]["blocking"] >= 1
    ok = runner.invoke(app, ["scan", "-", "-o", "json", "--checks", "images.*", "--fail-on", "critical"], input=LATEST)
    assert ok.exit_code == 0
    zero = runner.invoke(app, ["scan", "-", "-o", "json", "--checks", "images.*", "--fail-on", "medium", "--exit-zero"],
                         input=LATEST)  # fmt: skip
    assert zero.exit_code == 0 and json.loads(zero.stdout)["summary"]["blocking"] >= 1
    assert runner.invoke(app, ["scan", "-", "--exit-zero"], input="kind: [").exit_code == 2


def test_usage_errors_exit_2(tmp_path):
    assert runner.invoke(app, ["scan"]).exit_code == 2
    assert runner.invoke(app, ["scan", str(tmp_path / "missing.yaml")]).exit_code == 2
    assert runner.invoke(app, ["scan", "-", "-o", "pdfx"], input=LATEST).exit_code == 2
    assert runner.invoke(app, ["scan", "-", "--fail-on", "urgent"], input=LATEST).exit_code == 2
    assert runner.invoke(app, ["scan", "-", "--checks", "nope.*"], input=LATEST).exit_code == 2
    missing = str(tmp_path / "no" / "such" / "folder")
    assert runner.invoke(app, ["scan", "-", "--out", missing + "/r.json"], input=LATEST).exit_code == 2
    assert runner.invoke(app, ["scan", "-", "--metrics", missing + "/m.prom"], input=LATEST).exit_code == 2


def test_out_file_and_example_config_is_found(tmp_path):
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["scan", str(EXAMPLE), "-o", "json", "--out", str(out)])
    assert result.exit_code in (0, 1), result.output
    report = json.loads(out.read_text())
    approved = [f for f in report["findings"] if f["check"] == "images.approved-registry"]
    assert approved and all(f["status"] != "not-assessed" for f in approved)  # the example's config was used


def test_controls_and_explain():
    assert "art21.2.d" in runner.invoke(app, ["controls"]).stdout
    explained = runner.invoke(app, ["explain", "images.mutable-tag"])
    assert explained.exit_code == 0 and "art21.2.d" in explained.stdout
    assert runner.invoke(app, ["explain", "no.such-check"]).exit_code == 2


def test_as_of_judges_waiver_expiry_on_that_day(tmp_path):
    waivers = tmp_path / "w.yaml"
    waivers.write_text("waivers:\n- check: images.*\n  justification: vendor image, replaced in Q1\n"
                       "  owner: ot-team@plant.example\n  expires: 2026-12-31\n")
    args = ["scan", "-", "-o", "json", "--checks", "images.*", "--fail-on", "medium", "--waivers", str(waivers)]
    before = runner.invoke(app, [*args, "--as-of", "2026-12-31"], input=LATEST)
    assert before.exit_code == 0, before.output
    assert {f["status"] for f in json.loads(before.stdout)["findings"]} <= {"pass", "waived", "not-assessed"}
    after = runner.invoke(app, [*args, "--as-of", "2027-01-01"], input=LATEST)
    assert after.exit_code == 1
    assert json.loads(after.stdout)["waivers"][0]["state"] == "expired"
    assert runner.invoke(app, [*args, "--as-of", "31.12.2026"], input=LATEST).exit_code == 2


def test_a_fifo_is_skipped_not_waited_on(tmp_path):
    """Named pipes and devices are not manifests: reading one could block forever (no writer) or never end."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    good = tmp_path / "pod.yaml"
    good.write_text(LATEST)
    proc = subprocess.run([sys.executable, "-c", "from nis2kube.cli.main import run; run()", "scan", str(fifo),
                           str(good), "-o", "json", "--checks", "images.*"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "not a regular file" in proc.stderr
    assert json.loads(proc.stdout)["summary"]["objects"] == 1


def test_the_console_script_skips_teardown_but_keeps_exit_code_and_output(tmp_path):
    """After a scan the process leaves with os._exit (no freeing of every object): the exit code, the whole
    report on a pipe, and a reader that stops early (`| head`) must all come out as with a normal exit."""
    import subprocess
    import sys

    from conftest import EXAMPLE

    entry = [sys.executable, "-c", "from nis2kube.cli.main import run; run()"]
    full = subprocess.run([*entry, "scan", str(EXAMPLE), "-o", "json"], capture_output=True, timeout=120)
    assert full.returncode == 1, full.stderr
    report = json.loads(full.stdout)
    assert report["summary"]["blocking"] > 0 and len(report["findings"]) > 500
    with subprocess.Popen([*entry, "scan", str(EXAMPLE)], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        proc.stdout.read(100)
        proc.stdout.close()  # the reader goes away mid-report
        stderr = proc.stderr.read().decode()
    assert proc.returncode in (0, 1, 120) and "Traceback" not in stderr, stderr
    usage = subprocess.run([*entry, "scan", str(EXAMPLE), "-o", "yaml"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "unknown output format" in usage.stderr


def test_console_script_registers_only_the_command_asked_for_and_knows_every_command():
    """`run()` builds the app from COMMANDS: a name missing there would still work (everything is registered
    for names it does not know), but a wrong entry would hide a command, so the table is held to what each
    module registers."""
    import subprocess
    import sys

    import typer.main

    from nis2kube.cli import main

    def names(root):
        return set(typer.main.get_command(root).commands)

    for module in main.COMMAND_MODULES:
        assert names(main.build_app([module])) == {c for c, m in main.COMMANDS.items() if m == module}
    assert names(main.app) == set(main.COMMANDS)
    entry = [sys.executable, "-c", "from nis2kube.cli.main import run; run()"]
    listing = subprocess.run([*entry, "--help"], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and all(name in listing.stdout for name in main.COMMANDS)
    unknown = subprocess.run([*entry, "scna"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "No such command" in unknown.stderr
    explain = subprocess.run([*entry, "explain", "rbac.wildcard"], capture_output=True, text=True, timeout=60)
    assert explain.returncode == 0 and "rbac.wildcard" in explain.stdout
