"""The sweep's self-contained HTML summary (jinja2, autoescaped; plot embedded as a data URI; SIMULATED banner)."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from hashlib import sha256
from typing import Any

import jinja2

from rig import __version__
from rig.evidence import SIMULATED_MARK
from rig.report_css import BASE_CSS
from simulator.sweep.aggregate import PointSummary, quantile_name
from simulator.sweep.execute import TaskResult
from simulator.sweep.metrics import COMPANIONS, METRICS
from simulator.sweep.plan import SweepPlan, point_label, value_text

FAILURE_ROWS_MAX = 200

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>SIMULATED - stimrig sweep {{ spec.name }}</title>
<style>{{ base_css }}
  .fail { border: 2px solid #a00; background: #fee; padding: 0.3em 0.7em; } table.meta th { width: 13em; }
</style>
</head>
<body>
<div class="sim">{{ mark }}</div>
<h1>Monte Carlo sweep: {{ spec.name }}</h1>
<p>{{ spec.description }}</p>

<h2>Sweep</h2>
<table class="meta">
<tr><th>Result</th><td>{{ mark }}</td></tr>
<tr><th>Status</th><td>{% if failed %}<b style="color:#a00">{{ failed | length }} of {{ results | length }} task(s)
  FAILED</b>{% else %}all {{ results | length }} tasks succeeded{% endif %}</td></tr>
<tr><th>Spec</th><td class="mono">{{ spec_path }} (sha256 {{ spec_sha }})</td></tr>
<tr><th>Base scenario</th><td class="mono">{{ scenario_path }} ({{ plan.base.name }}, {{ plan.base.n_devices }}
  devices, {{ plan.base.duration_s }} s)</td></tr>
<tr><th>Engine</th><td>{{ spec.engine }}{% if spec.devices %}, first {{ spec.devices }} devices{% endif %}</td></tr>
<tr><th>Set in every run</th><td class="mono">{% for k, v in spec.set.items() %}{{ k }} = {{ text(v) }}<br>
  {% else %}-{% endfor %}</td></tr>
<tr><th>Grid</th><td class="mono">{% for k, vs in spec.grid.items() %}{{ k }}: {{ vs | map("string") | join(", ") }}
  <br>{% else %}- (seeds only){% endfor %}{{ plan.points | length }} point(s)</td></tr>
<tr><th>Seeds</th><td>{{ plan.seeds | length }} per point{% if spec.seeds.base is not none %}, derived from base
  {{ spec.seeds.base }} (SeedSequence){% endif %}; list in <code>seeds.txt</code></td></tr>
<tr><th>Tasks</th><td>{{ results | length }} = {{ plan.points | length }} points x {{ plan.seeds | length }} seeds
  </td></tr>
<tr><th>Executor</th><td>{{ executor }}; {{ "%.1f" | format(wall_s) }} s wall</td></tr>
<tr><th>Generated</th><td>{{ stamp }}, stimrig {{ version }}</td></tr>
</table>

<h2>Metrics</h2>
<table class="small">
{% for m in metrics %}<tr><th class="mono">{{ m }}</th><td>{{ describe(m) }}</td></tr>
{% endfor %}</table>

{% if failed %}
<h2>Failed tasks</h2>
<div class="fail">These tasks have no metrics (their rows in <code>tasks.csv</code> say FAILED); the sweep exits
non-zero. Tracebacks: <code>failures.txt</code>.</div>
<table class="small">
<tr><th>task</th><th>parameters</th><th>seed</th><th>kind</th><th>error</th></tr>
{% for r in failed[:max_failures] %}<tr><td class="n">{{ r.task.task }}</td>
<td class="mono">{{ label(r.task.params) }}</td><td class="n">{{ r.task.seed }}</td><td>{{ r.failure.kind }}</td>
<td class="mono">{{ r.failure.error }}</td></tr>
{% endfor %}</table>
{% if failed | length > max_failures %}<p class="small">... and {{ failed | length - max_failures }} more in
<code>failures.csv</code>.</p>{% endif %}
{% endif %}

<h2>Plot</h2>
<img alt="sweep plot" src="{{ img }}">

<h2>Summary over seeds</h2>
<p class="small">Per grid point: mean &plusmn; sample std, [{{ qlo }} .. {{ qhi }}], and n = seeds with a value
(successful runs, finite values). All of it is in <code>summary.csv</code>.</p>
<table class="small">
<tr><th>#</th>{% for k in plan.param_names %}<th>{{ k }}</th>{% endfor %}<th>ok / tasks</th>
{% for m in metrics %}<th>{{ m }}</th>{% endfor %}</tr>
{% for s in summaries %}<tr><td class="n">{{ s.point }}</td>{% for k, v in s.params %}<td>{{ text(v) }}</td>
{% endfor %}<td class="n">{{ s.ok }} / {{ s.tasks }}</td>
{% for m in metrics %}<td class="n">{{ cell(s, m) }}</td>{% endfor %}</tr>
{% endfor %}</table>

<h2>Files</h2>
<ul class="mono">{% for name in files %}<li>{{ name }}</li>{% endfor %}</ul>
<p class="small">Spec format, executors, reproducibility and failure semantics: docs/sweeps.md. All figures are
simulated from an assumed link model (docs/link-model.md).</p>
<div class="sim">{{ mark }}</div>
</body>
</html>
"""


def _g(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.4g}"


def render(plan: SweepPlan, results: Sequence[TaskResult], summaries: Sequence[PointSummary], *, png: bytes,
           executor: str, wall_s: float, stamp: str, files: Sequence[str]) -> str:
    q = plan.spec.quantiles
    qlo, qhi = (quantile_name(q[0]), quantile_name(q[-1])) if len(q) >= 2 else ("min", "max")

    def cell(summary: PointSummary, metric: str) -> str:
        stats = summary.stats[metric]
        companion = COMPANIONS.get(metric)
        if stats["n"] == 0 and companion is not None and summary.values[companion]:
            return f"> {_g(min(summary.values[companion]))} (n=0: {companion})"
        if stats["n"] == 0:
            return "- (n=0)"
        std = f" ± {_g(stats['std'])}" if math.isfinite(stats["std"]) else ""
        return f"{_g(stats['mean'])}{std} [{_g(stats[qlo])} .. {_g(stats[qhi])}] (n={int(stats['n'])})"

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(TEMPLATE)
    context: dict[str, Any] = {
        "mark": SIMULATED_MARK, "spec": plan.spec, "plan": plan, "results": results,
        "failed": [r for r in results if r.failure is not None], "summaries": summaries,
        "metrics": plan.metric_names, "describe": lambda m: METRICS[m].description, "label": point_label,
        "text": value_text, "cell": cell,
        "spec_path": str(plan.spec_path), "spec_sha": sha256(plan.spec_path.read_bytes()).hexdigest()[:16],
        "scenario_path": str(plan.scenario_path), "executor": executor, "wall_s": wall_s, "stamp": stamp,
        "version": __version__, "img": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
        "files": list(files), "max_failures": FAILURE_ROWS_MAX, "qlo": qlo, "qhi": qhi,
    }
    return template.render(base_css=BASE_CSS, **context)
