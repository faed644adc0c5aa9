"""The self-contained HTML report of a fleet run (jinja2; plots embedded as data URIs; SIMULATED banner)."""

from __future__ import annotations

import base64
import math
from typing import Any

import jinja2

from rig.evidence import SIMULATED_MARK
from rig.report_css import BASE_CSS

DEVICE_ROWS_MAX = 200

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>SIMULATED - stimrig fleet {{ sc.name }} ({{ r.engine }} engine, seed {{ r.seed }})</title>
<style>{{ base_css }}
  table.meta th { width: 15em; } .refused { color: #a00; font-weight: bold; }
</style>
</head>
<body>
<div class="sim">{{ mark }}</div>
<h1>Fleet simulation: {{ sc.name }}</h1>
<p>{{ sc.description }}</p>

<h2>Run</h2>
<table class="meta">
<tr><th>Result</th><td>{{ mark }}</td></tr>
<tr><th>Scenario file</th><td class="mono">{{ scenario_path }}</td></tr>
<tr><th>Engine</th><td>{{ r.engine }} ({{ engine_text }})</td></tr>
<tr><th>Seed</th><td>{{ r.seed }} (every random draw derives from it; the same seed gives the same result)</td></tr>
<tr><th>Duration</th><td>{{ sc.duration_s }} s simulated, {{ "%.2f" | format(r.wall_s) }} s wall
  ({{ "{:,.0f}".format(rate) }} device-seconds per wall second)</td></tr>
<tr><th>Link</th><td>environment <code>{{ sc.link.environment }}</code>, {{ sc.link.phy }},
  TX {{ tx }} dBm, sensitivity {{ sens }} dBm{% if sc.link.on_body %}, on-body loss{% endif %}; body in path:
  {{ body_count }} of {{ s.devices }} devices</td></tr>
<tr><th>Connection</th><td>{{ conn_text }}</td></tr>
<tr><th>Traffic</th><td>a command to each connected device every {{ sc.traffic.command_period_s }} s
  ({{ sc.traffic.command_payload_bytes }}-byte PDU, {{ sc.traffic.channels }} channels); empty keep-alive PDU at every
  other connection event</td></tr>
<tr><th>Dropout / cutoff</th><td>dropout: no successful exchange for &ge; {{ sc.dropout_threshold_s }} s;
  link-loss cutoff: &ge; the supervision timeout (the device's output stops, then resumes at zero)</td></tr>
<tr><th>Generated</th><td>{{ stamp }}, stimrig {{ version }}</td></tr>
</table>

<h2>Summary</h2>
<table class="meta">
<tr><th>Devices</th><td>{{ s.devices }}: {{ s.connected }} connected{% if s.refused_over_capacity %},
  <span class="refused">{{ s.refused_over_capacity }} refused over capacity (not connected, waiting for a slot)</span>
  {% endif %}{% if s.refused_out_of_range %}, <span class="refused">{{ s.refused_out_of_range }} refused: no controller
  in range</span>{% endif %}; {{ s.controllers }} controller(s), total capacity {{ sc.total_capacity }}</td></tr>
<tr><th>Link holds 99 % of the time up to</th><td><b>{{ s.hold.text }}</b></td></tr>
<tr><th>Command latency (delivered)</th><td>p50 {{ ms(s.all_commands.p50_s) }}, p90 {{ ms(s.all_commands.p90_s) }},
  p99 {{ ms(s.all_commands.p99_s) }}</td></tr>
<tr><th>Commands</th><td>{{ s.all_commands.issued }} issued: {{ s.all_commands.delivered }} delivered,
  {{ s.all_commands.lost }} lost (link lost), {{ s.all_commands.not_sent }} not sent (refused device),
  {{ s.all_commands.pending_at_end }} still pending when the run ended</td></tr>
<tr><th>Mean PER (connected)</th><td>{{ pct(s.mean_per) }}</td></tr>
<tr><th>Dropouts</th><td>{{ s.dropouts }}</td></tr>
<tr><th>Link-loss cutoffs</th><td>{{ s.cutoffs }} on {{ s.devices_cut_off }} device(s), {{ "%.1f" | format(
  s.time_disconnected_s) }} s disconnected in all</td></tr>
</table>

<h2>Per device</h2>
<img alt="per-device RSSI, PER, dropouts, cutoffs, latency" src="{{ img.per_device }}">
<h2>Command latency against distance</h2>
<img alt="latency against distance" src="{{ img.latency_vs_distance }}">
{{ latency_table(by_distance, "distance at issue") }}
<h2>Command latency against fleet size</h2>
<p class="small">The first N devices of the run, in admission order. Devices do not interfere with each other in
this model, so fleet size acts through capacity: a refused device's commands are never sent.</p>
<img alt="latency against fleet size" src="{{ img.latency_vs_fleet_size }}">
{{ latency_table(by_size, "fleet size") }}
<h2>Link holding against distance</h2>
<p>The link holds 99 % of the time up to: <b>{{ s.hold.text }}</b>. Share of link time (connected devices) that the
link was up, i.e. not lost by the supervision timeout, per distance bin.</p>
<img alt="link held against distance" src="{{ img.link_hold }}">
<h2>Dropout timeline</h2>
<img alt="dropout timeline" src="{{ img.dropout_timeline }}">
<h2>Distance over time</h2>
<img alt="distance over time" src="{{ img.distance_over_time }}">

<h2>Controllers</h2>
<table>
<tr><th>Controller</th><th>Position (m)</th><th>Capacity</th><th>Connected</th><th>Interval</th><th>Event</th></tr>
{% for c in controllers %}<tr><td class="mono">{{ c.id }}</td><td>{{ c.xy }}</td><td class="n">{{ c.capacity }}</td>
<td class="n">{{ c.connected }}</td><td class="n">{{ c.interval }}</td><td class="n">{{ c.event }}</td></tr>
{% endfor %}</table>
{% if controllers_more %}<p class="small">... and {{ controllers_more }} more.</p>{% endif %}

<h2>Devices</h2>
{% if devices_more %}<p class="small">First {{ devices | length }} of {{ s.devices }} devices; all are in
<code>devices.csv</code>.</p>{% endif %}
<table class="small">
<tr>{% for h in device_head %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in devices %}<tr>{% for v in row %}<td{% if loop.index > 3 %} class="n"{% endif %}>{% if
  v.startswith("refused") %}<span class="refused">{{ v }}</span>{% else %}{{ v }}{% endif %}</td>{% endfor %}</tr>
{% endfor %}</table>

<h2>Files</h2>
<ul class="mono">{% for name in files %}<li>{{ name }}</li>{% endfor %}</ul>
<p class="small">Definitions, rules and assumptions: docs/fleet.md (scenario format, both engines) and
docs/link-model.md (the link model). All figures are simulated from an assumed model.</p>
<div class="sim">{{ mark }}</div>
</body>
</html>
"""

LATENCY_MACRO = """{% macro latency_table(rows, first) %}
<table class="small">
<tr><th>{{ first }}</th><th>devices</th><th>issued</th><th>delivered</th><th>lost</th><th>not sent</th>
<th>pending at end</th><th>delivered %</th><th>p50</th><th>p90</th><th>p99</th></tr>
{% for r in rows %}<tr><td>{{ r.label }}</td><td class="n">{{ r.devices }}</td><td class="n">{{ r.issued }}</td>
<td class="n">{{ r.delivered }}</td><td class="n">{{ r.lost }}</td><td class="n">{{ r.not_sent }}</td>
<td class="n">{{ r.pending_at_end }}</td><td class="n">{{ pct(r.delivered_fraction) }}</td>
<td class="n">{{ ms(r.p50_s) }}</td><td class="n">{{ ms(r.p90_s) }}</td><td class="n">{{ ms(r.p99_s) }}</td></tr>
{% endfor %}</table>
{% endmacro %}"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def ms(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{x * 1e3:.1f} ms"


def pct(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{x * 100:.2f} %"


def render(**context: Any) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(LATENCY_MACRO + TEMPLATE)
    return template.render(mark=SIMULATED_MARK, ms=ms, pct=pct, base_css=BASE_CSS, **context)
