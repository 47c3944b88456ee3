"""deploy/myproject.env.example lists exactly the variables the code reads: none missing, none
that nothing reads (it once listed two, from a channel layer long gone)."""

import re

from tests.live import ROOT

EXAMPLE = ROOT / "deploy" / "myproject.env.example"
# Read outside settings.py: uwsgi.ini (its if-env blocks) and deploy/daphne.sh.
ELSEWHERE = {"UWSGI_PROCESSES", "UWSGI_THREADS", "UWSGI_HARAKIRI", "DAPHNE_BIND"}


def read_by_settings() -> set[str]:
    source = (ROOT / "myproject" / "settings.py").read_text()
    return set(re.findall(r'(?:env\.\w+|_rate|_duration)\(\s*"([A-Z][A-Z0-9_]+)"', source))


def listed() -> set[str]:
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", EXAMPLE.read_text(), flags=re.M))


def test_the_example_lists_every_variable_the_code_reads_and_no_other():
    read = read_by_settings() | ELSEWHERE
    assert len(read) > 30  # the pattern finds them
    assert listed() - read == set(), "listed, read by nothing"
    assert read - listed() == set(), "read, not listed"


def test_the_other_readers_read_what_the_example_says_they_do():
    uwsgi = (ROOT / "uwsgi.ini").read_text()
    for name in ("UWSGI_PROCESSES", "UWSGI_THREADS", "UWSGI_HARAKIRI"):
        assert f"if-env = {name}" in uwsgi
    assert "DAPHNE_BIND" in (ROOT / "deploy" / "daphne.sh").read_text()
