"""Contract DOCX and redlines opened by a real office suite (LibreOffice, headless): each built-in
template in each language converts to PDF with its Chinese text in the text layer and CJK fonts embedded.

Skipped when LibreOffice is not installed. Needs: libreoffice-writer-nogui fonts-noto-cjk
poppler-utils python3-uno (Debian packages).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from services.contracts.adapters.docx_writer import render_docx
from services.contracts.adapters.redline import render_redline_docx
from tests.office_helpers import restructured_zh, revised_en, revised_zh, sample_en, sample_zh

SOFFICE = shutil.which("soffice")
if SOFFICE is None:
    pytest.skip("LibreOffice (soffice) is not on PATH", allow_module_level=True)

CONVERT_TIMEOUT = 180


def _profile_url(path: Path) -> str:
    # A private profile per run: no clash with a desktop LibreOffice or a parallel run.
    return path.resolve().as_uri()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("office")


def convert(workdir: Path, source: Path, target_format: str) -> Path:
    subprocess.run(
        [SOFFICE, f"-env:UserInstallation={_profile_url(workdir / 'convert-profile')}", "--headless",
         "--norestore", "--convert-to", target_format, "--outdir", str(source.parent), str(source)],
        check=True, capture_output=True, timeout=CONVERT_TIMEOUT,
    )
    target = source.with_suffix("." + target_format.split(":")[0])
    assert target.exists(), f"LibreOffice did not write {target.name}"
    return target


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True,
                          text=True, timeout=60).stdout


def pdf_fonts(pdf: Path) -> list[tuple[str, bool]]:
    output = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True, timeout=60).stdout
    fonts = []
    for line in output.splitlines()[2:]:
        columns = line.split()
        # name ... emb sub uni object ID: "emb" is the 5th column from the end
        fonts.append((columns[0], columns[-5] == "yes"))
    return fonts


@pytest.fixture(scope="module")
def poppler():
    if not (shutil.which("pdftotext") and shutil.which("pdffonts")):
        pytest.skip("poppler-utils (pdftotext, pdffonts) not installed")


def test_chinese_contract_converts_to_pdf_with_embedded_cjk_font(workdir, poppler):
    source = workdir / "zh.docx"
    source.write_bytes(render_docx(sample_zh()))
    pdf = convert(workdir, source, "pdf")
    text = pdf_text(pdf)
    compact = "".join(text.split())
    assert "软件开发外包服务合同" in compact
    for label in ("第一条服务内容", "第十条违约责任", "第十一条合同解除", "第十二条争议解决"):
        assert label in compact, label
    assert "合同编号：QY-2024-0042" in compact
    assert "360,000.00" in compact and "杭州示例软件有限公司" in compact
    pages = text.count("\f")
    assert f"第1页共{pages}页" in compact and f"第{pages}页共{pages}页" in compact
    cjk = [name for name, embedded in pdf_fonts(pdf) if embedded and "CJK" in name.upper()]
    assert cjk, pdf_fonts(pdf)


def test_english_contract_converts_to_pdf_with_page_x_of_y(workdir, poppler):
    source = workdir / "en.docx"
    source.write_bytes(render_docx(sample_en()))
    raw = pdf_text(convert(workdir, source, "pdf"))
    pages, text = raw.count("\f"), " ".join(raw.split())
    assert "1. Scope of Services" in text and "11. Termination" in text
    assert f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text
    assert "Contract No. QY-2024-0043" in text


# -- the built-in templates ---------------------------------------------------------------------

TEMPLATES = ("software_development", "call_centre", "it_operations", "labour_outsourcing")
LANGUAGES = ("zh-CN", "en")


@pytest.fixture(scope="module")
def template_pdfs(workdir, poppler) -> dict[tuple[str, str], tuple[Path, dict]]:
    """Every built-in template in both languages, drafted from its samples and converted to PDF in
    one LibreOffice run (one start-up instead of eight)."""
    from services.contracts.domain import drafting
    from services.contracts.adapters.library_files import load_library
    library = load_library()
    folder = workdir / "templates"
    folder.mkdir()
    sources = {}
    for key in TEMPLATES:
        template = library.template(key)
        for language in LANGUAGES:
            source = folder / f"{key}.{language}.docx"
            draft = drafting.draft(template, language, dict(template.sample_variables))
            source.write_bytes(render_docx(draft.document))
            sources[(key, language)] = (source, {"title": draft.title, "number": draft.number,
                                                 "samples": template.sample_variables,
                                                 "last_article": draft.document.articles[-1],
                                                 "closing": draft.document.closing})
    subprocess.run(
        [SOFFICE, f"-env:UserInstallation={_profile_url(workdir / 'convert-profile')}", "--headless",
         "--norestore", "--convert-to", "pdf", "--outdir", str(folder), *(str(s) for s, _ in sources.values())],
        check=True, capture_output=True, timeout=CONVERT_TIMEOUT * 2,
    )
    return {k: (source.with_suffix(".pdf"), info) for k, (source, info) in sources.items()}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", TEMPLATES)
def test_each_template_converts_to_pdf_with_chinese_text_and_cjk_fonts(template_pdfs, key, language):
    pdf, info = template_pdfs[(key, language)]
    assert pdf.exists(), f"LibreOffice did not write {pdf.name}"
    raw = pdf_text(pdf)
    compact = "".join(raw.split())
    samples = info["samples"]
    # The Chinese party names are in the text layer in both languages; the zh-CN title too.
    assert samples["client"]["name"] in compact and samples["vendor"]["name"] in compact
    assert "".join(info["title"].split()) in compact
    assert info["number"] in compact
    pages = raw.count("\f")
    assert pages >= 3
    if language == "zh-CN":
        assert "第一条" in compact and f"第1页共{pages}页" in compact and "人民币" in compact
    else:
        assert f"Page 1 of {pages}" in " ".join(raw.split())
    fonts = pdf_fonts(pdf)
    assert [name for name, embedded in fonts if embedded and "CJK" in name.upper()], fonts


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", TEMPLATES)
def test_signature_blocks_share_the_last_page_with_the_last_article(template_pdfs, key, language):
    pdf, info = template_pdfs[(key, language)]
    pages = [page for page in pdf_text(pdf).split("\f") if page.strip()]
    last_page = "".join(pages[-1].split())
    samples = info["samples"]
    # the blocks sit side by side, so a long name wraps and its lines interleave with the other's
    assert samples["client"]["name"][:6] in last_page and samples["vendor"]["name"][:6] in last_page
    assert all("".join(p.text.split()) in last_page for p in info["closing"])
    last_paragraph = info["last_article"].blocks[-1].text
    assert "".join(last_paragraph.split())[-20:] in last_page, "the signatures stand alone on the last page"


# -- redlines through UNO ----------------------------------------------------------------------

# Runs under the system Python that ships python3-uno (the project virtualenv has no uno).
UNO_SCRIPT = r'''
import json, sys, time
import uno
from com.sun.star.beans import PropertyValue
from com.sun.star.connection import NoConnectException

def prop(name, value):
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p

pipe, jobs = sys.argv[1], json.loads(sys.argv[2])
local = uno.getComponentContext()
resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
deadline = time.monotonic() + 120
while True:          # wait for the office to listen, with a deadline
    try:
        ctx = resolver.resolve("uno:pipe,name=%s;urp;StarOffice.ComponentContext" % pipe)
        break
    except NoConnectException:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
if jobs == "terminate":
    desktop.terminate()
    sys.exit(0)
dispatcher = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.DispatchHelper", ctx)
commands = {"accept": ".uno:AcceptAllTrackedChanges", "reject": ".uno:RejectAllTrackedChanges"}
results = []
for job in jobs:
    doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(job["source"]), "_blank", 0, (prop("Hidden", True),))
    before = doc.getRedlines().getCount()
    if job["action"] in commands:
        dispatcher.executeDispatch(doc.getCurrentController().getFrame(), commands[job["action"]], "", 0, ())
    after = doc.getRedlines().getCount()
    doc.storeToURL(uno.systemPathToFileUrl(job["target"]),
                   (prop("FilterName", "Text (encoded)"), prop("FilterOptions", "UTF8,LF")))
    doc.close(True)
    results.append({"before": before, "after": after})
print(json.dumps(results), flush=True)
# The UNO bridge can crash while Python tears it down (SIGSEGV after all the work is done): leave
# without tearing it down, so the exit status says whether the jobs ran.
import os
os._exit(0)
'''


def _python_with_uno() -> str | None:
    candidates = ["/usr/bin/python3", shutil.which("python3"), "/usr/lib/libreoffice/program/python"]
    for candidate in dict.fromkeys(c for c in candidates if c and os.path.exists(c)):
        if subprocess.run([candidate, "-c", "import uno"], capture_output=True, timeout=60).returncode == 0:
            return candidate
    return None


class Office:
    """One headless LibreOffice listening on a pipe, driven by UNO scripts."""

    def __init__(self, workdir: Path, python: str) -> None:
        self.python = python
        self.pipe = f"qiyue_test_{os.getpid()}"
        self.script = workdir / "uno_jobs.py"
        self.script.write_text(UNO_SCRIPT)
        self.process = subprocess.Popen(
            [SOFFICE, f"-env:UserInstallation={_profile_url(workdir / 'uno-profile')}", "--headless",
             "--invisible", "--norestore", "--nologo", "--nodefault", f"--accept=pipe,name={self.pipe};urp;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )

    def run(self, jobs: list[dict]) -> list[dict]:
        completed = subprocess.run([self.python, str(self.script), self.pipe, json.dumps(jobs)],
                                   capture_output=True, text=True, timeout=CONVERT_TIMEOUT)
        assert completed.returncode == 0, completed.stderr
        return json.loads(completed.stdout)

    def stop(self) -> None:
        subprocess.run([self.python, str(self.script), self.pipe, json.dumps("terminate")],
                       capture_output=True, timeout=60)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)   # the group this fixture started
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def office(workdir):
    python = _python_with_uno()
    if python is None:
        pytest.skip("no Python with the uno module (Debian package python3-uno)")
    office = Office(workdir, python)
    try:
        yield office
    finally:
        office.stop()


REDLINES = {
    "zh-CN edits": (sample_zh, revised_zh),
    "en edits": (sample_en, revised_en),
    "zh-CN restructured": (sample_zh, restructured_zh),
    "zh-CN restructured back": (restructured_zh, sample_zh),
}


@pytest.mark.parametrize("pair", REDLINES.values(), ids=REDLINES.keys())
def test_libreoffice_accept_all_gives_new_text_and_reject_all_gives_old(office, workdir, pair, request):
    old, new = pair[0](), pair[1]()
    folder = workdir / request.node.callspec.id.replace(" ", "_")
    folder.mkdir()
    files = {
        "redline": render_redline_docx(old, new, "审阅人", datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)),
        "old": render_docx(old),
        "new": render_docx(new),
    }
    for name, content in files.items():
        (folder / f"{name}.docx").write_bytes(content)
    jobs = [
        {"action": "accept", "source": str(folder / "redline.docx"), "target": str(folder / "accepted.txt")},
        {"action": "reject", "source": str(folder / "redline.docx"), "target": str(folder / "rejected.txt")},
        {"action": "none", "source": str(folder / "new.docx"), "target": str(folder / "new.txt")},
        {"action": "none", "source": str(folder / "old.docx"), "target": str(folder / "old.txt")},
    ]
    accepted, rejected, plain_new, plain_old = office.run(jobs)

    assert accepted["before"] > 0 and rejected["before"] > 0, "LibreOffice sees the tracked changes"
    assert accepted["after"] == rejected["after"] == 0
    assert plain_new["before"] == plain_old["before"] == 0
    text = {name: (folder / f"{name}.txt").read_text(encoding="utf-8-sig") for name in ("accepted", "rejected", "new", "old")}
    assert text["new"] != text["old"]
    # The text export includes the article numbers, so a heading left empty or renumbered shows.
    assert text["accepted"] == text["new"]
    assert text["rejected"] == text["old"]
