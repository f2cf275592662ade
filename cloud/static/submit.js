/* The request form: switch between reaction sources, prefill the space of a stored reaction,
   and compile the formula as the user types, pointing at the column of the first error. */
"use strict";

(() => {
  const form = document.getElementById("request-form");
  if (!form) return;
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const status = document.getElementById("formula-status");
  const formula = document.getElementById("formula");
  const reactionSelect = document.getElementById("reaction_id");
  const reactionUrl = form.dataset.reactionUrl.replace(/0\.json$/, "");

  function showPane() {
    const chosen = form.querySelector('input[name="source"]:checked').value;
    for (const pane of form.querySelectorAll(".pane")) {
      pane.hidden = pane.dataset.source !== chosen;
    }
    for (const tab of form.querySelectorAll(".tab")) {
      tab.classList.toggle("active", tab.querySelector("input").checked);
    }
  }

  function spaceRows() {
    return Array.from(document.querySelectorAll("#space-card tbody tr")).map((tr) => tr.querySelectorAll("input"));
  }

  // Who filled the rows: a stored reaction ("reaction"), the formula's own "# vary"/"# fix"
  // lines ("header"), or the user (null): the page only replaces rows it filled itself.
  let rowsFrom = null;

  function fillSpace(space, from) {
    const rows = spaceRows();
    const entries = Object.entries(space || {});
    rows.forEach((inputs, i) => {
      const e = entries[i];
      const spec = e ? e[1] : {};
      const held = spec.fixed !== undefined && spec.fixed !== null;
      const bound = held ? [spec.fixed, spec.fixed] : spec.bound;
      inputs[0].value = e ? e[0] : "";
      inputs[1].value = bound ? bound[0] : "";
      inputs[2].value = bound ? bound[1] : "";
      inputs[3].value = spec.dx !== null && spec.dx !== undefined ? spec.dx : "";
    });
    rowsFrom = from;
  }

  function chosenSource() {
    return form.querySelector('input[name="source"]:checked').value;
  }

  function sourceChanged() {
    showPane();
    const chosen = chosenSource();
    if (chosen === "stored") loadReaction(true);
    else if (rowsFrom === "reaction") fillSpace({}, null); // not this reaction's rows
    if (chosen === "formula" && formula && formula.value.trim()) check();
  }

  async function loadReaction(prefill) {
    if (!reactionSelect || !reactionSelect.value) return;
    try {
      const reply = await fetch(reactionUrl + reactionSelect.value + ".json", { credentials: "same-origin" });
      if (!reply.ok) return;
      const r = await reply.json();
      document.getElementById("stored-formula").textContent = r.formula ||
        `instruction list: ${r.codes.join(" → ")}`;
      if (prefill) fillSpace(r.space, "reaction");
      // The target stays "as the configuration says" unless the user picks one: the reaction's
      // own metric, in whatever form it is written, is then what the core uses.
    } catch (err) {
      document.getElementById("stored-formula").textContent = `could not load the reaction: ${err.message}`;
    }
  }

  function caretLine(source, line, column) {
    const text = source.split("\n")[line - 1] || "";
    return `${text}\n${" ".repeat(Math.max(0, column - 1))}^`;
  }

  let pending = null, sequence = 0;
  async function check() {
    const mine = ++sequence;
    const source = formula.value;
    if (!source.trim()) { status.className = "formula-status"; status.textContent = ""; return; }
    try {
      const reply = await fetch(form.dataset.checkUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token },
        body: JSON.stringify({ formula: source }),
      });
      const data = await reply.json();
      if (mine !== sequence) return; // a newer keystroke already asked again
      status.replaceChildren();
      if (data.ok) {
        status.className = "formula-status ok";
        const vars = data.variables.length ? ` · variables: ${data.variables.map((v) => "$" + v).join(", ")}` : "";
        status.textContent = `✓ compiles to ${data.codes.length} instructions (${[...new Set(data.codes)].join(", ")})${vars}`;
        const blankRows = spaceRows().every((r) => !r[0].value);
        if (data.space && Object.keys(data.space).length && (rowsFrom !== null || blankRows)) {
          fillSpace(data.space, "header");
        }
        const names = spaceRows().map((r) => r[0].value).filter(Boolean);
        const rows = spaceRows();
        data.variables.filter((v) => !names.includes(v)).forEach((v) => {
          const free = rows.find((r) => !r[0].value);
          if (free) free[0].value = v;
        });
      } else {
        const e = data.error || {};
        status.className = "formula-status error";
        const head = document.createElement("div");
        head.textContent = e.line ? `line ${e.line}, column ${e.column}: ${e.message}` : e.message;
        const pre = document.createElement("pre");
        if (e.line) pre.textContent = caretLine(source, e.line, e.column);
        status.append(head, pre);
      }
    } catch (err) {
      status.className = "formula-status error";
      status.textContent = `cannot check the formula now: ${err.message}`;
    }
  }

  for (const radio of form.querySelectorAll('input[name="source"]')) radio.addEventListener("change", sourceChanged);
  document.getElementById("space-card").addEventListener("input", () => { rowsFrom = null; });
  // A file over the site's upload limit is refused here, so nothing typed on the form is lost.
  const fileInput = document.getElementById("config_file");
  const uploadStatus = document.getElementById("upload-status");
  const maxBytes = Number(form.dataset.maxBytes || 0);
  form.addEventListener("submit", (event) => {
    const file = fileInput && fileInput.files && fileInput.files[0];
    if (chosenSource() !== "upload" || !file || !maxBytes || file.size <= maxBytes) return;
    event.preventDefault();
    uploadStatus.className = "formula-status error";
    uploadStatus.textContent = `${file.name} is ${(file.size / 1048576).toFixed(1)} MB, over the ` +
      `limit of ${(maxBytes / 1048576).toFixed(1)} MB; a configuration or formula file is a few kB`;
  });
  if (fileInput) fileInput.addEventListener("change", () => { uploadStatus.className = "formula-status"; uploadStatus.textContent = ""; });
  if (reactionSelect) reactionSelect.addEventListener("change", () => loadReaction(true));
  if (formula) formula.addEventListener("input", () => { window.clearTimeout(pending); pending = window.setTimeout(check, 250); });
  // Who chooses the experiments: the points fields for a list, the levels for a design; the
  // optimizer and budget say nothing for a list (its budget is its number of points).
  const planSelect = document.getElementById("plan");
  const wrap = (id) => { const el = document.getElementById(id); return el ? el.closest("label") : null; };
  function showPlan() {
    if (!planSelect) return;
    const plan = planSelect.value;
    for (const id of ["points_text", "points_file"]) { const w = wrap(id); if (w) w.classList.toggle("hidden", plan !== "points"); }
    const levels = wrap("levels"); if (levels) levels.classList.toggle("hidden", !plan.includes("factor"));
    const optimizer = document.getElementById("optimizer"); if (optimizer) optimizer.disabled = plan !== "optimizer";
  }
  if (planSelect) planSelect.addEventListener("change", showPlan);
  showPlan();
  showPane();
  const blank = spaceRows().every((r) => !r[0].value);
  loadReaction(blank);
  if (formula && formula.value.trim()) check();
})();
