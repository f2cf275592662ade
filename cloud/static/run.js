/* The run page: poll live.json and redraw progress, plots and the experiment table in place. */
"use strict";

(() => {
  const root = document.getElementById("run");
  if (!root) return;
  const liveUrl = root.dataset.liveUrl;
  const expUrl = root.dataset.experimentUrl.replace(/\/0$/, "/");
  const pollMs = Number(root.dataset.pollMs) || 1500;
  const ACTIVE = new Set(["queued", "running", "paused"]);
  let last = null, timer = null, failures = 0;

  const $ = (id) => document.getElementById(id);
  const text = (id, v) => { const el = $(id); if (el) el.textContent = v; };

  function duration(s) {
    if (s === null || s === undefined) return "–";
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    if (s < 72 * 3600) return `${(s / 3600).toFixed(1)} h`;
    return `${(s / 86400).toFixed(1)} days`;
  }

  // The reward's unit from the target metric ("" for a weighted sum, null when unknown).
  const withUnit = (label, unit) => (unit ? `${label} (${unit})` : label);
  const rewardText = (x, unit) => (x === null || x === undefined ? "–"
    : `${Number(x.toPrecision(4))}${unit ? ` ${unit}` : ""}`);
  const localTime = (iso) => (typeof Times !== "undefined" ? Times.format(iso) : (iso || "–"));

  // Which clock the estimate is on: what a person waits (the wall clock), measured on recent
  // experiments or assumed; a simulated lab's own clock runs far faster and is told apart.
  function clockNote(run) {
    if (!ACTIVE.has(run.status) || run.eta_s === null || run.eta_s === undefined) return "";
    const parts = [run.eta_basis === "measured"
      ? `wall clock, ${duration(run.experiment_s)} per experiment measured`
      : "wall clock, assumed 2 min per experiment (none timed yet)"];
    if (run.eta_lab_s !== null && run.eta_lab_s !== undefined) {
      parts.push(`${duration(run.eta_lab_s)} on the lab clock (simulated)`);
    }
    return parts.join(" · ");
  }

  function fmtParams(p) {
    return p ? Object.entries(p).map(([k, v]) => `${k} = ${v}`).join(", ") : "";
  }

  function badge(status) {
    const span = document.createElement("span");
    span.className = `badge ${status}`; span.textContent = status;
    return span;
  }

  function renderSummary(run) {
    const st = $("status"); st.replaceChildren(badge(run.status));
    text("n-done", run.n_done); text("budget", run.budget);
    text("n-chem-failures", run.n_chemistry_failures); text("n-lab-failures", run.n_lab_failures);
    $("progress-bar").style.width = `${Math.min(100, (100 * run.n_done) / Math.max(1, run.budget))}%`;
    text("best-reward", rewardText(run.best_reward, run.reward_unit));
    text("best-params", fmtParams(run.best_params));
    text("current-step", run.current_step || (run.status === "queued" ? "waiting in the queue" : "–"));
    // a queued request's time left includes its wait for every request ahead of it
    text("eta", ACTIVE.has(run.status) ? duration(run.eta_s) : "–");
    text("eta-clock", clockNote(run));
    text("queue-pos", run.status === "queued" && run.position
      ? ` · position ${run.position} in the queue, starts in ~${duration(run.estimated_start_s)}` : "");
    text("created-at", localTime(run.created_at));
    text("started-at", run.started_at ? localTime(run.started_at) : (run.status === "queued" ? "not yet" : "–"));
    text("finished-at", run.finished_at ? localTime(run.finished_at) : "–");
    text("reward-head", withUnit("Reward", run.reward_unit));
    const reason = run.failure_reason || run.stop_reason || (run.cancel_requested && ACTIVE.has(run.status) ? "cancelling after the experiment in progress" : "");
    text("stop-reason", reason ? `Note: ${reason}` : "");
    // no cancel button for a colleague the request is shared with (read-only)
    if ($("cancel")) $("cancel").disabled = !ACTIVE.has(run.status) || run.cancel_requested;
  }

  // Why an experiment failed: the lab's losses and cut-off runs are redone, not counted.
  const KINDS = { lab: "lost to the lab, redone", "cut off": "cut off, redone" };
  function note(e) {
    const kind = KINDS[e.failure_kind];
    return kind ? `${kind}: ${e.error || ""}` : (e.error || "");
  }

  // who chose the point: the optimizer, a person, a design, or a replicate (of what)
  function chosenBy(e) {
    const by = e.chosen_by || "";
    if (by.startsWith("optimizer:")) return by.slice(10);
    if (by.startsWith("user:")) return `${by.slice(5)} (person)`;
    if (by.startsWith("design:")) return by.slice(7).replaceAll("_", " ");
    if (by === "confirm") return "replicate (confirms the goal)";
    return by || "–";
  }

  function renderTable(experiments) {
    const body = $("experiments").tBodies[0];
    const rows = experiments.slice().reverse().map((e) => {
      const tr = document.createElement("tr");
      const a = document.createElement("a"); a.href = expUrl + e.number; a.textContent = e.number;
      // the batch: which optimizer call proposed the point ("–" for runs from before batches)
      const cells = [a, e.batch === null || e.batch === undefined ? "–" : String(e.batch),
        chosenBy(e), fmtParams(e.params), badge(e.status),
        e.reward === null ? "–" : String(Number(e.reward.toPrecision(4))), note(e)];
      for (const c of cells) {
        const td = document.createElement("td");
        if (typeof c === "string") td.textContent = c; else td.appendChild(c);
        tr.appendChild(td);
      }
      return tr;
    });
    body.replaceChildren(...rows);
  }

  function renderMap(data) {
    const names = Object.keys(data.space);
    const canvas = $("plot-map");
    if (names.length === 0) { Plots.empty(canvas, "no optimised variables"); return; }
    if (names.length === 1) { renderOneVariable(data, names[0], canvas); return; }
    const xName = names.length > 2 ? $("pair-x").value : names[0];
    const yName = names.length > 2 ? $("pair-y").value : (names[1] || names[0]);
    const pts = data.experiments.filter((e) => e.params && xName in e.params && yName in e.params)
      .map((e) => ({ x: e.params[xName], y: e.params[yName], value: e.reward, failed: e.status === "failed" }));
    const bp = data.run.best_params;
    const best = bp && xName in bp && yName in bp ? { x: bp[xName], y: bp[yName] } : null;
    Plots.map(canvas, pts, { x: xName, y: yName }, data.space[xName].bound, data.space[yName].bound, best);
  }

  // One variable: the reward against it (a map of the variable against itself says nothing).
  function renderOneVariable(data, name, canvas) {
    const pts = data.experiments.filter((e) => e.params && name in e.params && e.reward !== null)
      .map((e) => [e.params[name], e.reward]);
    const bp = data.run.best_params;
    const best = bp && name in bp && data.run.best_reward !== null ? [[bp[name], data.run.best_reward]] : [];
    Plots.line(canvas, [
      { points: pts, colour: "#2563eb", line: false, markers: true },
      { points: best, colour: "#dc2626", line: false, ring: "#dc2626" },
    ], { x: name, y: withUnit("reward", data.run.reward_unit) }, {
      emptyText: "no experiments yet", xRange: data.space[name].bound,
      legend: [{ label: "each experiment", colour: "#2563eb", marker: true }, { label: "best", colour: "#dc2626", marker: true }],
    });
  }

  function render(data) {
    last = data;
    renderSummary(data.run);
    Plots.line($("plot-best"), [
      { points: data.experiments.filter((e) => e.reward !== null).map((e) => [e.number, e.reward]), colour: "#9aa5b1", line: false, markers: true },
      { points: data.best_so_far, colour: "#2563eb", width: 2.2, step: true },
    ], { x: "experiment number", y: withUnit("reward", data.run.reward_unit) }, {
      emptyText: "waiting for the first experiment", integerX: true,
      legend: [{ label: "best so far", colour: "#2563eb" }, { label: "each experiment", colour: "#9aa5b1", marker: true }],
    });
    renderMap(data);
    const spectra = data.latest ? data.latest.spectra : [];
    const abs = spectra.find((s) => s.kind === "absorbance");
    const second = spectra.find((s) => s.kind === "cd") || spectra.find((s) => s.kind === "pl");
    Plots.spectrum($("plot-abs"), abs);
    Plots.spectrum($("plot-cd"), second);
    text("second-title", second && second.kind === "pl" ? "Latest PL" : "Latest CD");
    text("latest-number", data.latest ? `experiment ${data.latest.number}` : "");
    renderTable(data.experiments);
    root.dataset.nDone = data.run.n_done;
    // choose.js redraws what runs next and the replicates when the run has moved on
    document.dispatchEvent(new CustomEvent("run:updated", { detail: data }));
  }

  async function poll() {
    try {
      const reply = await fetch(liveUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (reply.status === 401 || reply.redirected) { window.location.reload(); return; }
      if (!reply.ok) throw new Error(`HTTP ${reply.status}`);
      render(await reply.json());
      failures = 0;
    } catch (err) {
      failures += 1;
      text("current-step", `connection problem, retrying (${err.message})`);
    }
    const active = !last || ACTIVE.has(last.run.status);
    // Back off while the server is unreachable; slow down once the run is over.
    const delay = active ? pollMs * Math.min(8, 2 ** failures) : 15000;
    timer = window.setTimeout(poll, delay);
  }

  // -- stock: will the lab's bottles last the rest of the request? ------------------------------
  const stockUrl = root.dataset.stockUrl;
  const STOCK_POLL_MS = Math.max(5000, 4 * pollMs); // the stock changes slowly; many pages ask
  function mL(v) { return `${Number(v).toFixed(2)} mL`; }

  function renderStock(s) {
    const box = $("stock-warning");
    const warnings = s.warnings || [];
    box.classList.toggle("hidden", warnings.length === 0);
    box.replaceChildren(...warnings.map((w) => {
      const p = document.createElement("div");
      p.className = "stock-shortfall";
      p.textContent = `Low stock: ${w.reagent} holds ${mL(w.stock_mL)}, enough for ${w.covers} more ` +
        `experiment${w.covers === 1 ? "" : "s"}; the ${w.remaining} remaining need about ${mL(w.needed_mL)}. ` +
        "Ask an operator to refill it.";
      return p;
    }));
    text("stock-note", s.active && !s.known ? "lab stock unknown" : "");
  }

  async function pollStock() {
    let active = !last || ACTIVE.has(last.run.status);
    try {
      const reply = await fetch(stockUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (reply.ok) { const s = await reply.json(); renderStock(s); active = active && s.active; }
    } catch (err) {
      // quiet: the run page's own poll reports connection problems
    }
    if (active) window.setTimeout(pollStock, STOCK_POLL_MS);
  }

  for (const id of ["pair-x", "pair-y"]) {
    const sel = $(id);
    if (sel) sel.addEventListener("change", () => { if (last) renderMap(last); });
  }
  if ($("cancel-form")) $("cancel-form").addEventListener("submit", (ev) => {
    if (!window.confirm("Cancel this request? A running experiment finishes first.")) ev.preventDefault();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) { window.clearTimeout(timer); poll(); }
  });
  poll();
  pollStock();
})();
