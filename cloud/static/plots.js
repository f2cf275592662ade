/* Small canvas plots for MAOSIC: line plots, a reward-coloured scatter map, spectra with fits.
   No library: labs are often offline, and these three plot kinds are all the site needs. */
"use strict";

const Plots = (() => {
  const PAD = { left: 62, right: 18, top: 14, bottom: 42 };
  const LEGEND_ROW = 18; // the legend's row above the plot area
  const INK = "#1f2933", GRID = "#e4e7eb", MUTED = "#7b8794";

  // Viridis-like ramp (perceptually ordered), sampled at 5 stops and interpolated.
  const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

  function colour(t) {
    const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
    const i = Math.min(RAMP.length - 2, Math.floor(x));
    const f = x - i;
    const c = RAMP[i].map((v, k) => Math.round(v + f * (RAMP[i + 1][k] - v)));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  function niceTicks(lo, hi, n, integer) {
    if (!(hi > lo)) { hi = lo + 1; }
    const raw = Math.max((hi - lo) / n, integer ? 1 : 0);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return out;
  }

  function fmt(v) {
    const a = Math.abs(v);
    if (a === 0) return "0";
    if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
    return String(Number(v.toPrecision(4)));
  }

  function extent(values, pad) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
    if (!Number.isFinite(lo)) return [0, 1];
    if (lo === hi) { const d = Math.abs(lo) * 0.1 || 1; return [lo - d, hi + d]; }
    const d = (hi - lo) * (pad || 0);
    return [lo - d, hi + d];
  }

  function setup(canvas) {
    // Draw at device resolution so lines stay sharp on high-DPI screens.
    const ratio = window.devicePixelRatio || 1;
    const w = Number(canvas.getAttribute("width")), h = Number(canvas.getAttribute("height"));
    if (!canvas.dataset.cssSized) {
      canvas.style.width = "100%";
      canvas.style.maxWidth = w + "px";
      canvas.dataset.cssSized = "1";
    }
    canvas.width = w * ratio; canvas.height = h * ratio;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "12px system-ui, sans-serif";
    return { ctx, w, h };
  }

  function frame(canvas, xr, yr, labels, rightPad, integerX, topPad) {
    const { ctx, w, h } = setup(canvas);
    const r = PAD.right + (rightPad || 0);
    const top = PAD.top + (topPad || 0); // room above the plot area (the legend's row)
    const sx = (x) => PAD.left + ((x - xr[0]) / (xr[1] - xr[0])) * (w - PAD.left - r);
    const sy = (y) => h - PAD.bottom - ((y - yr[0]) / (yr[1] - yr[0])) * (h - top - PAD.bottom);
    ctx.strokeStyle = GRID; ctx.fillStyle = MUTED; ctx.lineWidth = 1;
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (const t of niceTicks(xr[0], xr[1], 6, integerX)) {
      ctx.beginPath(); ctx.moveTo(sx(t), top); ctx.lineTo(sx(t), h - PAD.bottom); ctx.stroke();
      ctx.fillText(fmt(t), sx(t), h - PAD.bottom + 4);
    }
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (const t of niceTicks(yr[0], yr[1], 5)) {
      ctx.beginPath(); ctx.moveTo(PAD.left, sy(t)); ctx.lineTo(w - r, sy(t)); ctx.stroke();
      ctx.fillText(fmt(t), PAD.left - 6, sy(t));
    }
    ctx.strokeStyle = INK;
    ctx.strokeRect(PAD.left, top, w - PAD.left - r, h - top - PAD.bottom);
    ctx.fillStyle = INK; ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    ctx.fillText(labels.x || "", PAD.left + (w - PAD.left - r) / 2, h - 4);
    ctx.save(); ctx.translate(14, top + (h - top - PAD.bottom) / 2); ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle"; ctx.fillText(labels.y || "", 0, 0); ctx.restore();
    // What was drawn where (CSS pixels), for tests and anyone inspecting the page.
    canvas.dataset.xLabel = labels.x || ""; canvas.dataset.yLabel = labels.y || "";
    canvas.dataset.plotBox = JSON.stringify([PAD.left, top, w - PAD.left - r, h - top - PAD.bottom]);
    delete canvas.dataset.legendBox;
    return { ctx, sx, sy, w, h, r, top };
  }

  /* Legend items in rows above the plot area, a new row when one would be wider than the plot:
     [[item index, ...], ...] and each item's width. */
  function legendRows(ctx, items, w, r) {
    ctx.font = "12px system-ui, sans-serif";
    const room = w - r - PAD.left;
    const widths = items.map((item) => 24 + ctx.measureText(item.label).width);
    const rows = [[]];
    let used = 0;
    widths.forEach((width, i) => {
      const row = rows[rows.length - 1];
      if (row.length && used + 14 + width > room) { rows.push([i]); used = width; return; }
      used += (row.length ? 14 : 0) + width; row.push(i);
    });
    return { rows, widths };
  }

  /* The legend in rows above the plot area, never over the data it explains. */
  function legendRow(canvas, ctx, items, w, r) {
    const { rows, widths } = legendRows(ctx, items, w, r);
    ctx.textAlign = "left"; ctx.textBaseline = "middle";
    let left = Infinity, right = -Infinity;
    rows.forEach((row, k) => {
      const total = row.reduce((a, i) => a + widths[i], 0) + 14 * (row.length - 1);
      let x = Math.max(PAD.left, w - r - total); // right-aligned over the plot area
      left = Math.min(left, x); right = Math.max(right, x + total);
      const y = LEGEND_ROW * k + LEGEND_ROW / 2 + 2;
      for (const i of row) {
        const item = items[i];
        if (item.marker) { // markers only: a dot, as the points are drawn
          ctx.fillStyle = item.colour; ctx.beginPath(); ctx.arc(x + 9, y, 3, 0, 2 * Math.PI); ctx.fill();
        } else {
          ctx.strokeStyle = item.colour; ctx.lineWidth = 2; ctx.setLineDash(item.dash || []);
          ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 18, y); ctx.stroke(); ctx.setLineDash([]);
        }
        ctx.fillStyle = INK; ctx.fillText(item.label, x + 24, y);
        x += widths[i] + 14;
      }
    });
    canvas.dataset.legendBox = JSON.stringify([left, LEGEND_ROW / 2 - 5, right - left, LEGEND_ROW * (rows.length - 1) + 14]);
  }

  function empty(canvas, message) {
    const { ctx, w, h } = setup(canvas);
    ctx.fillStyle = MUTED; ctx.textAlign = "center"; ctx.textBaseline = "middle";
    ctx.fillText(message, w / 2, h / 2);
    canvas.dataset.points = "0";
  }

  /* series: [{points: [[x, y], ...], colour, width, dash, step, markers}] */
  function line(canvas, series, labels, opts) {
    const all = series.flatMap((s) => s.points);
    if (!all.length) { empty(canvas, (opts && opts.emptyText) || "no data yet"); return; }
    const xr = (opts && opts.xRange) || extent(all.map((p) => p[0]), 0);
    const yr = extent(all.map((p) => p[1]), 0.08);
    const legend = opts && opts.legend;
    const nRows = legend ? legendRows(canvas.getContext("2d"), legend, Number(canvas.getAttribute("width")), PAD.right).rows.length : 0;
    const { ctx, sx, sy, w, r } = frame(canvas, xr, yr, labels, 0, opts && opts.integerX, LEGEND_ROW * nRows);
    for (const s of series) {
      if (!s.points.length) continue;
      if (s.line !== false) {
        ctx.strokeStyle = s.colour || "#2563eb"; ctx.lineWidth = s.width || 2;
        ctx.setLineDash(s.dash || []);
        ctx.beginPath();
        s.points.forEach((p, i) => {
          if (i === 0) { ctx.moveTo(sx(p[0]), sy(p[1])); return; }
          if (s.step) ctx.lineTo(sx(p[0]), sy(s.points[i - 1][1]));
          ctx.lineTo(sx(p[0]), sy(p[1]));
        });
        ctx.stroke(); ctx.setLineDash([]);
      }
      if (s.markers) {
        ctx.fillStyle = s.colour || "#2563eb";
        const radius = s.radius || 3;
        for (const p of s.points) { ctx.beginPath(); ctx.arc(sx(p[0]), sy(p[1]), radius, 0, 2 * Math.PI); ctx.fill(); }
      }
      if (s.ring) { // a point to pick out (the best): a ring around it
        ctx.strokeStyle = s.ring; ctx.lineWidth = 2;
        for (const p of s.points) { ctx.beginPath(); ctx.arc(sx(p[0]), sy(p[1]), 8, 0, 2 * Math.PI); ctx.stroke(); }
      }
    }
    if (opts && opts.vlines) {
      ctx.strokeStyle = "#dc2626"; ctx.lineWidth = 1; ctx.setLineDash([3, 3]);
      for (const x of opts.vlines) {
        if (x < xr[0] || x > xr[1]) continue;
        ctx.beginPath(); ctx.moveTo(sx(x), sy(yr[1])); ctx.lineTo(sx(x), sy(yr[0])); ctx.stroke();
      }
      ctx.setLineDash([]);
    }
    if (legend) legendRow(canvas, ctx, legend, w, r);
    canvas.dataset.points = String(all.length);
  }

  /* The value scale to the right of a plot area whose right padding is r. */
  function colourBar(ctx, w, h, r, vr) {
    const bx = w - r + 16, top = PAD.top, bottom = h - PAD.bottom;
    for (let i = 0; i <= 100; i++) {
      ctx.fillStyle = colour(i / 100);
      ctx.fillRect(bx, bottom - ((bottom - top) * (i + 1)) / 101, 12, (bottom - top) / 100 + 1);
    }
    ctx.fillStyle = INK; ctx.textAlign = "left"; ctx.textBaseline = "middle";
    ctx.fillText(fmt(vr[1]), bx + 15, top + 4); ctx.fillText(fmt(vr[0]), bx + 15, bottom - 4);
  }

  /* points: [{x, y, value (null = not measured yet), failed}], ranges from the space's bounds. */
  function map(canvas, points, labels, xRange, yRange, best) {
    if (!points.length) { empty(canvas, "no experiments yet"); return; }
    const { ctx, sx, sy, w, h, r } = frame(canvas, xRange, yRange, labels, 56);
    const vr = extent(points.filter((p) => p.value !== null).map((p) => p.value), 0);
    for (const p of points) {
      ctx.beginPath(); ctx.arc(sx(p.x), sy(p.y), 5, 0, 2 * Math.PI);
      if (p.failed) {
        // A failed experiment: a red cross where it was tried (it told the optimizer nothing).
        ctx.strokeStyle = "#dc2626"; ctx.lineWidth = 1.5; ctx.beginPath();
        ctx.moveTo(sx(p.x) - 4, sy(p.y) - 4); ctx.lineTo(sx(p.x) + 4, sy(p.y) + 4);
        ctx.moveTo(sx(p.x) + 4, sy(p.y) - 4); ctx.lineTo(sx(p.x) - 4, sy(p.y) + 4); ctx.stroke();
        continue;
      }
      if (p.value === null) { ctx.strokeStyle = "#9aa5b1"; ctx.lineWidth = 1.5; ctx.stroke(); continue; }
      ctx.fillStyle = colour((p.value - vr[0]) / (vr[1] - vr[0])); ctx.fill();
      ctx.strokeStyle = "rgba(0,0,0,0.35)"; ctx.lineWidth = 0.5; ctx.stroke();
    }
    if (best) {
      ctx.strokeStyle = "#dc2626"; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(sx(best.x), sy(best.y), 9, 0, 2 * Math.PI); ctx.stroke();
    }
    colourBar(ctx, w, h, r, vr);  // the reward scale on the right
    canvas.dataset.points = String(points.length);
  }

  /* spectrum: {kind, unit, wavelength_nm, value, fit: {curve, peaks}} */
  function spectrum(canvas, s) {
    if (!s || !s.wavelength_nm || !s.wavelength_nm.length) { empty(canvas, "no spectrum yet"); return; }
    const data = s.wavelength_nm.map((x, i) => [x, s.value[i]]);
    const series = [{ points: data, colour: "#1f2933", width: 1.6 }];
    const legend = [{ label: "measured", colour: "#1f2933" }];
    let centres = [];
    if (s.fit && s.fit.curve && s.fit.curve.length) {
      // The fit is drawn only where it was fitted (its own wavelengths; older replies: all).
      const fx = s.fit.wavelength_nm || s.wavelength_nm;
      series.push({ points: fx.map((x, i) => [x, s.fit.curve[i]]), colour: "#ea580c", width: 2, dash: [6, 4] });
      legend.push({ label: `fit (${s.fit.peaks.length} peak${s.fit.peaks.length === 1 ? "" : "s"})`, colour: "#ea580c", dash: [6, 4] });
      centres = s.fit.peaks.map((p) => p.centre_nm !== undefined ? p.centre_nm : p.centre);
    }
    const unitLabel = { absorbance: "absorbance (OD)", cd: "CD (mdeg)", pl: "PL (counts)" }[s.kind] || `${s.kind} (${s.unit})`;
    line(canvas, series, { x: "wavelength (nm)", y: unitLabel }, { vlines: centres, legend });
  }

  /* items: [{label, value (>= 0), sign (+1 raises the reward, -1 lowers it)}], largest first:
     horizontal bars, blue for a factor that raises the reward, orange for one that lowers it. */
  function bars(canvas, items, xLabel) {
    if (!items.length) { empty(canvas, "nothing to show"); return; }
    const { ctx, w, h } = setup(canvas);
    const left = 110, right = 70, top = 8, rowH = Math.min(34, (h - top - 30) / items.length);
    const vmax = Math.max(...items.map((i) => i.value), 1e-12);
    const sx = (v) => left + (v / vmax) * (w - left - right);
    items.forEach((item, k) => {
      const y = top + k * rowH;
      ctx.fillStyle = item.sign >= 0 ? "#2563eb" : "#ea580c";
      ctx.fillRect(left, y + 5, Math.max(1, sx(item.value) - left), rowH - 10);
      ctx.fillStyle = INK; ctx.textAlign = "right"; ctx.textBaseline = "middle";
      ctx.fillText(item.label, left - 8, y + rowH / 2);
      ctx.textAlign = "left"; ctx.fillStyle = MUTED;
      ctx.fillText(`${fmt(item.value)} ${item.sign >= 0 ? "▲" : "▼"}`, sx(item.value) + 6, y + rowH / 2);
    });
    ctx.fillStyle = INK; ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    ctx.fillText(xLabel || "", left + (w - left - right) / 2, h - 4);
    canvas.dataset.bars = JSON.stringify(items.map((i) => i.label));
  }

  /* surface: {x_name, y_name, x: [..], y: [..], z: [[row per y]], fixed}: a heat map of the
     surrogate's prediction over two factors, the measured points on top. */
  function surface(canvas, s, points) {
    if (!s || !s.x || !s.x.length) { empty(canvas, "no surface"); return; }
    const xr = [s.x[0], s.x[s.x.length - 1]], yr = [s.y[0], s.y[s.y.length - 1]];
    const { ctx, sx, sy, w, h, r } = frame(canvas, xr, yr, { x: s.x_name, y: s.y_name }, 56);
    const flat = s.z.flat();
    const vr = extent(flat, 0);
    const dx = (xr[1] - xr[0]) / Math.max(1, s.x.length - 1), dy = (yr[1] - yr[0]) / Math.max(1, s.y.length - 1);
    s.y.forEach((yv, j) => s.x.forEach((xv, i) => {
      ctx.fillStyle = colour((s.z[j][i] - vr[0]) / (vr[1] - vr[0]));
      const x0 = sx(Math.max(xr[0], xv - dx / 2)), x1 = sx(Math.min(xr[1], xv + dx / 2));
      const y0 = sy(Math.min(yr[1], yv + dy / 2)), y1 = sy(Math.max(yr[0], yv - dy / 2));
      ctx.fillRect(x0, y0, x1 - x0 + 0.5, y1 - y0 + 0.5);
    }));
    ctx.strokeStyle = "rgba(255,255,255,0.9)"; ctx.lineWidth = 1;
    for (const p of points || []) {
      ctx.beginPath(); ctx.arc(sx(p.x), sy(p.y), 3, 0, 2 * Math.PI); ctx.stroke();
    }
    colourBar(ctx, w, h, r, vr);
    canvas.dataset.cells = String(flat.length);
  }

  return { line, map, spectrum, colour, empty, bars, surface };
})();
