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

  // -- the lab's lease -----------------------------------------------------------------------
  const LEASE_HELD = -32008, LEASE_LOST = -32009;
  let lease = null, leaseUntil = 0; // leaseUntil: Date.now() when the shown lease expires

  function show(id, on) { $(id).classList.toggle("hidden", !on); }

  function leaseLeft() {
    if (!lease || !lease.holder) { $("lease-left").textContent = "–"; return; }
    const s = Math.max(0, Math.round((leaseUntil - Date.now()) / 1000));
    $("lease-left").textContent = s >= 120 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
  }

  function renderLease(l, error) {
    lease = l;
    if (!l) {
      $("lease-holder").textContent = "unknown"; $("lease-whose").textContent = error || "";
      $("lease-epoch").textContent = "–"; leaseLeft();
      for (const id of ["lease-take", "lease-preempt", "lease-release"]) show(id, false);
      return;
    }
    leaseUntil = Date.now() + 1000 * Number(l.expires_in_s || 0);
    $("lease-holder").textContent = l.holder || "nobody (free)";
    $("lease-holder").className = l.mine ? "good" : (l.holder ? "bad" : "");
    const elsewhere = !l.mine && l.holder === l.me; // your name, from another browser or terminal
    $("lease-whose").textContent = l.mine ? "you" : elsewhere ? "you, in another session" :
      (l.holder ? (l.holder_is_operator ? "another operator" : "a campaign") : "");
    $("lease-epoch").textContent = l.epoch;
    leaseLeft();
    show("lease-take", !l.holder);
    show("lease-preempt", Boolean(l.holder) && !l.mine);
    $("lease-preempt").textContent = elsewhere ? "Take the lab here" :
      l.holder_is_operator ? `Take the lab from ${l.holder}` : "Pause the campaign and take the lab";
    show("lease-release", l.mine);
  }

  async function leaseAction(action) {
    if (action === "take_over") {
      const who = lease && lease.holder ? lease.holder : "the current holder";
      const what = lease && lease.holder_is_operator ? `Take the lab from ${who}? Their next command is refused.` :
        `Pause the campaign (${who}) and take the lab? Its experiment in progress is redone later, not counted.`;
      if (!window.confirm(what)) return;
    }
    const reply = await fetch(root.dataset.leaseUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token },
      body: JSON.stringify({ action }),
    });
    const data = await reply.json();
    const recovered = data.recovered || [];
    $("lease-recovered").replaceChildren(...recovered.map((t) => { const li = document.createElement("li"); li.textContent = t; return li; }));
    show("lease-recovery", recovered.length > 0);
    let line;
    if (!data.ok) line = `✗ ${action === "release" ? "give back" : "take"}: ${data.error}`;
    else if (action === "release") line = data.lease && data.lease.released ? "✓ lab given back" : "✓ lab no longer yours (it had been taken over)";
    else line = `✓ you hold the lab (epoch ${data.lease.epoch})${data.took_over ? `, taken from ${data.took_over}` : ""}`;
    $("lease-message").textContent = line;
    log.textContent = `${new Date().toLocaleTimeString()}  ${line}\n` + log.textContent;
    refresh();
  }

  function render(d) {
    $("reachable").textContent = d.reachable ? "reachable" : "unreachable";
    $("reachable").className = d.reachable ? "good" : "bad";
    $("daemon-url").textContent = d.url || "";
    renderLease(d.reachable ? d.lease : null, d.reachable ? d.lease_error : "daemon unreachable");
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
    if (data.code === LEASE_HELD || data.code === LEASE_LOST) $("lease-message").textContent = `${method} refused: ${data.error}`;
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
  $("lease-take").addEventListener("click", () => leaseAction("take"));
  $("lease-preempt").addEventListener("click", () => leaseAction("take_over"));
  $("lease-release").addEventListener("click", () => leaseAction("release"));
  window.setInterval(leaseLeft, 1000);
  refresh();
  window.setInterval(refresh, 3000);
})();
