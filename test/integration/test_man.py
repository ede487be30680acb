"""The man page (docs/wsrelay.1) and the sample config (docs/wsrelay.conf) cannot go stale:
every long option the binary's --help names is in both, and the sample config starts a
server."""

import re
from pathlib import Path

from conftest import get, run_cli

DOCS = Path(__file__).resolve().parents[2] / "docs"
ACTIONS = {"help", "version"}  # options that are not settings: never in a config file


def long_options():
    r = run_cli("--help")
    assert r.returncode == 0, r
    names = set(re.findall(r"^  --([a-z][a-z-]*)", r.stdout.decode(), re.M))
    assert {"config", "port", "log-format", "quiet", "help"} <= names, names
    return names


def test_the_man_page_has_an_entry_for_every_option():
    page = (DOCS / "wsrelay.1").read_text()
    entries = set(re.findall(r"^\.It Fl -([a-z][a-z-]*)", page, re.M))
    missing = long_options() - entries
    assert not missing, f"docs/wsrelay.1 has no .It Fl entry for: {sorted(missing)}"
    unknown = entries - long_options()
    assert not unknown, f"docs/wsrelay.1 documents options the binary lacks: {sorted(unknown)}"
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "CONFIGURATION FILE",
                    "SIGNALS", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO"):
        assert f"\n.Sh {section}\n" in page, section
    for env in ("WSRELAY_TOKEN_SECRET", "WSRELAY_REDIS_PASSWORD"):
        assert f".It Ev {env}" in page, env


def test_the_sample_config_shows_every_setting_commented_out():
    text = (DOCS / "wsrelay.conf").read_text()
    settings = set(re.findall(r"^# ([a-z][a-z-]*) = ", text, re.M))
    missing = long_options() - ACTIONS - {"config"} - settings
    assert not missing, f"docs/wsrelay.conf lacks '# name = ...' for: {sorted(missing)}"
    assert not (settings - long_options()), settings - long_options()
    assert not [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")], \
        "every line of the sample config is a comment: it changes no default"


def test_the_sample_config_parses_and_serves(start_server):
    # Its values are all commented out, so the flags that place the test server apply.
    srv = start_server("--config", DOCS / "wsrelay.conf")
    assert get(srv.port, "/").status == 200


def test_each_commented_setting_parses_when_uncommented(tmp_path):
    # The examples are real values: uncommented one at a time, each passes the file's checks.
    # So that nothing starts (the files they name do not exist here), the flags make a
    # configuration the checks across options refuse, which they run only after the file
    # parsed: exit 2 without "FILE:LINE:".
    text = (DOCS / "wsrelay.conf").read_text()
    for line in text.splitlines():
        m = re.match(r"^# ([a-z][a-z-]*) = (.*)$", line)
        if not m:
            continue
        conf = tmp_path / f"{m.group(1)}.conf"
        conf.write_text(f"{m.group(1)} = {m.group(2)}\n")
        r = run_cli("--config", str(conf), "--max-message=64K", "--max-buffer=2K")
        err = r.stderr.decode(errors="replace")
        assert r.returncode == 2 and not err.startswith(f"wsrelay: {conf}"), (line, err)
        assert "go together" in err or "must exceed" in err, (line, err)
