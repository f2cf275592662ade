/* The PLQY calibration page: proxy vs absolute PLQY, with the fitted straight line. */
"use strict";

(() => {
  const data = document.getElementById("calibration-data");
  const canvas = document.getElementById("plot-calibration");
  if (!data || !canvas) return;
  const plot = JSON.parse(data.textContent);
  const series = [{ points: plot.pairs, colour: "#2563eb", line: false, markers: true, radius: 4 }];
  const legend = [{ label: "measured pairs", colour: "#2563eb", marker: true }];
  if (plot.line.length) {
    series.push({ points: plot.line, colour: "#ea580c", width: 2, dash: [6, 4] });
    legend.push({ label: "least-squares fit", colour: "#ea580c", dash: [6, 4] });
  }
  Plots.line(canvas, series, { x: "in-situ PLQY proxy (a.u.)", y: "absolute PLQY (%)" }, {
    legend, emptyText: "no pairs yet",
  });
  const button = document.getElementById("use-as-target");
  if (button && navigator.clipboard) {
    button.addEventListener("click", () => {
      navigator.clipboard.writeText(button.dataset.target).then(
        () => { button.textContent = "Target copied"; },
        () => { button.textContent = "Copy the target above"; },
      );
    });
  }
})();
