"""The bundle's HTML pages: self-contained (inline CSS, figures embedded), readable on screen and
printed to PDF from any browser. A simulated run carries the SIMULATED mark at the top of every page,
on screen and on every printed page."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import jinja2

from rig.report.model import RunModel
from rig.report_css import BASE_CSS
from rig.results import SIMULATED_MARK

PRINT_CSS = """
  .verdict { font-weight: bold; } .PASS { color: #060; } .MARGINAL { color: #a60; background: #fff3d6; }
  .FAIL, .ERROR, .NOT-COVERED, .NOT-PROVEN, .INCOMPLETE, .NON-CONFORMING { color: #a00; font-weight: bold; }
  .banner { border: 3px solid #a00; color: #a00; padding: 0.5em; font-weight: bold; margin: 0.6em 0; }
  .warn { border: 2px solid #a60; background: #fff3d6; padding: 0.4em 0.7em; margin: 0.6em 0; }
  .big { font-size: 15pt; } figure { margin: 0.6em 0; break-inside: avoid; page-break-inside: avoid; }
  figcaption { font-size: 9pt; color: #333; } tr { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; } .sim-running { display: none; }
  @page { size: A4; margin: 14mm 10mm 14mm 10mm; }
  @media print {
    body { max-width: none; margin: 0; font-size: 9pt; }
    .sim-running { display: block; position: fixed; top: 0; left: 0; right: 0; text-align: center; color: #a00;
                   font-weight: bold; font-size: 8pt; background: white; }
    body.simulated { padding-top: 1.4em; }
    h2 { break-after: avoid; page-break-after: avoid; }
    a { color: inherit; text-decoration: none; }
  }
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_ENV.filters["num"] = lambda v: f"{v:.6g}" if isinstance(v, float) else ("" if v is None else v)
_ENV.filters["cls"] = lambda v: str(v).replace(" ", "-")

HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
{% if simulated %}<meta name="stimrig-simulated" content="{{ mark }}">{% endif %}
<style>{{ css }}</style></head>
<body class="{{ 'simulated' if simulated else 'hardware' }}">
{% if simulated %}<div class="sim-running">{{ mark }}</div><div class="sim">{{ mark }}</div>{% endif %}
"""

TABLE_PAGE = _ENV.from_string(HEAD + """
<h1>{{ title }}</h1>
<p class="small">Run {{ run_id }} · bench {{ bench }} · {{ target }}</p>
{% for n in notes %}<p class="warn">{{ n }}</p>{% endfor %}
{% if not rows %}<p class="warn">No rows: no test of this run recorded this table.</p>
{% elif transpose %}
<table><thead><tr><th>field</th>{% for r in rows %}<th>{{ r.get('program', loop.index) }}</th>{% endfor %}</tr></thead>
<tbody>{% for f in header %}<tr><th>{{ f }}</th>{% for r in rows %}<td>{{ r.get(f, '') | num }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% else %}
<table><thead><tr>{% for f in header %}<th>{{ f }}</th>{% endfor %}</tr></thead>
<tbody>{% for r in rows %}<tr>{% for f in header %}<td class="{{ r.get(f, '') | cls }}">{{ r.get(f, '') | num }}</td>
{% endfor %}</tr>{% endfor %}</tbody></table>
{% endif %}
</body></html>
""")

REPORT = _ENV.from_string(HEAD + """
<h1>stimrig certification report</h1>
<p class="big">Verdict: <span class="verdict {{ overall | cls }}">{{ overall }}</span>
 &nbsp;({% for v, n in counts.items() %}{{ n }} {{ v }}{{ ", " if not loop.last }}{% endfor %});
 requirements proven by this run: {{ coverage[0] }} of {{ coverage[1] }}</p>
{% if non_conforming %}<p class="banner">The scope's calibration was overdue (due {{ start.scope_calibration.due_on }}):
every result of this run is NON-CONFORMING and is not evidence.</p>{% endif %}
{% if overall == "INCOMPLETE" %}<p class="banner">The run did not finish: this report covers what it recorded.</p>{% endif %}
{% if trace_gaps %}<div class="banner">Traceability is incomplete:
<ul>{% for g in trace_gaps %}<li>{{ g }}</li>{% endfor %}</ul></div>{% endif %}
{% if marginal %}<div class="warn">{{ marginal | length }} test(s) MARGINAL: a measurement inside its limit but within
the measurement uncertainty of it, so this bench cannot show that it conforms:
<ul>{% for t in marginal %}<li class="mono">{{ t }}</li>{% endfor %}</ul></div>{% endif %}
{% for p in problems %}<p class="banner">{{ p }}</p>{% endfor %}

<h2>1. Run</h2>
<table>
<tr><th>run ID</th><td class="mono">{{ start.run_id }}</td><th>bundle</th><td class="mono">{{ run_dir }}</td></tr>
<tr><th>started (UTC)</th><td>{{ start.utc }}</td><th>ended (UTC)</th><td>{{ end.utc if end else "did not end" }}</td></tr>
<tr><th>operator</th><td>{{ start.operator }}</td><th>host</th><td>{{ start.host }}</td></tr>
<tr><th>target</th><td>{{ start.target }}{{ " (simulated bench)" if simulated }}</td><th>fault injected</th>
<td>{{ start.fault or "none" }}</td></tr>
<tr><th>bench</th><td>{{ start.bench }}</td><th>bench file</th><td class="mono">{{ start.bench_file }}</td></tr>
<tr><th>seed</th><td>{{ start.seed }}</td><th>stimrig</th><td>{{ start.stimrig_version }}, git
<span class="mono">{{ (start.git.commit or "unknown")[:12] }}</span>{{ " (uncommitted changes)" if start.git.dirty }}</td></tr>
<tr><th>Python</th><td>{{ start.python }}</td><th>command</th><td class="mono">{{ start.command | join(" ") }}</td></tr>
</table>
<p class="small">Packages: {% for k, v in start.packages.items() %}{{ k }} {{ v }}{{ ", " if not loop.last }}{% endfor %}</p>

<h2>2. Device under test and instruments</h2>
<table><thead><tr><th>role</th><th>resource</th><th>identity</th><th>calibration</th></tr></thead><tbody>
{% for role, i in instruments.items() %}<tr><td>{{ role }}</td><td class="mono">{{ i.resource }}</td>
<td>{{ i.get("manufacturer", i.get("model")) }} {{ i.get("model") if i.get("manufacturer") }} · serial {{ i.serial }} ·
firmware {{ i.get("firmware", i.get("firmware_version")) }}{% if i.get("transport") %} · reached over
<b>{{ i.transport }}</b>{% if i.get("adapter") %} (adapter <span class="mono">{{ i.adapter }}</span>, address
{{ i.address }}, ATT MTU {{ i.att_mtu }}{{ ", bonded" if i.paired }}){% endif %}{% endif %}</td>
{% set cal = i.get("calibration") %}
<td>{% if cal %}{{ cal.certificate }}: {{ cal.calibrated_on }} → due {{ cal.due_on }}
{% if cal.overdue %}<span class="FAIL">OVERDUE</span>{% endif %}{% else %}n/a{% endif %}</td></tr>
{% endfor %}</tbody></table>
<p class="small">Measurement uncertainty (expanded, k = 2) from the bench's accuracy specification:
{% for k, v in start.scope_accuracy.items() if k != "sources" %}{{ k }} ±{{ v }}{{ ", " if not loop.last }}{% endfor %}.
Sources: {% for k, v in start.scope_accuracy.sources.items() %}{{ k }}: {{ v }}{{ "; " if not loop.last }}{% endfor %}</p>

<h2>3. Fixtures (audit trail)</h2>
<table><thead><tr><th>role</th><th>file</th><th>SHA-256</th></tr></thead><tbody>
{% for role, f in start.fixtures.items() %}<tr><td>{{ role }}</td><td class="mono">{{ f.path }}</td>
<td class="mono small">{{ f.sha256 }}</td></tr>{% endfor %}</tbody></table>

<h2>4. Traceability matrix</h2>
<table><thead><tr><th>requirement</th><th>source</th><th>tests</th><th>verdict</th><th>status</th></tr></thead><tbody>
{% for r in trace %}<tr><td><b>{{ r.requirement }}</b><br>{{ r.title }}</td><td class="small">{{ r.source }}</td>
<td class="small mono">{{ r.tests | replace("; ", "\n") }}</td><td class="{{ r.verdict | cls }}">{{ r.verdict }}</td>
<td class="{{ r.status | cls }}">{{ r.status }}</td></tr>{% endfor %}</tbody></table>

<h2>5. Output specification (FDA powered muscle stimulator 510(k), attachment II)</h2>
{% if spec_rows %}
<table><thead><tr><th>field</th>{% for r in spec_rows %}<th>{{ r.get("program", loop.index) }}</th>{% endfor %}</tr></thead>
<tbody>{% for f in spec_fields %}<tr><th>{{ f }}</th>{% for r in spec_rows %}<td>{{ r.get(f, "") | num }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% else %}<p class="warn">No output specification was measured in this run.</p>{% endif %}

<h2>6. Waveform tracings</h2>
{% for f in figures %}<figure><img src="data:image/png;base64,{{ f.data }}" alt="{{ f.path }}">
<figcaption class="mono">{{ f.path }} · SHA-256 {{ f.sha256[:16] }}…</figcaption></figure>
{% else %}<p class="warn">No waveform tracing in this run.</p>{% endfor %}

<h2>7. Results by test</h2>
{% for t in tests %}
<h3 class="mono small">{{ t.nodeid }} — <span class="{{ t.verdict | cls }}">{{ t.verdict }}</span>
 [{{ t.requirements | join(", ") }}]</h3>
{% if t.message %}<p class="small mono">{{ t.message }}</p>{% endif %}
{% if t.measurements %}<table class="small"><thead><tr><th>measurement</th><th>value</th><th>U (k=2)</th><th>limits</th>
<th>verdict</th><th>source</th></tr></thead><tbody>
{% for m in t.measurements %}<tr><td>{{ m.measurement.name }}</td><td class="n">{{ m.value | num }} {{ m.measurement.unit }}</td>
<td class="n">{{ m.uncertainty | num }}</td><td>{{ limits(m.measurement) }}</td>
<td class="{{ m.verdict }}">{{ m.verdict }}</td><td class="small">{{ m.measurement.source }}</td></tr>{% endfor %}
</tbody></table>{% endif %}
{% for e in t.link_events %}<p class="small">link event: {{ e }}</p>{% endfor %}
{% endfor %}
<p class="small">Every record of this run is in results.jsonl, hash-chained; every file's SHA-256 is in manifest.json,
sealed by manifest.sha256. Check them with: <span class="mono">stimrig verify {{ run_dir }}</span></p>
</body></html>
""")


def _limits(m: dict[str, Any]) -> str:
    lo, hi, unit = m.get("low"), m.get("high"), m.get("unit", "")
    if lo is not None and hi is not None:
        return f"[{lo:.6g}, {hi:.6g}] {unit}"
    return f">= {lo:.6g} {unit}" if lo is not None else f"<= {hi:.6g} {unit}"


def _common(model: RunModel, title: str) -> dict[str, Any]:
    return {"title": title, "simulated": model.simulated, "mark": SIMULATED_MARK, "css": BASE_CSS + PRINT_CSS}


def render_table_page(title: str, header: list[str], rows: list[dict[str, Any]], *, model: RunModel,
                      notes: list[str] | None = None, transpose: bool = False) -> str:
    s = model.start
    return TABLE_PAGE.render(**_common(model, title), header=header, rows=rows, notes=notes or [], transpose=transpose,
                             run_id=s.get("run_id"), bench=s.get("bench"), target=s.get("target"))


def render_report(model: RunModel, *, trace: list[dict[str, str]], untraced: list[str], spec_fields: list[str],
                  spec_rows: list[dict[str, Any]], figures: list[dict[str, str]],
                  run_dir: str, bundle_dir: Path | None = None) -> str:
    gaps = [f"{r['requirement']} ({r['title']}): {r['status'].lower()} in this run" for r in trace
            if r["status"] != "COVERED"]
    gaps += [f"{t}: names no requirement" for t in untraced]
    root = bundle_dir
    embedded = []
    for f in figures:
        path = (root / f["path"]) if root is not None else None
        if path is not None and path.is_file():
            embedded.append({**f, "data": base64.b64encode(path.read_bytes()).decode("ascii")})
    start = {"git": {}, "packages": {}, "fixtures": {}, "scope_accuracy": {"sources": {}}, "command": [],
             "scope_calibration": {}, **model.start}
    return REPORT.render(
        **_common(model, f"stimrig report {start.get('run_id')}"),
        overall=model.overall(uncovered=sum(r["status"] != "COVERED" for r in trace)),
        coverage=(sum(r["status"] == "COVERED" for r in trace), len(trace)),
        counts=model.verdict_counts(), non_conforming=model.non_conforming, trace_gaps=gaps,
        marginal=[t.nodeid for t in model.tests.values() if t.verdict == "MARGINAL"], problems=model.problems,
        start=start, end=model.end, instruments=model.instruments, trace=trace, spec_fields=spec_fields,
        spec_rows=spec_rows, figures=embedded, tests=list(model.tests.values()), limits=_limits, run_dir=run_dir,
    )
