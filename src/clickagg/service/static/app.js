// The dashboard: choices → the service's API → Plotly charts and steering tables.
// Every answer is drawn as the API gives it; the page computes no KPI itself.
"use strict";

const $ = (id) => document.getElementById(id);
const page = { catalogue: null, timer: null, busy: false, again: false, renders: 0 };

function token() {
  return sessionStorage.getItem("clickagg-token") || "";
}

async function api(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    for (const item of [].concat(value)) {
      if (item !== "" && item !== undefined && item !== null) query.append(key, item);
    }
  }
  const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
  const response = await fetch(`${path}?${query}`, { headers });
  const body = await response.json();
  if (response.status === 401) {
    $("token-box").hidden = false;
  }
  if (!response.ok) {
    const retry = response.headers.get("Retry-After");
    throw new Error(body.detail + (retry ? ` (retrying in ${retry}s)` : ""));
  }
  return body;
}

function aggregation() {
  return page.catalogue.aggregations.find((a) => a.name === $("aggregation").value);
}

function fill(select, values, preferred) {
  const before = select.value;
  select.replaceChildren(
    ...values.map((value) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = value.replaceAll("_", " ");
      return option;
    }),
  );
  select.value = values.includes(before) ? before : values.includes(preferred) ? preferred : values[0];
}

function chooseAggregation() {
  const chosen = aggregation();
  fill($("kpi"), chosen.kpis, "visits");
  fill($("dimension"), chosen.dimensions, "offer");
  const level = $("level");
  const keep = level.value;
  level.replaceChildren(level.options[0]);
  for (const info of chosen.levels) {
    const option = document.createElement("option");
    option.value = info.name;
    option.textContent = `${info.name}${info.has_documents ? "" : " (no documents yet)"}`;
    level.append(option);
  }
  level.value = keep;
}

function common() {
  const filters = $("filters").value.split(",").map((f) => f.trim()).filter((f) => f);
  return {
    from: `now-${$("range").value}`,
    to: "now",
    filter: filters,
    level: $("level").value,
  };
}

function shown(value) {
  if (value === null || value === undefined) return "–";
  if (Math.abs(value) < 10 && !Number.isInteger(value)) return value.toFixed(3);
  return Math.round(value).toLocaleString("en");
}

function drawFreshness(freshness) {
  const box = $("freshness");
  const lag = freshness.lag_seconds === null ? "not reported" : `${Math.round(freshness.lag_seconds)} s`;
  const complete = freshness.newest_complete_bucket || "none yet";
  box.textContent = `newest complete bucket ${complete} · stream lag ${lag}` +
    (freshness.stalled ? " · STALLED: the stream stopped reporting" : "");
  box.classList.toggle("stalled", freshness.stalled);
}

function drawSeries(answer, kpi) {
  const chart = $("series");
  const x = answer.points.map((p) => p.bucket);
  const y = answer.points.map((p) => p.kpis[kpi]);
  Plotly.react(chart, [{ x, y, type: "scatter", mode: "lines+markers", name: kpi,
                        connectgaps: false }],
               { margin: { t: 10, r: 10, b: 40, l: 60 }, xaxis: { type: "date" },
                 yaxis: { title: { text: kpi.replaceAll("_", " ") }, rangemode: "tozero" } },
               { displaylogo: false, responsive: true });
  chart.dataset.level = answer.level.level;
  chart.dataset.start = answer.level.start;
  chart.dataset.end = answer.level.end;
  $("series-title").textContent = `${kpi.replaceAll("_", " ")} over time`;
  $("series-note").textContent =
    `level ${answer.level.level}: ${answer.level.reason} · ${answer.cuboid.reason}`;
}

function drawBreakdown(answer) {
  const chart = $("breakdown");
  const rows = answer.rows;
  Plotly.react(chart, [{ x: rows.map((r) => r.value), y: rows.map((r) => r.kpi), type: "bar",
                        marker: { color: rows.map((r) => (r.small ? "#b8c2cc" : "#2f6db5")) } }],
               { margin: { t: 10, r: 10, b: 80, l: 60 } },
               { displaylogo: false, responsive: true });
  chart.dataset.start = answer.level.start;
  chart.dataset.end = answer.level.end;
  chart.dataset.level = answer.level.level;
  $("breakdown-title").textContent =
    `top ${answer.dimension.replaceAll("_", " ")} by ${answer.kpi.replaceAll("_", " ")}`;
  $("breakdown-note").textContent =
    `level ${answer.level.level} · ${answer.cuboid.reason} · grey: base below ${answer.min_base}`;
}

function table(element, header, rows) {
  const head = `<tr>${header.map((h) => `<th>${h}</th>`).join("")}</tr>`;
  element.innerHTML = head + rows.map((r) =>
    `<tr class="${r.small ? "small" : ""}">${r.cells.map((c) => `<td></td>`).join("")}</tr>`).join("");
  // Values go in as text, never as HTML: dimension values come from the clickstream.
  element.querySelectorAll("tr").forEach((tr, i) => {
    if (i === 0) return;
    rows[i - 1].cells.forEach((cell, j) => { tr.children[j].textContent = cell; });
  });
}

function drawSteering(answer) {
  const kpi = answer.kpi.replaceAll("_", " ");
  table($("leaders"), [answer.dimension, kpi, "base"], answer.leaders.map((r) => ({
    small: r.small, cells: [r.value, shown(r.kpi), shown(r.base)],
  })));
  table($("movers"), [answer.dimension, "now", "before", "change", "base now / before"],
    answer.movers.map((m) => ({
      small: m.small,
      cells: [m.value, shown(m.now.kpi), shown(m.before.kpi),
              (m.change > 0 ? "+" : "") + shown(m.change), `${shown(m.now.base)} / ${shown(m.before.base)}`],
    })));
  $("steering-note").textContent = `${answer.level.start} to ${answer.level.end} against ` +
    `${answer.previous.start} to ${answer.previous.end}; ${answer.trust_rule}`;
}

async function refresh() {
  if (!page.catalogue) return;
  if (page.busy) {  // a choice changed mid-refresh: draw it right after
    page.again = true;
    return;
  }
  page.busy = true;
  const name = $("aggregation").value;
  const kpi = $("kpi").value;
  const dimension = $("dimension").value;
  const base = `/api/${encodeURIComponent(name)}`;
  const choices = { aggregation: name, range: $("range").value, level: $("level").value, kpi,
                    dimension, filters: $("filters").value };
  try {
    // Each panel stands alone: a breakdown no cuboid answers must not hide the series.
    const [series, breakdown, steering] = await Promise.allSettled([
      api(`${base}/series`, { ...common(), kpi }),
      api(`${base}/breakdown`, { ...common(), kpi, dimension, limit: 10 }),
      api(`${base}/steering`, { from: common().from, to: "now", level: common().level, kpi, dimension }),
    ]);
    const problems = [];
    if (series.status === "fulfilled") {
      drawSeries(series.value, kpi);
      drawFreshness(series.value.freshness);
    } else {
      problems.push(`time series: ${series.reason.message}`);
    }
    if (breakdown.status === "fulfilled") {
      drawBreakdown(breakdown.value);
    } else {
      Plotly.react($("breakdown"), [{ x: [], y: [], type: "bar" }], {});
      problems.push(`top ${dimension}: ${breakdown.reason.message}`);
    }
    if (steering.status === "fulfilled") {
      drawSteering(steering.value);
    } else {
      $("leaders").replaceChildren();
      $("movers").replaceChildren();
      problems.push(`steering: ${steering.reason.message}`);
    }
    $("error").textContent = problems.join("\n");
    $("error").hidden = problems.length === 0;
    document.body.dataset.drawn = JSON.stringify(choices);  // what the panels show now
  } finally {
    page.busy = false;
    page.renders += 1;
    document.body.dataset.renders = String(page.renders);
    document.body.dataset.state = "ready";
  }
  if (page.again) {
    page.again = false;
    await refresh();
  }
}

async function start() {
  $("token").addEventListener("change", (event) => {
    sessionStorage.setItem("clickagg-token", event.target.value);
    start();
  });
  try {
    page.catalogue = await api("/api/aggregations");
  } catch (failure) {
    $("error").textContent = failure.message;
    $("error").hidden = false;
    document.body.dataset.state = "ready";
    return;
  }
  fill($("aggregation"), page.catalogue.aggregations.map((a) => a.name));
  chooseAggregation();
  $("aggregation").addEventListener("change", () => { chooseAggregation(); refresh(); });
  for (const id of ["range", "level", "kpi", "dimension", "filters"]) {
    $(id).addEventListener("change", refresh);
  }
  await refresh();
  // Live: the current bucket keeps filling, so every answer is asked again on a timer.
  clearInterval(page.timer);
  page.timer = setInterval(refresh, page.catalogue.refresh_seconds * 1000);
}

start();
