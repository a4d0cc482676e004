"""Build real document files for tests: PDF (fpdf2, optionally encrypted with pypdf), DOCX, HTML, Markdown.

Each ``make_*`` writes the file at ``path`` (creating parent folders) and returns ``path``.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path

import docx
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

Sections = Sequence[tuple[str | None, Sequence[str]]]  # (heading or None, paragraphs)


def make_pdf(
    path: Path, pages: Sequence[str], *, title: str | None = None, encrypt_password: str | None = None
) -> Path:
    """A PDF with one page per string ("" makes a page without text).

    ``encrypt_password`` encrypts it (AES-128) with that user password; "" encrypts it with an empty user
    password, which any reader opens (only the owner password restricts it).
    """
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 6, text)
    data = bytes(pdf.output())
    if encrypt_password is not None:
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
        writer.encrypt(user_password=encrypt_password, owner_password="owner-secret", algorithm="AES-128")
        buffer = io.BytesIO()
        writer.write(buffer)
        data = buffer.getvalue()
    return _write(path, data)


def make_docx(
    path: Path,
    sections: Sections,
    *,
    title: str | None = None,
    table: Sequence[Sequence[str]] = (),
) -> Path:
    """A Word document: each section's heading as Heading 1, then its paragraphs; ``table`` goes last."""
    document = docx.Document()
    if title:
        document.core_properties.title = title
    for heading, paragraphs in sections:
        if heading:
            document.add_heading(heading, level=1)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def make_html(path: Path, sections: Sections, *, title: str | None = None, head: str = "") -> Path:
    """An HTML page: ``<title>``, extra ``head`` markup, and each section as ``<h2>`` plus ``<p>``s."""
    body = []
    for heading, paragraphs in sections:
        if heading:
            body.append(f"<h2>{html.escape(heading)}</h2>")
        body.extend(f"<p>{html.escape(paragraph)}</p>" for paragraph in paragraphs)
    title_tag = f"<title>{html.escape(title)}</title>" if title else ""
    page = f"<!DOCTYPE html><html><head>{title_tag}{head}</head><body>{''.join(body)}</body></html>"
    return _write(path, page.encode())


def make_markdown(path: Path, sections: Sections, *, title: str | None = None) -> Path:
    """A Markdown file: ``# title``, then each section as ``## heading`` plus paragraphs."""
    lines = [f"# {title}", ""] if title else []
    for heading, paragraphs in sections:
        if heading:
            lines += [f"## {heading}", ""]
        for paragraph in paragraphs:
            lines += [paragraph, ""]
    return _write(path, "\n".join(lines).encode())


# A team's folders for document spaces: the same questions have a different answer in each folder, and every
# sentence names its folder's team, so a quote outside a space is easy to spot.
TEAM_FOLDERS: dict[str, dict[str, list[str]]] = {
    "hr/leave.md": {"Annual leave": [
        "HR policy: employees get 30 days of paid annual leave per year, booked through the HR portal.",
        "HR policy: unused annual leave days carry over until the end of March."]},
    "hr/onboarding/first-week.md": {"Onboarding": [
        "HR onboarding: a new employee receives a laptop and a badge on the first day.",
        "HR onboarding: the first week ends with a meeting with the manager about annual goals."]},
    "finance/leave-costs.md": {"Annual leave costs": [
        "Finance planning: the budget counts 25 days of annual leave per employee when planning salary costs.",
        "Finance planning: annual leave payouts are booked as salary costs in December."]},
    "finance/expenses.md": {"Expenses": [
        "Finance rule: expenses above 500 euros need the approval of the finance controller.",
        "Finance rule: a laptop bought privately is not refunded as an expense."]},
    "it/laptops.md": {"Laptops": [
        "IT service: a broken laptop is replaced within two days by the IT service desk.",
        "IT service: passwords expire every 90 days and are reset in the self-service portal."]},
    "it/runbooks/restart.md": {"Restarting the mail server": [
        "IT runbook: restart the mail server with the restart-mail command after midnight only.",
        "IT runbook: a failed restart of the mail server is escalated to the on-call engineer."]},
    "public/holidays.md": {"Public holidays": [
        "Public notice: the office is closed on 12 public holidays a year, besides annual leave days.",
        "Public notice: the canteen opens at eight and serves lunch until two."]},
}
FOLDER_QUESTIONS = [
    "How many days of annual leave do employees get?",
    "What happens with a broken laptop?",
    "Who approves large expenses?",
    "How do I restart the mail server?",
    "What does a new employee receive on the first day?",
    "When do passwords expire?",
    "How many public holidays are there?",
]


def make_team_folders(root: Path) -> Path:
    """``TEAM_FOLDERS`` as Markdown files below ``root``; returns ``root``."""
    for source, sections in TEAM_FOLDERS.items():
        title, paragraphs = next(iter(sections.items()))
        make_markdown(root / source, [(None, paragraphs)], title=title)
    return root


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
