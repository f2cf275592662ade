/* The experiment page: draw each stored spectrum with its fitted peaks. */
"use strict";

(() => {
  const data = document.getElementById("spectra-data");
  if (!data) return;
  const spectra = JSON.parse(data.textContent);
  for (const canvas of document.querySelectorAll("canvas.spectrum")) {
    Plots.spectrum(canvas, spectra[Number(canvas.dataset.index)]);
  }
})();
