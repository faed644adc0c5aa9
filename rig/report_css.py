"""The style shared by stimrig's self-contained HTML reports (fleet, sweep); each page adds its own rules."""

BASE_CSS = """
  body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; font-size: 10.5pt; color: #111;
         max-width: 1150px; margin: 1.5em auto; padding: 0 1em; line-height: 1.35; }
  h1 { font-size: 17pt; margin: 0.2em 0; } h2 { font-size: 13pt; margin-top: 1.4em; border-bottom: 1px solid #999; }
  .sim { border: 3px solid #a00; color: #a00; padding: 0.4em 0.7em; font-weight: bold; font-size: 12pt;
         text-align: center; letter-spacing: 0.05em; margin: 0.6em 0; }
  table { border-collapse: collapse; margin: 0.4em 0; }
  th, td { border: 1px solid #888; padding: 2px 6px; text-align: left; vertical-align: top; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  th { background: #eee; }
  .small { font-size: 9pt; } img { max-width: 100%; border: 1px solid #ccc; margin: 0.4em 0; }
  .mono, code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 9pt; }
"""
