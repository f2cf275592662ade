/* Comparing requests: the request list's "Compare selected" and the comparison page's overlay of
   best-so-far curves, one colour per request. */
"use strict";

const Compare = (() => {
  // Okabe-Ito: told apart by people with colour-vision deficiencies; one per request (at most 8).
  const COLOURS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#8c6d31"];
  const NEAR_BEST = "#9aa5b1";
  const MAX_LABEL = 64; // characters of a legend entry: a long reaction name is cut, not the plot

  function colour(index) { return COLOURS[index % COLOURS.length]; }

  function short(text) { return text.length > MAX_LABEL ? text.slice(0, MAX_LABEL - 1) + "…" : text; }

  /* The request list: the button counts the ticked requests and works for 2 to max of them. */
  function listPage(form) {
    const button = document.getElementById("compare-selected");
    const count = document.getElementById("compare-count");
    const max = Number(form.dataset.max);
    const update = () => {
      const n = form.querySelectorAll("input.compare-pick:checked").length;
      button.disabled = n < 2 || n > max;
      count.textContent = n > max ? `${n} ticked: at most ${max}` : (n ? `${n} ticked` : "");
    };
    form.addEventListener("change", update);
    update();
  }

  function withUnit(label, unit) { return unit ? `${label} (${unit})` : label; }

  /* The comparison page: the curves on one canvas, the legend in rows above them. */
  function comparePage(data) {
    for (const swatch of document.querySelectorAll(".swatch")) {
      // Set here: the site's content policy allows no style attributes in the page.
      Object.assign(swatch.style, {
        display: "inline-block", width: "0.9rem", height: "0.9rem", borderRadius: "2px",
        verticalAlign: "middle", marginRight: "0.3rem", background: colour(Number(swatch.dataset.index)),
      });
    }
    const canvas = document.getElementById("plot-compare");
    if (!canvas || !data.overlay) return;
    const series = data.requests.map((r) => ({ points: r.best_so_far, colour: colour(r.index), width: 2.2, step: true }));
    const legend = data.requests.map((r) => ({ label: short(r.label), colour: colour(r.index) }));
    const all = data.requests.flatMap((r) => r.best_so_far);
    const xs = all.map((p) => p[0]);
    // Half an experiment of room on the right: a rise at the last experiment shows.
    const xRange = all.length ? [Math.min(...xs), Math.max(...xs) + 0.5] : undefined;
    if (data.near_best_threshold !== null && all.length) {
      series.push({
        points: [[xRange[0], data.near_best_threshold], [xRange[1], data.near_best_threshold]],
        colour: NEAR_BEST, width: 1, dash: [5, 4],
      });
      legend.push({ label: `${Math.round(data.near_best_fraction * 100)} % of the best`, colour: NEAR_BEST, dash: [5, 4] });
    }
    Plots.line(canvas, series, { x: "experiment number", y: withUnit("best reward so far", data.requests[0].reward_unit) }, {
      emptyText: "none of these requests has a reward yet", integerX: true, legend, xRange,
    });
    // What was drawn, for tests and anyone inspecting the page.
    canvas.dataset.curves = String(data.requests.filter((r) => r.best_so_far.length).length);
    canvas.dataset.legend = JSON.stringify(all.length ? legend.map((item) => item.label) : []);
  }

  function init() {
    const form = document.getElementById("compare-form");
    if (form) listPage(form);
    const data = document.getElementById("compare-data");
    if (data) comparePage(JSON.parse(data.textContent));
  }

  init();
  return { colour };
})();
