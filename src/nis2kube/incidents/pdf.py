"""PDF rendering of a report draft with fpdf2 (pure Python, no system libraries).

Layout is generic; every word comes from the draft and its profile, so PDFs follow the profile's language.
fpdf2's built-in Helvetica covers Latin-1 (enough for German umlauts and ß); other characters are
replaced with '?' rather than failing the report.
"""

from __future__ import annotations

from fpdf import FPDF

from nis2kube.incidents.reports import Draft


def _t(text: object) -> str:
    return str(text).replace("\u2013", "-").replace("\u2014", "-").encode("latin-1", "replace").decode("latin-1")


def render_pdf(d: Draft) -> bytes:
    r = d.to_dict()
    labels = d.profile["labels"]
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_creation_date(d.generated_at)
    pdf.add_page()
    width = pdf.epw

    def line(text: str, size: int = 10, style: str = "", height: float = 5.5) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(width, height, _t(text), new_x="LMARGIN", new_y="NEXT")

    line(f"{r['title']}: {r['incident']['title']}", 15, "B", 8)
    line(labels["draft_notice"], 8, "I")
    pdf.ln(2)
    header = [(labels["incident"], r["incident"]["id"]), (labels["recipient"], r["recipient"]),
              (labels["report_for"], r["legal_basis"]), (labels["detected_at"], d.local(d.incident.detected_at)),
              (labels["aware_at"], d.local(d.incident.aware_at)), (labels["due_at"], d.local(d.due_at)),
              (labels["generated_at"], d.local(d.generated_at))]
    if r["incident"]["entity"]:
        header.insert(1, (labels["entity"], r["incident"]["entity"]))
    for key, value in header:
        line(f"{key}: {value}", 9)
    pdf.ln(3)
    line(labels["content"], 12, "B", 7)
    for f in d.fields:
        line(f.label + (f" ({f.note})" if f.note else ""), 10, "B")
        if f.missing:
            pdf.set_text_color(190, 0, 0)
            line(labels["missing"], 10, "B")
            pdf.set_text_color(0, 0, 0)
        elif isinstance(f.value, str):
            line(f.value)
        else:
            for item in f.value:
                line(f"- {item}")
        pdf.ln(1.5)
    if d.missing:
        line(f"{labels['missing_summary']}: {', '.join(d.missing)}", 10, "B")
    sections = [
        (labels["affected"], [*r["context"]["services"], *r["context"]["namespaces"], *r["context"]["workloads"]]),
        (labels["timeline"], [f"{e['at']} - {e['text']} ({e['by']})" for e in r["context"]["timeline"]]),
        (labels["evidence"], [f"{e['name']}: {e['sha256']}" for e in r["context"]["evidence"]]),
        (labels["submitted"], [f"{s['kind']} {s['submitted_at']} {s['channel']} {s['reference']} "
                               f"{s['content_sha256']}" for s in r["context"]["reports"]]),
    ]
    for title, items in sections:
        pdf.ln(2)
        line(title, 11, "B", 6)
        for item in items or [labels["none"]]:
            line(f"- {item}", 9)
    return bytes(pdf.output())
