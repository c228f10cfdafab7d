// The kwtSMS usage page: reads api/usage and draws it. Every value is put in with textContent or
// an SVG attribute, never as HTML: DAG ids, run ids and the gateway's reasons are not trusted.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#3182ce", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#d69e2e", "#718096"];
const $ = (sel) => document.querySelector(sel);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) tr.append(cell instanceof Node ? cell : el("td", cell));
  return tr;
}

function num(value) {
  return el("td", Number(value).toLocaleString("en-US"), "num");
}

function fill(tbody, rows, empty, columns) {
  tbody.replaceChildren(...rows);
  if (!rows.length) {
    const td = el("td", empty, "muted");
    td.colSpan = columns;
    tbody.append(row([td]));
  }
}

// The Airflow UI's address of a task instance: the page lives at <airflow>/kwtsms/.
function runLink(item) {
  const base = new URL("../", window.location.href);
  let path = `dags/${encodeURIComponent(item.dag_id)}/runs/${encodeURIComponent(item.run_id)}` +
    `/tasks/${encodeURIComponent(item.task_id)}`;
  if (item.map_index >= 0) path += `/mapped/${item.map_index}`;
  const a = el("a", item.run_id);
  a.href = new URL(path, base).href;
  a.target = "_top";
  return a;
}

function when(iso) {
  return iso ? iso.replace("T", " ").slice(0, 19) : "";
}

function drawTotals(report) {
  const t = report.totals;
  const cards = [
    [t.credits, "credits"], [t.sends, "sends"], [t.numbers_sent, "numbers sent"], [t.failed, "failed"],
    [t.uncertain, "uncertain"], [t.suppressed, "suppressed"], [report.alerts.total, "alerts"],
  ];
  $("#totals").replaceChildren(...cards.map(([value, label]) => {
    const card = el("div", null, "card");
    card.dataset.total = label;
    card.append(el("b", Number(value).toLocaleString("en-US")), el("span", label));
    return card;
  }));
}

function drawChart(report) {
  const dags = report.dags.map((d) => d.dag_id);
  const colour = (dag) => COLOURS[dags.indexOf(dag) % COLOURS.length];
  const days = report.daily;
  const max = Math.max(1, ...days.map((d) => d.total));
  const width = 900, height = 220, left = 48, bottom = 24, top = 8;
  const step = (width - left) / Math.max(1, days.length);
  const bar = Math.max(2, step * 0.7);
  const scale = (height - bottom - top) / max;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Credits per DAG per day" });
  for (const tick of [0, max / 2, max]) {
    const y = height - bottom - tick * scale;
    chart.append(svg("line", { x1: left, x2: width, y1: y, y2: y, stroke: "currentColor", "stroke-opacity": 0.15 }));
    chart.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "currentColor" },
      Math.round(tick).toLocaleString("en-US")));
  }
  days.forEach((day, i) => {
    let y = height - bottom;
    const x = left + i * step + (step - bar) / 2;
    for (const dag of dags) {
      const credits = day.credits[dag] || 0;
      if (!credits) continue;
      const h = credits * scale;
      y -= h;
      const rect = svg("rect", { x, y, width: bar, height: h, fill: colour(dag), "data-day": day.day, "data-dag": dag });
      rect.append(svg("title", {}, `${day.day} ${dag}: ${credits} credits`));
      chart.append(rect);
    }
    if (days.length <= 16 || i % Math.ceil(days.length / 16) === 0) {
      chart.append(svg("text", { x: x + bar / 2, y: height - 6, "text-anchor": "middle", "font-size": 10, fill: "currentColor" },
        day.day.slice(5)));
    }
  });
  $("#chart").replaceChildren(chart);
  $("#legend").replaceChildren(...dags.map((dag) => {
    const item = el("span");
    const swatch = el("span", null, "swatch");
    swatch.style.background = colour(dag);
    item.append(swatch, document.createTextNode(dag));
    return item;
  }));
}

function drawTables(report) {
  const credits = [];
  for (const day of report.daily) {
    for (const [dag, value] of Object.entries(day.credits)) {
      const tr = row([day.day, dag, num(value)]);
      tr.dataset.day = day.day;
      tr.dataset.dag = dag;
      credits.push(tr);
    }
  }
  fill($("#credits-table tbody"), credits, "No credits spent in this period.", 3);
  fill($("#dag-table tbody"), report.dags.map((d) => row([d.dag_id, num(d.credits)])), "No sends in this period.", 2);
  fill($("#problems-table tbody"), report.problems.map((p) => row([
    when(p.at), p.dag_id, el("td").appendChild(runLink(p)).parentNode, p.task_id + (p.map_index >= 0 ? `[${p.map_index}]` : ""),
    num(p.failed), num(p.uncertain), num(p.suppressed), num(p.not_attempted), p.reasons.join("; "),
  ])), "None in this period.", 9);
  fill($("#alerts-table tbody"), report.alerts.targets.map((t) => row([t.target, num(t.alerts), num(t.failed), when(t.last_at)])),
    "No alerts recorded in this period.", 4);
}

function sparkline(trend) {
  const width = 320, height = 48;
  const values = trend.map((p) => p.available);
  const lo = Math.min(...values), hi = Math.max(...values);
  const span = hi - lo || 1;
  const points = trend.map((p, i) => {
    const x = trend.length === 1 ? width / 2 : (i / (trend.length - 1)) * (width - 4) + 2;
    const y = height - 4 - ((p.available - lo) / span) * (height - 8);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  const line = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": "Balance trend" });
  line.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: "#3182ce", "stroke-width": 2 }));
  return line;
}

function drawBalances(report) {
  const blocks = report.balances.map((b) => {
    const block = el("div", null, "balance");
    block.dataset.connection = b.connection;
    block.append(
      el("span", b.connection || "(connection not recorded)"),
      el("b", Number(b.now.available).toLocaleString("en-US")),
      el("span", `credits at ${when(b.now.at)} (${b.now.source})`, "muted"),
      sparkline(b.trend),
    );
    return block;
  });
  if (!blocks.length) blocks.push(el("p", "No balance recorded in this period.", "muted"));
  $("#balances").replaceChildren(...blocks);
}

function query() {
  const form = new FormData($("#period"));
  const params = new URLSearchParams();
  for (const name of ["start", "end", "tz"]) if (form.get(name)) params.set(name, form.get(name));
  return params;
}

async function load() {
  const params = query();
  $("#json-link").href = `api/usage?${params}`;
  $("#status").textContent = "Loading…";
  const started = performance.now();
  try {
    const answer = await fetch(`api/usage?${params}`, { credentials: "same-origin" });
    const body = await answer.json();
    if (!answer.ok) throw new Error(typeof body.detail === "string" ? body.detail : `HTTP ${answer.status}`);
    drawTotals(body);
    drawChart(body);
    drawTables(body);
    drawBalances(body);
    $("#report").hidden = false;
    const ms = Math.round(performance.now() - started);
    $("#status").textContent = `${body.period.start} to ${body.period.end} (${body.period.timezone}); loaded in ${ms} ms.`;
    document.body.dataset.loaded = "yes";
  } catch (error) {
    $("#status").textContent = `Could not load the figures: ${error.message}`;
    $("#status").className = "error";
  }
}

async function checkBalance() {
  $("#balance-status").textContent = "Asking…";
  try {
    const answer = await fetch("api/balance", { credentials: "same-origin" });
    const body = await answer.json();
    const errors = (body.connections || []).filter((c) => c.error).map((c) => `${c.connection}: ${c.error}`);
    $("#balance-status").textContent = errors.length ? errors.join("; ") : "";
    $("#balance-status").className = errors.length ? "error" : "muted";
  } catch (error) {
    $("#balance-status").textContent = `Could not ask: ${error.message}`;
  }
  await load();
}

function init() {
  const form = $("#period");
  const given = new URLSearchParams(window.location.search);
  const today = new Date();
  const back = new Date(today.getTime() - 29 * 86400000);
  form.start.value = given.get("start") || back.toISOString().slice(0, 10);
  form.end.value = given.get("end") || today.toISOString().slice(0, 10);
  form.tz.value = given.get("tz") || "UTC";
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  $("#check-balance").addEventListener("click", checkBalance);
  load();
}

init();
