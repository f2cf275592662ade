/* The run page's "What drove the result" card (cloud/explain.py): each input's importance and
   direction (SHAP values of a surrogate fitted on the run's experiments), the surrogate's
   held-out R², its response surface over the two most important inputs, and a warning when the
   data cannot carry an explanation. Fetched once a run has finished, and at most once a minute
   while it runs (an explanation costs the server seconds; it is kept per set of results). */
"use strict";

(() => {
  const card = document.getElementById("explain");
  if (!card || !card.dataset.explainUrl) return;
  const url = card.dataset.explainUrl;
  const $ = (id) => document.getElementById(id);
  const ACTIVE = ["queued", "running", "paused"];
  const RUNNING_GAP_MS = 60000;
  let lastFetch = 0, lastKey = null, busy = false;

  const num = (x, digits = 3) => (x === null || x === undefined || !Number.isFinite(x) ? "–" : String(Number(x.toPrecision(digits))));

  function render(data) {
    card.classList.remove("hidden");
    const warning = $("explain-warning");
    if (!data.available) {
      $("explain-note").textContent = `No explanation yet: ${data.reason}`;
      warning.classList.add("hidden");
      Plots.empty($("plot-importance"), "not enough experiments yet");
      Plots.empty($("plot-surface"), "not enough experiments yet");
      $("explain-factors").querySelector("tbody").replaceChildren();
      card.dataset.verdict = "unavailable";
      return;
    }
    $("explain-note").textContent =
      `${data.n} experiments; surrogate R² on held-out experiments ${num(data.r2_heldout, 2)} ` +
      `(${data.folds}-fold); ${data.method}.`;
    if (data.verdict !== "ok") {
      warning.textContent = `Do not trust this explanation (${data.verdict}): ${data.reasons.join("; ")}`;
      warning.classList.remove("hidden");
    } else {
      warning.classList.add("hidden");
    }
    Plots.bars($("plot-importance"),
      data.factors.map((f) => ({ label: f.name, value: f.importance, sign: f.direction })),
      "mean |SHAP value|");
    const rows = data.factors.map((f) => {
      const tr = document.createElement("tr");
      const direction = f.direction >= 0 ? `raises it (${num(f.direction, 2)})` : `lowers it (${num(f.direction, 2)})`;
      for (const text of [f.name, num(f.importance), direction, `${Math.round(100 * f.span)} %`]) {
        const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
      }
      return tr;
    });
    $("explain-factors").querySelector("tbody").replaceChildren(...rows);
    const s = data.surface || {};
    $("surface-title").textContent = s.x_name ? `Response surface: ${s.x_name} and ${s.y_name}` : "Response surface";
    const fixed = Object.entries(s.fixed || {}).map(([k, v]) => `${k} = ${num(v, 4)}`).join(", ");
    $("surface-fixed").textContent = fixed ? `the other inputs held at the best experiment's: ${fixed}` : "";
    Plots.surface($("plot-surface"), s, []);
    card.dataset.verdict = data.verdict;
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    lastFetch = Date.now();
    try {
      const reply = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (reply.ok) render(await reply.json());
    } catch (err) {
      // quiet: the run page's own poll reports connection problems
    } finally {
      busy = false;
      card.dataset.explainLoaded = "1";
    }
  }

  document.addEventListener("run:updated", (event) => {
    const run = event.detail.run;
    const key = `${run.status}/${run.n_done}`;
    if (key === lastKey) return;
    lastKey = key;
    if (!ACTIVE.includes(run.status) || Date.now() - lastFetch > RUNNING_GAP_MS) refresh();
  });
  refresh();
})();
