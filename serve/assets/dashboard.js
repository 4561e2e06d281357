// Playlog's dashboard: every figure comes from /api/v1/aggregates (the marts), refreshed every 5 s.
// No framework and no network beyond this server: Chart.js is bundled into the binary.
"use strict";

const REFRESH_MS = 5000;
const number = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
const percent = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 });
const COLORS = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];

const state = {
  available: null, // { from, to }: the days the marts hold
  presetDays: 0, // the window a preset chose (0: from the first day), kept while following new data
  charts: {},
  refreshes: 0,
  timer: null,
};

const $ = (selector) => document.querySelector(selector);

async function aggregate(name, extra = {}) {
  const params = new URLSearchParams({ from: $("#from").value, to: $("#to").value, ...extra });
  const response = await fetch(`/api/v1/aggregates/${name}.json?${params}`, { cache: "no-store" });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    const error = new Error(body.error || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function daysBefore(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - n);
  return isoDay(d);
}

/// Moves the range's end to the newest day when following, keeping a preset's window length.
function follow() {
  if (!state.available || !$("#follow").checked) return;
  $("#to").value = state.available.to;
  $("#from").value = state.presetDays > 0 ? daysBefore(state.available.to, state.presetDays - 1) : state.available.from;
}

function setAvailable(summary) {
  const row = summary.rows[0] || {};
  if (!row.available_from) return;
  const first = state.available === null;
  state.available = { from: row.available_from, to: row.available_to };
  for (const input of [$("#from"), $("#to")]) {
    input.min = state.available.from;
    input.max = state.available.to;
  }
  if (first && !$("#from").value && !$("#to").value) follow();
}

function showKpis(row) {
  const shown = {
    daily_active_users: row.daily_active_users == null ? "–" : decimal.format(row.daily_active_users),
    plays: number.format(row.plays ?? 0),
    minutes_played: number.format(row.minutes_played ?? 0),
    paid_share: row.paid_share == null ? "–" : percent.format(row.paid_share),
    upgrades: number.format(row.upgrades ?? 0),
    downgrades: number.format(row.downgrades ?? 0),
    cancellations: number.format(row.cancellations ?? 0),
  };
  for (const tile of document.querySelectorAll(".kpi")) {
    const key = tile.dataset.kpi;
    const value = tile.querySelector(".value");
    value.textContent = shown[key];
    value.dataset.value = row[key] ?? "";
  }
}

/// The chart's figures as a table under "data" (readable without the canvas, and by tests).
function showData(name, columns, rows) {
  const figure = document.querySelector(`[data-chart="${name}"]`);
  let details = figure.querySelector("details");
  if (!details) {
    details = document.createElement("details");
    details.innerHTML = "<summary>data</summary><table><thead></thead><tbody></tbody></table>";
    figure.appendChild(details);
  }
  const table = details.querySelector("table");
  table.dataset.aggregate = name;
  table.tHead.replaceChildren(row(columns.map((c) => ({ text: c, header: true }))));
  table.tBodies[0].replaceChildren(
    ...rows.map((r) =>
      row(columns.map((c) => ({ text: typeof r[c] === "number" ? decimal.format(r[c]) : String(r[c] ?? ""), value: r[c], column: c })))
    )
  );
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement(cell.header ? "th" : "td");
    td.textContent = cell.text;
    if (!cell.header) {
      td.dataset.column = cell.column;
      td.dataset.value = cell.value ?? "";
      if (typeof cell.value === "number") td.className = "n";
    }
    tr.appendChild(td);
  }
  return tr;
}

function draw(name, config) {
  const existing = state.charts[name];
  if (existing) {
    existing.data.labels = config.data.labels;
    existing.data.datasets.forEach((dataset, i) => Object.assign(dataset, config.data.datasets[i]));
    existing.update("none");
    return;
  }
  const canvas = document.querySelector(`[data-chart="${name}"] canvas`);
  config.options = {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    plugins: { legend: { display: config.data.datasets.length > 1 || config.type === "doughnut" } },
    ...config.options,
  };
  state.charts[name] = new Chart(canvas, config);
}

function shortHour(hour) {
  // "2026-01-13T14:00:00" -> "Jan 13 14:00"
  const d = new Date(`${hour}Z`);
  return `${d.toLocaleString("en-US", { month: "short", day: "numeric", timeZone: "UTC" })} ${hour.slice(11, 16)}`;
}

function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function songLabel(r) {
  return clip(`${r.song} — ${r.artist}`, 44);
}

function bars(name, rows, labelOf, column, color, horizontal) {
  draw(name, {
    type: "bar",
    data: { labels: rows.map(labelOf), datasets: [{ label: column, data: rows.map((r) => r[column]), backgroundColor: color }] },
    options: horizontal ? { indexAxis: "y", scales: { y: { ticks: { autoSkip: false } } } } : {},
  });
}

async function refresh() {
  follow();
  const [summary, hourly, topPlays, topListeners, daily, levels, lengths, mix, states] = await Promise.all([
    aggregate("summary"),
    aggregate("plays_per_hour"),
    aggregate("top_songs", { by: "plays", limit: 10 }),
    aggregate("top_songs", { by: "listeners", limit: 10 }),
    aggregate("daily_activity"),
    aggregate("level_changes"),
    aggregate("session_lengths"),
    aggregate("level_mix"),
    aggregate("top_states", { limit: 10 }),
  ]);
  setAvailable(summary);
  showKpis(summary.rows[0] || {});

  draw("plays_per_hour", {
    type: "line",
    data: {
      labels: hourly.rows.map((r) => shortHour(r.hour)),
      datasets: [{ label: "plays", data: hourly.rows.map((r) => r.plays), borderColor: COLORS[0], backgroundColor: "rgba(37,99,235,.12)", fill: true, pointRadius: 0, tension: 0.2 }],
    },
    options: { scales: { x: { ticks: { maxTicksLimit: 12 } }, y: { beginAtZero: true } } },
  });
  showData("plays_per_hour", ["hour", "plays", "minutes_played"], hourly.rows);

  bars("top_songs_plays", topPlays.rows, songLabel, "plays", COLORS[0], true);
  showData("top_songs_plays", ["song", "artist", "plays", "listeners"], topPlays.rows);
  bars("top_songs_listeners", topListeners.rows, songLabel, "listeners", COLORS[1], true);
  showData("top_songs_listeners", ["song", "artist", "listeners", "plays"], topListeners.rows);

  draw("daily_activity", {
    type: "bar",
    data: {
      labels: daily.rows.map((r) => r.date),
      datasets: [
        { label: "paid", data: daily.rows.map((r) => r.paid_users), backgroundColor: COLORS[0], stack: "users" },
        { label: "free", data: daily.rows.map((r) => r.active_users - r.paid_users), backgroundColor: "#93c5fd", stack: "users" },
      ],
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
  showData("daily_activity", ["date", "active_users", "paid_users", "plays"], daily.rows);

  draw("level_changes", {
    type: "bar",
    data: {
      labels: levels.rows.map((r) => r.date),
      datasets: [
        { label: "upgrades", data: levels.rows.map((r) => r.upgrades), backgroundColor: COLORS[1] },
        { label: "downgrades", data: levels.rows.map((r) => r.downgrades), backgroundColor: COLORS[2] },
        { label: "cancellations", data: levels.rows.map((r) => r.cancellations), backgroundColor: COLORS[3] },
      ],
    },
    options: { scales: { y: { beginAtZero: true } } },
  });
  showData("level_changes", ["date", "upgrades", "downgrades", "cancellations"], levels.rows);

  bars("session_lengths", lengths.rows, (r) => r.label, "sessions", COLORS[4], false);
  showData("session_lengths", ["label", "sessions"], lengths.rows);

  draw("level_mix", {
    type: "doughnut",
    data: {
      labels: mix.rows.map((r) => r.level),
      datasets: [{ label: "plays", data: mix.rows.map((r) => r.plays), backgroundColor: mix.rows.map((r) => (r.level === "paid" ? COLORS[0] : "#93c5fd")) }],
    },
    options: { plugins: { legend: { position: "right" } } },
  });
  showData("level_mix", ["level", "plays", "listeners"], mix.rows);

  bars("top_states", states.rows, (r) => r.state, "plays", COLORS[5], true);
  showData("top_states", ["state", "plays", "listeners"], states.rows);

  showFreshness(summary.as_of);
  state.refreshes += 1;
  document.body.dataset.refreshes = String(state.refreshes);
  document.body.dataset.asOf = summary.as_of || "";
  document.body.dataset.range = `${$("#from").value}..${$("#to").value}`;
}

function showFreshness(asOf) {
  const live = $("#live");
  if (!asOf) {
    $("#as-of").textContent = "no vault run yet";
    live.className = "dot stale";
    return;
  }
  const age = (Date.now() - Date.parse(`${asOf.replace(" ", "T")}Z`)) / 1000;
  const ago = Number.isFinite(age) && age >= 0 ? ` (${age < 90 ? `${Math.round(age)} s` : `${Math.round(age / 60)} min`} ago)` : "";
  $("#as-of").textContent = `data as of ${asOf.slice(0, 19)} UTC${ago}`;
  live.className = Number.isFinite(age) && age < 60 ? "dot live" : "dot stale";
}

async function tick() {
  try {
    await refresh();
    $("#notice").hidden = true;
  } catch (error) {
    $("#notice").hidden = false;
    $("#notice").textContent =
      error.status === 503 ? `No data yet: ${error.message}. This page retries by itself.` : `Could not refresh: ${error.message}`;
    $("#live").className = "dot stale";
  } finally {
    clearTimeout(state.timer);
    state.timer = setTimeout(tick, REFRESH_MS);
  }
}

function start() {
  for (const button of document.querySelectorAll(".presets button")) {
    button.addEventListener("click", () => {
      state.presetDays = Number(button.dataset.days);
      $("#follow").checked = true;
      tick();
    });
  }
  for (const input of [$("#from"), $("#to")]) {
    input.addEventListener("change", () => {
      // A hand-picked range stays put.
      $("#follow").checked = false;
      tick();
    });
  }
  $("#follow").addEventListener("change", tick);
  $("#range").addEventListener("submit", (e) => e.preventDefault());
  tick();
}

document.addEventListener("DOMContentLoaded", start);
