/* Operators' hardware page: poll the daemon's status and send manual commands. */
"use strict";

(() => {
  const root = document.getElementById("hardware");
  if (!root) return;
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const log = document.getElementById("command-log");
  const $ = (id) => document.getElementById(id);

  function cells(tr, values) {
    for (const v of values) { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); }
    return tr;
  }

  function render(d) {
    $("reachable").textContent = d.reachable ? "reachable" : "unreachable";
    $("reachable").className = d.reachable ? "good" : "bad";
    $("daemon-url").textContent = d.url || "";
    if (!d.reachable) { $("faults").textContent = d.error || ""; return; }
    const lab = d.lab || "";
    $("lab-name").textContent = d.simulated && !/simulated/i.test(lab) ? `${lab} (simulated)` : lab;
    const h = d.heater || {};
    $("heater-temp").textContent = h.temperature_C !== undefined ? `${Number(h.temperature_C).toFixed(1)} °C` : "–";
    $("heater-set").textContent = h.setpoint_C === null || h.setpoint_C === undefined ? "off" : `setpoint ${h.setpoint_C} °C${h.stable ? ", stable" : ""}`;
    const st = d.status || {};
    $("clock").textContent = st.clock_s !== undefined ? `${Number(st.clock_s).toFixed(0)} s` : "–";
    const mods = st.modules || {};
    const faults = Object.entries(mods).filter(([, m]) => m.fault).map(([id, m]) => `${id}: ${m.fault}`);
    $("faults").textContent = faults.length ? faults.join("; ") : "none";
    $("faults").className = faults.length ? "bad" : "good";
    $("modules").tBodies[0].replaceChildren(...Object.entries(mods).map(([id, m]) =>
      cells(document.createElement("tr"), [id, (d.modules || {})[id] || "", m.state || "", m.fault || ""])));
    $("pumps").tBodies[0].replaceChildren(...(d.pumps || []).map((p) =>
      cells(document.createElement("tr"), [p.pump, p.reagent || "", p.volume_mL !== undefined ? `${Number(p.volume_mL).toFixed(3)} / ${p.capacity_mL}` : "", p.state || p.error || ""])));
    $("stock").tBodies[0].replaceChildren(...Object.entries(d.reagents || {}).map(([name, r]) =>
      cells(document.createElement("tr"), [name, Number(r.stock_mL).toFixed(2)])));
  }

  async function refresh() {
    try {
      const reply = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
      render(await reply.json());
    } catch (err) {
      render({ reachable: false, error: err.message });
    }
  }

  async function send(method, params) {
    const reply = await fetch(root.dataset.commandUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token },
      body: JSON.stringify({ method, params }),
    });
    const data = await reply.json();
    const line = data.ok ? `✓ ${method} → ${JSON.stringify(data.result)}` : `✗ ${method}: ${data.error}`;
    log.textContent = `${new Date().toLocaleTimeString()}  ${line}\n` + log.textContent;
    refresh();
  }

  const PARAMS = {
    "heater.off": [], "pump.stop": ["pump"], "system.stop": [], "system.reset_faults": [],
    "pump.withdraw": ["pump", "volume_mL", "rate_mL_min"],
  };
  function paramsOf(formEl, names) {
    const out = {};
    for (const el of formEl.querySelectorAll("input, select")) {
      if (!names || names.includes(el.name)) out[el.name] = el.value;
    }
    return out;
  }
  for (const f of document.querySelectorAll("form.command")) {
    f.addEventListener("submit", (ev) => { ev.preventDefault(); send(f.dataset.method, paramsOf(f)); });
    for (const b of f.querySelectorAll("button[data-method]")) {
      b.addEventListener("click", () => send(b.dataset.method, paramsOf(f, PARAMS[b.dataset.method])));
    }
  }
  $("estop").addEventListener("click", () => send("system.stop", {}));
  refresh();
  window.setInterval(refresh, 3000);
})();
