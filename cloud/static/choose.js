/* The run page's "next experiments" and "reproducibility" cards (cloud/choose.py): what runs
   next (the optimizer's suggestion or the points waiting), and each group of replicates with
   its mean, standard deviation and CV and its spectra overlaid. Redrawn when run.js reports
   that the run moved on, at most every few seconds (the suggestion costs the core a model fit). */
"use strict";

(() => {
  const root = document.getElementById("run");
  if (!root || !root.dataset.chooseUrl) return;
  const url = root.dataset.chooseUrl;
  const $ = (id) => document.getElementById(id);
  const MIN_GAP_MS = 4000;
  const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
  let lastFetch = 0, lastDone = null, pending = null;

  const fmt = (x, digits = 4) => (x === null || x === undefined ? "–" : String(Number(x.toPrecision(digits))));
  const fmtPoint = (p) => (p ? Object.entries(p).map(([k, v]) => `${k} = ${v}`).join(", ") : "–");

  function renderNext(data) {
    const next = $("next-point");
    const form = $("propose-form"); // a person proposes points only while the request is active
    if (form) form.classList.toggle("hidden", !["queued", "running", "paused"].includes(data.status));
    const s = data.suggestion;
    if (!["queued", "running", "paused"].includes(data.status)) {
      next.textContent = "The request has ended; repeat an experiment to test its reproducibility.";
    } else if (s && s.point) {
      const who = s.chosen_by.startsWith("optimizer:") ? `the optimizer (${s.chosen_by.slice(10)}) suggests`
        : `${s.chosen_by} chose`;
      next.textContent = `Next: ${fmtPoint(s.point)} — ${who}.`;
    } else {
      next.textContent = "Next: the optimizer's choice.";
    }
    next.dataset.point = s && s.point ? JSON.stringify(s.point) : "";
    $("plan-list").replaceChildren(...data.plan.map((p) => {
      const li = document.createElement("li");
      li.textContent = `${fmtPoint(p.params)} (${p.chosen_by})`;
      return li;
    }));
  }

  function renderReplicates(data) {
    const card = $("reproducibility");
    const groups = data.replicates || [];
    card.classList.toggle("hidden", groups.length === 0);
    if (!groups.length) return;
    $("replicate-stats").tBodies[0].replaceChildren(...groups.map((g) => {
      const tr = document.createElement("tr");
      const runs = [g.original, ...g.replicates].map((r) => (r.reward === null ? "failed" : fmt(r.reward)));
      const cells = [fmtPoint(g.params), String(g.n + g.n_failed), fmt(g.mean), fmt(g.std, 2),
        g.cv_percent === null ? "–" : `${g.cv_percent.toFixed(1)} %`, runs.join(", ")];
      for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
      return tr;
    }));
    // The overlay: the first group's spectra (the one this page is most likely about).
    const spectra = groups[0].spectra || [];
    const series = spectra.map((s, i) => ({
      points: s.wavelength_nm.map((x, j) => [x, s.value[j]]), colour: COLOURS[i % COLOURS.length], width: 1.4,
    }));
    const unit = spectra.length ? spectra[0].unit : "";
    Plots.line($("plot-replicates"), series, { x: "wavelength (nm)", y: `${data.spectrum_kind} (${unit})` }, {
      emptyText: "no spectra of the replicates yet",
      legend: spectra.map((s, i) => ({ label: s.label, colour: COLOURS[i % COLOURS.length] })),
    });
  }

  async function refresh() {
    pending = null;
    lastFetch = Date.now();
    try {
      const reply = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!reply.ok) return;
      const data = await reply.json();
      renderNext(data);
      renderReplicates(data);
      root.dataset.chooseLoaded = "1";
    } catch (err) {
      // quiet: the run page's own poll reports connection problems
    }
  }

  document.addEventListener("run:updated", (event) => {
    const done = `${event.detail.run.status}/${event.detail.run.n_done}`;
    if (done === lastDone || pending) return;
    lastDone = done;
    pending = window.setTimeout(refresh, Math.max(0, MIN_GAP_MS - (Date.now() - lastFetch)));
  });
  refresh();
})();
