// The web approval inbox: the public REST API, with the caller's bearer token.
// Every value from the API is inserted as text (never HTML): plans carry user-chosen names.

const TOKEN_KEY = "raydeploy.token";
let me = null; // {principal, roles, auth_enabled, forbid_self_approval}
let stopStream = null; // closes the run timeline's event stream
// bumped by each route(): a page whose data arrives after the next route began renders
// nothing (a slow inbox must not replace the run page the user went on to)
let generation = 0;
function current() { const mine = generation; return () => mine === generation; }

// -- helpers ----------------------------------------------------------------------------------
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function headers(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}`, ...extra } : extra;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: headers(options.body ? { "Content-Type": "application/json" } : {}),
  });
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : {};
  if (!response.ok) throw new ApiError(response.status, body.message || response.statusText);
  return body;
}

function age(seconds) {
  const s = Math.max(0, Date.now() / 1000 - seconds);
  if (s < 90) return `${Math.round(s)}s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

function when(seconds) { return seconds ? new Date(seconds * 1000).toLocaleString() : ""; }

function can(role) { return me && me.roles.includes(role); }

function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  return node;
}

function view(...children) { return fill(document.getElementById("view"), ...children); }

function failure(error) {
  return el("p", { class: "error", role: "alert", text: `Error: ${error.message}` });
}

// -- inbox ----------------------------------------------------------------------------------------
async function inbox() {
  const live = current();
  const pending = (await api("/api/v1/approvals?state=pending")).approvals;
  const cards = [];
  for (const item of pending) {
    const gate = await api(`/api/v1/approvals/${encodeURIComponent(item.checkpoint)}`);
    cards.push(gateCard(item, gate));
  }
  if (!live()) return;
  view(el("h1", { text: "Approvals waiting" }),
       cards.length ? cards : el("p", { class: "meta", id: "inbox-empty", text: "Nothing waits for a decision." }));
}

function gateCard(item, gate) {
  // what this card shows is the gate as just read: the plan, its run and fingerprint; a
  // decision names exactly those (the API refuses it, 409, when another plan awaits now)
  const shown = { run_id: gate.run_id || item.run_id, plan_fingerprint: gate.plan_fingerprint || item.plan_fingerprint };
  const risk = gate.gate?.risk || (item.breaking ? "breaking" : item.destructive ? "destructive" : "approval");
  const actions = (gate.plan?.actions || []).map((action) => {
    const impact = [...(action.impact?.notes || []), ...(action.impact?.shortfalls || [])];
    const breaks = action.breaks?.length ? el("span", { class: "breaks", text: ` BREAKS ${action.breaks.join(", ")}` }) : null;
    return el("li", {}, describe(action), breaks,
              changeLines(action).map((line) => el("span", { class: "change", text: line })),
              impact.map((note) => el("span", { class: "impact", text: note })));
  });
  const given = gate.approvals || [];
  const needed = gate.min_approvals || 1;
  const progress = el("p", { class: "progress", text: `${given.length} of ${needed} approval${needed > 1 ? "s" : ""}`
    + (given.length ? ` (${given.map((a) => a.approver).join(", ")})` : "") });
  const required = (gate.required || []).map((r) => el("li", { text: r }));
  return el("article", { class: "card gate", "data-checkpoint": item.checkpoint },
    el("h2", {}, item.checkpoint, el("span", { class: `badge ${risk}`, text: risk.toUpperCase() })),
    el("p", { class: "meta", text: `plan ${shown.plan_fingerprint} · run ${shown.run_id} · requested by ${item.requester} · ${age(item.created_at)}` }),
    el("ul", { class: "actions" }, actions),
    progress,
    required.length ? el("ul", { class: "required meta" }, required) : null,
    decideForm(item, shown, risk));
}

// what an action changes, a setting a line (before -> after; secrets come redacted)
function changeLines(action) {
  const shown = (value) => (typeof value === "string" ? value : JSON.stringify(value));
  return [...Object.entries(action.details?.changes || {}), ...Object.entries(action.details?.settings || {})]
    .map(([key, value]) => `${key}: ${shown(value)}`);
}

function describe(action) {
  const details = Object.entries(action.details || {})
    .filter(([key]) => !["breaks", "changes", "settings"].includes(key))
    .map(([key, value]) => `${key}=${typeof value === "object" ? JSON.stringify(value) : value}`);
  return `${action.kind} ${action.resource}${action.name ? " " + action.name : ""}`
    + (details.length ? ` (${details.join(", ")})` : "");
}

function decideForm(item, shown, risk) {
  const reason = el("input", { type: "text", class: "reason", placeholder: "reason", "aria-label": "reason" });
  const expected = risk === "breaking" ? `${item.checkpoint} breaking` : item.checkpoint;
  const confirm = risk === "approval" ? null
    : el("input", { type: "text", class: "confirm", placeholder: `type ${expected} to approve`,
                    "aria-label": `type ${expected} to approve` });
  const message = el("span", { class: "result", role: "status" });
  const selfBlocked = me.forbid_self_approval && me.auth_enabled && item.requester === me.principal
    && item.destructive;
  const mayDecide = can("approver") && !selfBlocked;
  const approve = el("button", { type: "button", class: "approve", disabled: true, text: "Approve" });
  const reject = el("button", { type: "button", class: "reject", disabled: !mayDecide, text: "Reject" });
  const armed = () => mayDecide && (!confirm || confirm.value.trim() === expected);
  approve.disabled = !armed();
  confirm?.addEventListener("input", () => { approve.disabled = !armed(); });
  const decide = async (decision) => {
    approve.disabled = reject.disabled = true;
    try {
      const record = await api(`/api/v1/approvals/${encodeURIComponent(item.checkpoint)}`, {
        method: "POST",
        body: JSON.stringify({
          decision, reason: reason.value || null,
          run_id: shown.run_id, plan_fingerprint: shown.plan_fingerprint,
          acknowledge_risks: decision === "approve" && risk !== "approval",
          acknowledge_breaking: decision === "approve" && risk === "breaking",
        }),
      });
      message.textContent = `${record.decision} by ${record.approver}`;
      setTimeout(route, 800);
    } catch (error) {
      message.textContent = error.message;
      message.className = "result error";
      reject.disabled = !mayDecide;
      approve.disabled = !armed();
    }
  };
  approve.addEventListener("click", () => decide("approve"));
  reject.addEventListener("click", () => decide("reject"));
  const why = !can("approver") ? "viewers cannot decide"
    : selfBlocked ? "you requested this run: another approver must decide" : "";
  return el("div", { class: "decide" }, reason, confirm, approve, reject,
            why ? el("span", { class: "meta why", text: why }) : null, message);
}

// -- runs ---------------------------------------------------------------------------------------
async function runs() {
  const live = current();
  const list = (await api("/api/v1/deployments?limit=50")).deployments;
  const rows = list.map((run) => el("tr", {},
    el("td", {}, el("a", { href: `#/runs/${run.id}`, text: run.id })),
    el("td", { text: run.mode }),
    el("td", { class: `status-${run.status}`, text: run.status }),
    el("td", { text: run.requester }),
    el("td", { text: when(run.created_at) }),
    el("td", { class: "error", text: run.error || "" })));
  if (!live()) return;
  view(el("h1", { text: "Runs" }),
       el("table", { id: "runs" }, el("tr", {}, ["run", "mode", "status", "requester", "started", "error"].map((h) => el("th", { text: h }))), rows));
}

async function runDetail(runId) {
  const timeline = el("table", { id: "timeline" });
  const status = el("p", { id: "run-status" });
  const log = el("div", { id: "events" });
  view(el("h1", { text: `Run ${runId}` }), status, timeline, el("h2", { text: "Events" }), log);
  const refresh = async () => {
    const run = await api(`/api/v1/deployments/${encodeURIComponent(runId)}`);
    fill(status, el("span", { class: `status-${run.status}`, text: run.status }),
                           ` · ${run.mode} · by ${run.requester}`, run.error ? el("span", { class: "error", text: ` · ${run.error}` }) : null);
    fill(timeline, el("tr", {}, ["checkpoint", "status", "took", "error"].map((h) => el("th", { text: h }))),
      run.checkpoints.map((c) => el("tr", { "data-checkpoint": c.checkpoint },
        el("td", { text: c.checkpoint }),
        el("td", { class: `status-${c.status}`, text: c.status }),
        el("td", { text: c.duration != null ? `${c.duration.toFixed(2)} s` : "" }),
        el("td", { class: "error", text: c.error || "" }))));
  };
  const live = current();
  await refresh();
  if (!live()) return;
  stopStream = follow(runId, (event) => {
    log.append(el("div", { text: `${event.kind || event.event}: ${event.message || JSON.stringify(event)}` }));
    log.scrollTop = log.scrollHeight;
    refresh().catch(() => {});
  });
}

// Server-Sent Events through fetch (EventSource cannot send a bearer token), reconnecting
// with Last-Event-ID until the server says the run has ended.
function follow(runId, onEvent) {
  const controller = new AbortController();
  let lastId = null;
  let ended = false;
  const run = async () => {
    while (!ended && !controller.signal.aborted) {
      try {
        const response = await fetch(`/api/v1/deployments/${encodeURIComponent(runId)}/events`, {
          headers: headers(lastId ? { "Last-Event-ID": lastId } : {}), signal: controller.signal,
        });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const fields = {};
            for (const line of block.split("\n")) {
              const at = line.indexOf(":");
              if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1).trimStart();
            }
            if (fields.id) lastId = fields.id;
            if (fields.event === "end") { ended = true; onEvent({ kind: "end", message: fields.data }); }
            else if (fields.data) onEvent({ kind: fields.event, ...JSON.parse(fields.data) });
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      if (!ended) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  run();
  return () => controller.abort();
}

// -- cluster --------------------------------------------------------------------------------------
function resources(all = {}) {
  return Object.entries(all).filter(([key]) => !key.startsWith("node:"))
    .map(([key, value]) => key.includes("memory") ? `${key} ${(value / 2 ** 30).toFixed(1)} GiB`
                                                   : `${key} ${Math.round(value * 100) / 100}`)
    .join(", ");
}

async function cluster() {
  const live = current();
  const [nodes, apps] = await Promise.all([api("/api/v1/resources/nodes"), api("/api/v1/applications")]);
  const nodeRows = nodes.nodes.map((n) => el("tr", {},
    el("td", { text: n.platform_app_name || n.node_name || "" }),
    el("td", { text: n.node_type }),
    el("td", { text: n.node_ip || "" }),
    el("td", { class: `status-${n.alive ? "ALIVE" : "DEAD"}`, text: n.alive ? "ALIVE" : "not alive" }),
    el("td", { text: n.platform_status || "" }),
    el("td", { text: resources(n.resources) })));
  const details = await Promise.all((apps.applications || []).map((app) =>
    api(`/api/v1/applications/${encodeURIComponent(app.name)}`).catch(() => ({}))));
  const appCards = (apps.applications || []).map((app, i) => el("div", { class: "card app" },
    el("h2", {}, app.name, el("span", { class: `badge status-${app.status}`, text: app.status })),
    el("p", { class: "meta", text: `route ${app.route_prefix || "-"} · ${app.num_replicas} replica(s)`
      + (app.message ? ` · ${app.message}` : "") }),
    el("ul", { class: "replicas" }, (details[i].deployments || []).flatMap((d) =>
      (d.replicas || []).map((r) => el("li", { class: `replica status-${r.state}`,
        text: `${d.name} ${r.replica_id || ""}: ${r.state || ""}${r.node_ip ? " on " + r.node_ip : ""}` }))))));
  if (!live()) return;
  view(el("h1", { text: "Cluster" }),
       el("p", { class: "meta", text: `${nodes.alive_nodes} of ${nodes.total_nodes} nodes alive` }),
       el("table", { id: "nodes" }, el("tr", {}, ["node", "type", "address", "Ray", "platform", "resources"].map((h) => el("th", { text: h }))), nodeRows),
       el("h1", { text: "Serve applications" }),
       appCards.length ? appCards : el("p", { class: "meta", text: "No application runs." }));
}

// -- audit ------------------------------------------------------------------------------------------
async function audit() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const inputs = ["action", "principal", "run_id"].map((name) =>
    el("input", { name, placeholder: name, value: params.get(name) || "", "aria-label": name }));
  const apply = el("button", { type: "button", text: "Filter", onclick: () => {
    const query = new URLSearchParams();
    for (const input of inputs) if (input.value.trim()) query.set(input.name, input.value.trim());
    location.hash = `#/audit?${query}`;
  } });
  const query = new URLSearchParams({ limit: "200" });
  for (const [key, value] of params) if (value) query.set(key, value);
  const live = current();
  const events = (await api(`/api/v1/audit?${query}`)).events.slice(-200).reverse();
  const rows = events.map((e) => el("tr", {},
    el("td", { text: when(e.created_at) }),
    el("td", { text: e.principal + (e.claimed_name ? ` (${e.claimed_name})` : "") }),
    el("td", { text: e.source }),
    el("td", { text: e.action }),
    el("td", { text: e.target }),
    el("td", { class: e.result === "ok" ? "" : "error", text: e.result })));
  if (!live()) return;
  view(el("h1", { text: "Audit trail" }), el("div", { class: "filters" }, inputs, apply),
       el("table", { id: "audit" }, el("tr", {}, ["when", "who", "source", "action", "target", "result"].map((h) => el("th", { text: h }))), rows));
}

// -- routing and sign-in ----------------------------------------------------------------------------
const ROUTES = { inbox, runs, cluster, audit };

async function route() {
  generation += 1;
  const live = current();
  if (stopStream) { stopStream(); stopStream = null; }
  const [path] = (location.hash.replace(/^#\//, "") || "inbox").split("?");
  const [page, id] = path.split("/");
  for (const link of document.querySelectorAll("header nav a")) {
    link.classList.toggle("active", link.id === `nav-${page}`);
  }
  try {
    if (!me) await signIn();
    if (page === "runs" && id) await runDetail(decodeURIComponent(id));
    else await (ROUTES[page] || inbox)();
  } catch (error) {
    if (error.status === 401) { showLogin(); return; }
    if (live()) view(failure(error));
  }
}

async function signIn() {
  me = await api("/api/v1/whoami");
  document.getElementById("login").hidden = true;
  document.getElementById("who").textContent = `${me.principal} (${me.roles.join(", ")})`;
  document.getElementById("signout").hidden = !me.auth_enabled;
}

function showLogin(message = "") {
  me = null;
  document.getElementById("view").replaceChildren();
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message;
  document.getElementById("who").textContent = "";
}

document.getElementById("signin").addEventListener("click", async () => {
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  try { await signIn(); route(); } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(error.status === 401 ? "That token was not accepted." : error.message);
  }
});
document.getElementById("signout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin();
});
window.addEventListener("hashchange", route);
route();
