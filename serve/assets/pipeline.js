// The pipeline page: draws /api/v1/pipeline.json every 5 s. Every figure comes from the server (the
// process's metrics or Prometheus, and the warehouse); the page only keeps the readings it has seen, for
// the two charts.
"use strict";

const REFRESH_MS = 5000;
const KEEP = 120; // readings in the charts: ten minutes
const state = { refreshes: 0, lag: [], rate: [] };
window.playlogPipeline = state;

const number = (v, digits = 0) =>
  v === null || v === undefined ? "—" : Number(v).toLocaleString("en-US", { maximumFractionDigits: digits });

function line(canvas, label) {
  return new Chart(canvas, {
    type: "line",
    data: { labels: [], datasets: [{ label, data: [], borderColor: "#2563eb", pointRadius: 0, tension: 0.2 }] },
    options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } },
               scales: { y: { beginAtZero: true } } },
  });
}

let charts = null;

function draw(data) {
  const m = data.metrics || {};
  const set = (name, text) => { document.querySelector(`[data-figure="${name}"]`).textContent = text; };
  set("lag_records", number(m.lag_records));
  set("lag_seconds", number(m.lag_seconds, 1));
  set("ingest_rows_per_second", number(m.ingest_rows_per_second));
  set("rows_ingested", number(m.rows_ingested));
  set("freshness", `${number(m.freshness_p50_seconds, 2)} / ${number(m.freshness_p99_seconds, 2)}`);
  set("publish_freshness", `${number(m.publish_freshness_p50_seconds, 2)} / ${number(m.publish_freshness_p99_seconds, 2)}`);
  set("dead_letters", number(m.dead_letters));
  set("warehouse_errors", number(m.warehouse_errors));
  set("partitions", `${number(m.assigned_partitions)} / ${number(m.subscribed_partitions)}`);
  set("vault_runs", `${number(m.vault_runs_succeeded)} / ${number(m.vault_runs_failed)}`);

  const notice = document.getElementById("notice");
  notice.hidden = !data.metrics_error;
  notice.textContent = data.metrics_error || "";
  document.getElementById("source").textContent = data.metrics_source
    ? `Metrics from ${data.metrics_source}; the warehouse's figures from the warehouse itself.`
    : "The warehouse's figures only.";

  const body = document.querySelector("#warehouse tbody");
  body.replaceChildren(...data.warehouse.raw_tables.map((t) => {
    const tr = document.createElement("tr");
    for (const [text, cls] of [[t.table, ""], [t.newest_load ?? "nothing landed yet", ""], [number(t.age_seconds, 1), "n"]]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.append(td);
    }
    return tr;
  }));
  const run = data.warehouse.last_vault_run;
  document.getElementById("vault-run").textContent = run
    ? `Last vault run ${run.at} UTC: ${number(run.raw_rows)} raw rows in ${number(run.seconds, 2)} s.`
    : "The vault has not run yet.";

  if (window.Chart) {
    charts = charts || { lag: line(document.getElementById("lag-chart"), "lag"), rate: line(document.getElementById("rate-chart"), "rows/s") };
    const at = data.now.slice(11, 19);
    for (const [chart, value] of [[charts.lag, m.lag_records], [charts.rate, m.ingest_rows_per_second]]) {
      chart.data.labels.push(at);
      chart.data.datasets[0].data.push(value ?? null);
      if (chart.data.labels.length > KEEP) { chart.data.labels.shift(); chart.data.datasets[0].data.shift(); }
      chart.update();
    }
  }
  state.last = data;
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("/api/v1/pipeline.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`${response.status}: ${(await response.json()).error}`);
    draw(await response.json());
    status.innerHTML = '<span class="dot live"></span> ';
    status.append(`updated ${new Date().toLocaleTimeString("en-GB")}`);
  } catch (e) {
    status.innerHTML = '<span class="dot stale"></span> ';
    status.append(`not updated: ${e.message}`);
  } finally {
    state.refreshes += 1;
    setTimeout(refresh, REFRESH_MS);
  }
}

document.addEventListener("DOMContentLoaded", refresh);
