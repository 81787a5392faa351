/** The console's page script (plain ES2017 and the DOM; talks only to its own `api/`). No backticks or "${" inside: it is a raw template. */
export const CONSOLE_SCRIPT = String.raw`// The Patchbay console's page script: plain DOM, no framework, no network beyond its own API.
"use strict";
(function () {
  var config = { readOnly: true, tokenRequired: false, pipelines: [] };
  var main = document.getElementById("main");
  var statusBox = document.getElementById("status");
  var refreshTimer = null;

  // ---- helpers -------------------------------------------------------------------------------
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === undefined || v === null || v === false) return;
        if (k === "onclick" || k === "onsubmit" || k === "onchange") el.addEventListener(k.slice(2), v);
        else if (k === "text") el.textContent = v;
        else el.setAttribute(k, v === true ? "" : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, child) {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) child.forEach(function (c) { add(el, c); });
    else el.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
  function when(ms) { return ms ? new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : ""; }
  function json(v) { return v === undefined ? "" : JSON.stringify(v, null, 2); }
  function token() { return sessionStorage.getItem("patchbay-console-token") || ""; }
  function say(text, bad) {
    statusBox.textContent = "";
    statusBox.appendChild(h("span", { class: bad ? "err" : "ok", text: text }));
  }
  function route() {
    var hash = location.hash.replace(/^#/, "") || "/";
    var q = hash.indexOf("?");
    return { path: q < 0 ? hash : hash.slice(0, q), params: new URLSearchParams(q < 0 ? "" : hash.slice(q + 1)) };
  }
  function go(path, params) {
    var qs = params ? params.toString() : "";
    location.hash = "#" + path + (qs ? "?" + qs : "");
  }
  function api(path, body) {
    var headers = { accept: "application/json" };
    if (token()) headers.authorization = "Bearer " + token();
    var init = { headers: headers, credentials: "same-origin" };
    if (body !== undefined) {
      init.method = "POST";
      headers["content-type"] = "application/json";
      headers["x-patchbay-console"] = "1";
      init.body = JSON.stringify(body);
    }
    return fetch("api/" + path, init).then(function (res) {
      return res.json().then(function (data) {
        if (!res.ok) {
          var e = new Error((data && data.message) || res.statusText);
          e.code = data && data.code;
          throw e;
        }
        return data;
      });
    });
  }
  function fail(e) { say((e.code ? e.code + ": " : "") + e.message, true); }
  function table(caption, headers, rows) {
    return h("div", { class: "table-wrap" },
      h("table", null,
        h("caption", { class: "skip-cap", text: caption }),
        h("thead", null, h("tr", null, headers.map(function (x) { return h("th", { scope: "col", text: x }); }))),
        h("tbody", null, rows.length ? rows : h("tr", null, h("td", { colspan: headers.length, text: "Nothing here." })))));
  }
  function st(s) { return h("span", { class: "st-" + s, text: s }); }
  function button(label, fn, cls) {
    return h("button", { type: "button", class: "act " + (cls || ""), onclick: fn }, label);
  }
  function filterForm(fields, params, path) {
    var form = h("form", { class: "filters", role: "search", onsubmit: function (ev) {
      ev.preventDefault();
      var next = new URLSearchParams();
      fields.forEach(function (f) {
        var v = form.elements[f.name].value.trim();
        if (v && f.type === "datetime-local") v = new Date(v).toISOString();
        if (v) next.set(f.name, v);
      });
      go(path, next);
    } });
    fields.forEach(function (f) {
      var value = params.get(f.name) || "";
      var input;
      if (f.options) {
        input = h("select", { name: f.name, id: "f-" + f.name },
          f.options.map(function (o) { return h("option", { value: o, selected: o === value, text: o || "(any)" }); }));
      } else {
        if (value && f.type === "datetime-local") {
          var d = new Date(value);
          value = new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
        }
        input = h("input", { name: f.name, id: "f-" + f.name, type: f.type || "text", value: value });
      }
      form.appendChild(h("label", { for: "f-" + f.name }, f.label, input));
    });
    form.appendChild(h("button", { type: "submit", class: "primary" }, "Filter"));
    form.appendChild(h("button", { type: "button", onclick: function () { go(path); } }, "Clear"));
    return form;
  }
  function describe(params, keys) {
    var parts = keys.filter(function (k) { return params.get(k); }).map(function (k) { return k + "=" + params.get(k); });
    return parts.length ? parts.join(", ") : "no filter (every one)";
  }
  function pickFilter(params, keys) {
    var f = {};
    keys.forEach(function (k) { if (params.get(k)) f[k] = params.get(k); });
    return f;
  }

  // ---- screens -------------------------------------------------------------------------------
  function overview() {
    return api("overview").then(function (o) {
      var store = o.health.store;
      var sagas = o.totals.sagas;
      return [
        h("h1", null, "Overview"),
        h("h2", null, "Health"),
        h("dl", { class: "kv" },
          h("dt", null, "Store"),
          h("dd", null, h("span", { class: store.ok ? "st-succeeded" : "st-failed", text: store.ok ? "ok" : "failing" }), " ",
            store.dialect + " " + store.location + " · schema " + store.schemaVersion + "/" + store.knownSchemaVersion +
            " · " + store.latencyMs + " ms" + (store.error ? " · " + store.error : ""))),
        o.breakers.length ? [h("h2", null, "Circuit breakers"),
          table("Circuit breakers", ["Name", "State", "Since (UTC)"], o.breakers.map(function (b) {
            return h("tr", null, h("td", null, b.name), h("td", null, h("span", { class: b.state === "closed" ? "st-succeeded" : "st-failed", text: b.state })),
              h("td", null, when(b.updatedAt)));
          }))] : null,
        h("h2", null, "Needs a human"),
        o.attention.length === 0
          ? h("p", { id: "attention" }, "Nothing: no dead letters, no failed sagas, no disabled endpoints, no failing pipelines.")
          : h("ul", { id: "attention" }, o.attention.map(function (a) {
            return h("li", null, h("a", { href: a.link }, a.count + " " + a.what));
          })),
        h("h2", null, "Totals"),
        h("div", { class: "cards" },
          card("Dead letters", o.totals.deadLetters),
          card("Sagas running", sagas.running + sagas.compensating),
          card("Sagas failed", sagas.failed),
          card("Sagas completed", sagas.completed),
          card("Sagas compensated", sagas.compensated),
          card("Sagas resolved", sagas.resolved),
          card("Webhook endpoints", o.totals.webhookEndpoints + " (" + o.totals.webhookEndpointsDisabled + " disabled)"),
          card("Pipelines with runs", o.totals.pipelines)),
      ];
    });
  }
  function card(label, n) { return h("div", { class: "card" }, h("div", { class: "n", text: String(n) }), label); }

  var DLQ_KEYS = ["group", "type", "code", "since", "until"];
  function deadLetters(params) {
    var offset = Number(params.get("offset") || 0);
    var limit = 50;
    var cursor = params.get("cursor");
    var q = new URLSearchParams(pickFilter(params, DLQ_KEYS));
    // With a cursor (Next), offset is only the position shown; the server starts after it.
    q.set("offset", cursor ? "0" : String(offset));
    if (cursor) q.set("cursor", cursor);
    q.set("limit", String(limit));
    return api("dead-letters?" + q.toString()).then(function (page) {
      var selected = [];
      var rows = page.items.map(function (l) {
        var box = h("input", { type: "checkbox", class: "act", "aria-label": "select " + l.messageId, onchange: function () {
          var key = { group: l.group, messageId: l.messageId };
          if (box.checked) selected.push(key);
          else selected = selected.filter(function (k) { return k.group !== l.group || k.messageId !== l.messageId; });
        } });
        var link = new URLSearchParams({ group: l.group, id: l.messageId });
        return h("tr", null, h("td", null, box), h("td", null, l.group),
          h("td", null, h("a", { href: "#/dead-letter?" + link.toString() }, l.messageId)),
          h("td", null, l.type), h("td", null, String(l.attempts)), h("td", null, when(l.lastFailedAt)),
          h("td", { class: "wrap" }, h("strong", null, l.errorCode || ""), " ", l.errorMessage || ""));
      });
      var filter = pickFilter(params, DLQ_KEYS);
      var all = Object.keys(filter).length === 0;
      function bulk(action) {
        return function () {
          var body = { filter: filter, all: all };
          api("dead-letters/" + action, Object.assign({ preview: true }, body)).then(function (p) {
            if (!confirm(action + " " + p.matched + " dead letter(s) matching " + describe(params, DLQ_KEYS) + "?")) return null;
            return api("dead-letters/" + action, body).then(function (r) {
              say(action + ": " + r.count + " of " + r.matched + " dead letter(s)");
              render();
            });
          }).catch(fail);
        };
      }
      function chosen(action) {
        return function () {
          if (selected.length === 0) return say("select letters first", true);
          if (!confirm(action + " " + selected.length + " selected dead letter(s)?")) return;
          api("dead-letters/" + action, { selection: selected }).then(function (r) {
            say(action + ": " + r.count + " of " + r.matched + " selected dead letter(s)");
            render();
          }).catch(fail);
        };
      }
      var prev = new URLSearchParams(params); prev.set("offset", String(Math.max(0, offset - limit))); prev.delete("cursor");
      var next = new URLSearchParams(params); next.set("offset", String(offset + limit));
      if (page.next) next.set("cursor", page.next);
      return [
        h("h1", null, "Dead letters"),
        filterForm([
          { name: "group", label: "Group" }, { name: "type", label: "Type" }, { name: "code", label: "Error code" },
          { name: "since", label: "Failed since", type: "datetime-local" },
          { name: "until", label: "Failed until", type: "datetime-local" },
        ], params, "/dead-letters"),
        h("div", { class: "actions" },
          button("Replay selected", chosen("replay")), button("Purge selected", chosen("purge"), "danger"),
          button("Replay all " + page.total + " matching", bulk("replay"), "primary"),
          button("Purge all " + page.total + " matching", bulk("purge"), "danger")),
        pager(page.total, offset, page.items.length, offset > 0 && "#/dead-letters?" + prev.toString(),
          offset + limit < page.total && "#/dead-letters?" + next.toString()),
        table("Dead letters", ["", "Group", "Message id", "Type", "Attempts", "Last failed (UTC)", "Error"], rows),
      ];
    });
  }
  function pager(total, offset, shown, prevHref, nextHref) {
    return h("div", { class: "pager" },
      h("span", { id: "range" }, total === 0 ? "0 matching" : (offset + 1) + "–" + (offset + shown) + " of " + total),
      prevHref ? h("a", { href: prevHref }, "‹ Previous") : null,
      nextHref ? h("a", { href: nextHref }, "Next ›") : null);
  }
  function deadLetter(params) {
    var group = params.get("group") || "";
    var id = params.get("id") || "";
    return api("dead-letter?" + new URLSearchParams({ group: group, id: id }).toString()).then(function (l) {
      function one(action) {
        return function () {
          if (!confirm(action + " dead letter " + id + "?")) return;
          api("dead-letters/" + action, { selection: [{ group: group, messageId: id }] }).then(function (r) {
            say(action + ": " + r.count + " dead letter(s)");
            go("/dead-letters", new URLSearchParams({ group: group }));
          }).catch(fail);
        };
      }
      var payload = l.event ? l.event.data : l.body;
      return [
        h("h1", null, "Dead letter " + id),
        h("p", null, h("a", { href: "#/dead-letters?group=" + encodeURIComponent(group) }, "‹ Dead letters of " + group)),
        h("div", { class: "actions" }, button("Replay", one("replay"), "primary"), button("Purge", one("purge"), "danger")),
        h("dl", { class: "kv" },
          h("dt", null, "Group"), h("dd", null, l.group), h("dt", null, "Type"), h("dd", null, l.type),
          h("dt", null, "Key"), h("dd", null, l.key || ""), h("dt", null, "Attempts"), h("dd", null, String(l.attempts)),
          h("dt", null, "First failed"), h("dd", null, when(l.firstFailedAt)),
          h("dt", null, "Last failed"), h("dd", null, when(l.lastFailedAt)),
          h("dt", null, "Transport"), h("dd", null, l.transport || "")),
        h("h2", null, "Error"), h("pre", { id: "letter-error" }, json(l.error)),
        h("h2", null, "Payload"), h("pre", null, typeof payload === "string" ? payload : json(payload)),
        h("h2", null, "Headers"), h("pre", null, json(l.headers)),
      ];
    });
  }

  var SAGA_KEYS = ["name", "status", "since"];
  var STATUSES = ["", "running", "completed", "compensating", "compensated", "failed", "resolved"];
  function sagas(params) {
    var q = new URLSearchParams(pickFilter(params, SAGA_KEYS));
    if (params.get("cursor")) q.set("cursor", params.get("cursor"));
    return api("sagas?" + q.toString()).then(function (page) {
      var filter = pickFilter(params, SAGA_KEYS);
      function bulk(action) {
        return function () {
          if (!filter.status) return say("choose a status first: a bulk action never sweeps every saga", true);
          var note = action === "retry" ? undefined : prompt("Note for the record (why):") || undefined;
          var body = { filter: filter, note: note };
          api("sagas/" + action, Object.assign({ preview: true }, body)).then(function (p) {
            if (!confirm(action + " " + p.matched + " saga(s) matching " + describe(params, SAGA_KEYS) + "?")) return null;
            return api("sagas/" + action, body).then(function (r) {
              say(action + ": acted on " + r.count + " of " + r.matched + " saga(s)" + (r.skipped ? ", skipped " + r.skipped : ""));
              render();
            });
          }).catch(fail);
        };
      }
      var rows = page.items.map(function (s) {
        var why = s.failure || s.reason;
        return h("tr", null, h("td", null, h("a", { href: "#/saga?id=" + encodeURIComponent(s.id) }, s.id)),
          h("td", null, s.name + " v" + s.version), h("td", null, st(s.status)),
          h("td", null, s.step < 0 ? "-" : String(s.step)), h("td", null, when(s.updatedAt)),
          h("td", { class: "wrap" }, why ? why.phase + " " + (why.step || "") + ": " + (why.error.code || why.error.name) + ": " + why.error.message : ""));
      });
      var next = new URLSearchParams(params);
      if (page.next) next.set("cursor", page.next);
      return [
        h("h1", null, "Sagas"),
        filterForm([
          { name: "name", label: "Saga name" }, { name: "status", label: "Status", options: STATUSES },
          { name: "since", label: "Updated since", type: "datetime-local" },
        ], params, "/sagas"),
        h("div", { class: "actions" },
          button("Retry all " + page.total + " matching", bulk("retry"), "primary"),
          button("Skip step of all matching", bulk("skip")), button("Resolve all matching", bulk("resolve"))),
        h("div", { class: "pager" }, h("span", { id: "range" }, page.total + " matching, newest first"),
          params.get("cursor") ? h("a", { href: "#/sagas?" + new URLSearchParams(filter).toString() }, "« Newest") : null,
          page.next ? h("a", { href: "#/sagas?" + next.toString() }, "Older ›") : null),
        table("Sagas", ["Id", "Saga", "Status", "Step", "Updated (UTC)", "Why"], rows),
      ];
    });
  }
  function saga(params) {
    var id = params.get("id") || "";
    return api("saga?id=" + encodeURIComponent(id)).then(function (s) {
      function act(action) {
        return function () {
          var body = { id: id };
          if (action !== "retry") {
            var note = prompt("Note for the record (why):");
            if (note === null) return;
            body.note = note;
          }
          api("sagas/" + action, body).then(function (r) {
            say(action + " " + id + ": now " + r.saga.status);
            render();
          }).catch(fail);
        };
      }
      var active = ["running", "compensating", "failed"].indexOf(s.status) >= 0;
      return [
        h("h1", null, "Saga " + id),
        h("p", null, h("a", { href: "#/sagas" }, "‹ Sagas")),
        active ? h("div", { class: "actions" }, button("Retry", act("retry"), "primary"), button("Skip step", act("skip")),
          button("Resolve", act("resolve"))) : null,
        h("dl", { class: "kv" },
          h("dt", null, "Saga"), h("dd", null, s.name + " v" + s.version),
          h("dt", null, "Status"), h("dd", { id: "saga-status" }, st(s.status)),
          h("dt", null, "Step"), h("dd", null, String(s.step) + ", attempt " + s.attempt),
          h("dt", null, "Created"), h("dd", null, when(s.createdAt)),
          h("dt", null, "Updated"), h("dd", null, when(s.updatedAt)),
          s.failure ? [h("dt", null, "Failure"), h("dd", null, s.failure.phase + " " + (s.failure.step || "") + ": " + s.failure.error.message)] : null,
          s.reason ? [h("dt", null, "Compensating because"), h("dd", null, (s.reason.step || "") + ": " + s.reason.error.message)] : null,
          s.note ? [h("dt", null, "Note"), h("dd", null, s.note)] : null),
        h("h2", null, "Input"), h("pre", null, json(s.input)),
        h("h2", null, "Timeline"),
        table("Steps and compensations", ["Started (UTC)", "Phase", "Step", "Status", "Attempts", "Result / error"],
          s.steps.map(function (x) {
            return h("tr", null, h("td", null, when(x.startedAt)), h("td", null, x.phase), h("td", null, x.name),
              h("td", null, st(x.status)), h("td", null, String(x.attempts)),
              h("td", { class: "wrap" }, x.error ? (x.error.code || x.error.name) + ": " + x.error.message
                : (x.note ? json(x.result) + " (" + x.note + ")" : json(x.result))));
          })),
      ];
    });
  }

  function pipelines() {
    return api("pipelines").then(function (p) {
      return [
        h("h1", null, "Pipelines"),
        h("h2", null, "Registered here"),
        table("Pipelines", ["Name", "Mode", "Schedule", "Running", "Checkpoint", ""], p.pipelines.map(function (x) {
          return h("tr", null, h("td", null, x.name), h("td", null, x.mode), h("td", null, x.schedule || ""),
            h("td", null, x.running ? "yes" : "no"), h("td", { class: "wrap" }, json(x.checkpoint)),
            h("td", null, button("Run now", pipelineAction("run", x.name), "primary"), " ",
              button("Reset checkpoint", pipelineAction("reset", x.name), "danger"), " ",
              h("a", { href: "#/quarantine?name=" + encodeURIComponent(x.name) }, "Quarantined rows")));
        })),
        h("h2", null, "Recent runs"),
        table("Runs", ["Pipeline", "Status", "Started (UTC)", "Duration", "Read", "Written", "Quarantined", "Error"],
          p.runs.map(function (r) {
            return h("tr", null, h("td", null, r.pipeline), h("td", null, st(r.status)), h("td", null, when(r.startedAt)),
              h("td", null, r.durationMs !== undefined ? r.durationMs + " ms" : r.status === "running" ? Math.round((Date.now() - r.startedAt) / 1000) + " s so far" : ""),
              h("td", null, String(r.rowsRead)),
              h("td", null, String(r.rowsWritten)), h("td", null, String(r.rowsQuarantined)),
              h("td", { class: "wrap" }, r.error ? (r.error.code || "") + " " + r.error.message : ""));
          })),
      ];
    });
  }
  function quarantine(params) {
    var name = params.get("name") || "";
    var q = new URLSearchParams({ name: name, limit: "50" });
    if (params.get("before")) q.set("before", params.get("before"));
    return api("pipelines/quarantine?" + q.toString()).then(function (r) {
      var next = new URLSearchParams({ name: name });
      if (r.next) next.set("before", r.next);
      return [
        h("h1", null, "Quarantined rows of " + name),
        h("p", null, h("a", { href: "#/pipelines" }, "‹ Pipelines")),
        r.readable ? null : h("p", null, "This pipeline's destination cannot list its quarantine here (a file destination keeps it in <file>.quarantine.ndjson)."),
        h("div", { class: "pager" }, h("span", { id: "range" }, r.items.length + " shown, newest first"),
          params.get("before") ? h("a", { href: "#/quarantine?name=" + encodeURIComponent(name) }, "« Newest") : null,
          r.next ? h("a", { href: "#/quarantine?" + next.toString() }, "Older ›") : null),
        table("Quarantined rows", ["Id", "At (UTC)", "Reason", "Error", "Row", "Run"], r.items.map(function (x) {
          return h("tr", null, h("td", null, x.id), h("td", null, when(x.at)), h("td", null, x.reason),
            h("td", { class: "wrap" }, (x.error.code ? x.error.code + ": " : "") + x.error.message),
            h("td", { class: "wrap" }, h("code", null, JSON.stringify(x.row))), h("td", null, x.runId));
        })),
      ];
    });
  }
  function pipelineAction(action, name) {
    return function () {
      if (action === "reset" && !confirm("Reset the checkpoint of " + name + "? The next run reads from the start.")) return;
      say(action + " " + name + "…");
      api("pipelines/" + action, { name: name }).then(function () { say(action + " " + name + ": done"); render(); }).catch(fail);
    };
  }

  function webhooks(params) {
    var endpoint = params.get("endpoint") || "";
    var dq = new URLSearchParams(pickFilter(params, ["endpoint", "status", "message"]));
    return Promise.all([api("webhooks"), api("webhooks/deliveries?" + dq.toString())]).then(function (r) {
      function endpointAction(action, id) {
        return function () {
          var body = { endpointId: id };
          if (action === "recover") {
            var since = prompt("Send the failed messages since (ISO time, e.g. " + new Date(Date.now() - 86400000).toISOString() + "):");
            if (!since) return;
            body.since = since;
          }
          api("webhooks/" + action, body).then(function (x) { say(action + " " + id + ": " + x.count); render(); }).catch(fail);
        };
      }
      return [
        h("h1", null, "Webhooks"),
        h("h2", null, "Endpoints"),
        table("Endpoints", ["Id", "URL", "Events", "State", "Failing since", "Last success", ""], r[0].endpoints.map(function (e) {
          return h("tr", null, h("td", null, h("a", { href: "#/webhooks?endpoint=" + encodeURIComponent(e.id) }, e.id)),
            h("td", { class: "wrap" }, e.url), h("td", null, e.events.join(", ")),
            h("td", null, st(e.status), e.disabledReason ? " (" + e.disabledReason + ")" : ""),
            h("td", null, when(e.failingSince)), h("td", null, when(e.lastSuccessAt)),
            h("td", null, e.status === "disabled" ? button("Enable", endpointAction("enable", e.id)) : button("Disable", endpointAction("disable", e.id), "danger"),
              " ", button("Recover failed", endpointAction("recover", e.id)),
              " ", button("Send test", sendTest(e.id)), " ", button("Rotate secret", rotateSecret(e.id), "danger")));
        })),
        h("h2", null, "Deliveries" + (endpoint ? " to " + endpoint : "")),
        filterForm([{ name: "endpoint", label: "Endpoint id" }, { name: "status", label: "Status", options: ["", "pending", "sending", "delivered", "failed"] },
          { name: "message", label: "Message id" }], params, "/webhooks"),
        table("Deliveries", ["Message", "Endpoint", "Status", "Attempts", "Updated", ""], r[1].items.map(function (d) {
          return h("tr", null, h("td", null, h("a", { href: "#/delivery?" + new URLSearchParams({ endpoint: d.endpointId, message: d.messageId }).toString() }, d.messageId)),
            h("td", null, d.endpointId), h("td", null, st(d.status)), h("td", null, String(d.attempts) + (d.lastStatus ? " (HTTP " + d.lastStatus + ")" : "")),
            h("td", null, when(d.updatedAt)),
            h("td", null, button("Replay", function () {
              api("webhooks/replay", { messageId: d.messageId, endpointId: d.endpointId }).then(function (x) { say("replayed to " + x.count + " endpoint(s)"); render(); }).catch(fail);
            })));
        })),
      ];
    });
  }
  function sendTest(id) {
    return function () {
      api("webhooks/test", { endpointId: id }).then(function (x) {
        say("test event " + x.messageId + " queued for " + id);
        go("/delivery", new URLSearchParams({ endpoint: id, message: x.messageId }));
      }).catch(fail);
    };
  }
  function rotateSecret(id) {
    return function () {
      var grace = prompt("Rotate the secret of " + id + ". How long the old secret keeps signing too (e.g. 24h, 0s):", "24h");
      if (grace === null) return;
      api("webhooks/rotate-secret", { endpointId: id, grace: grace.trim() || undefined }).then(function (x) {
        return render().then(function () {
          var box = h("div", { class: "secret", role: "alert", tabindex: "-1" },
            h("p", null, h("strong", null, "New secret of " + id + ": shown once, copy it now."),
              x.previousUntil ? " The old secret signs too until " + when(x.previousUntil) + "." : ""),
            h("pre", { id: "new-secret" }, x.secret));
          main.insertBefore(box, main.firstChild);
          box.focus();
        });
      }).catch(fail);
    };
  }
  function delivery(params) {
    var q = new URLSearchParams({ endpoint: params.get("endpoint") || "", message: params.get("message") || "" });
    return api("webhooks/attempts?" + q.toString()).then(function (r) {
      return [
        h("h1", null, "Attempts of " + params.get("message")),
        h("p", null, h("a", { href: "#/webhooks?endpoint=" + encodeURIComponent(params.get("endpoint") || "") }, "‹ Webhooks")),
        table("Attempts", ["#", "At (UTC)", "Outcome", "Status", "Duration", "Error / response"], r.items.map(function (a) {
          return h("tr", null, h("td", null, String(a.attempt)), h("td", null, when(a.at)),
            h("td", null, st(a.outcome || "")), h("td", null, a.status === undefined ? "" : String(a.status)),
            h("td", null, a.latencyMs === undefined ? "" : a.latencyMs + " ms"),
            h("td", { class: "wrap" }, a.error ? (a.error.code || "") + " " + a.error.message : (a.responseExcerpt || "")));
        })),
      ];
    });
  }

  function queueAction(action, group) {
    return function () {
      api("queues/" + action, { group: group }).then(function (x) { say(action + " " + group + (x.count ? ": done" : ": no change")); render(); }).catch(fail);
    };
  }
  function pauseCell(g) {
    return h("td", null, g.paused ? st("paused") : h("span", { class: "st-unpaused", text: "not paused" }), g.paused && g.pausedBy ? " by " + g.pausedBy : "",
      g.paused && g.pausedAt ? " since " + when(g.pausedAt) : "");
  }
  function pauseButton(g) {
    return h("td", null, g.paused ? button("Resume", queueAction("resume", g.group)) : button("Pause", queueAction("pause", g.group), "danger"));
  }
  function pauseForm() {
    var form = h("form", { class: "filters", onsubmit: function (ev) {
      ev.preventDefault();
      var group = form.elements.group.value.trim();
      if (group) queueAction("pause", group)();
    } });
    form.appendChild(h("label", { for: "f-pause-group" }, "Group", h("input", { name: "group", id: "f-pause-group", type: "text" })));
    form.appendChild(h("button", { type: "submit", class: "act danger" }, "Pause"));
    return form;
  }
  function inFlightCell(g) { return h("td", null, g.inFlight === undefined ? "–" : String(g.inFlight)); }
  function minuteCell(g) {
    var m = g.lastMinute;
    return h("td", null, m === undefined ? "–" : m.delivered + " delivered: " + m.acked + " done, " + m.retried + " retried, " + m.deadLettered + " dead-lettered");
  }
  function queues() {
    return api("queues").then(function (q) {
      var here = q.measured
        ? "In flight and Last minute count the deliveries of this process (the app serving this console); – when it has not delivered to the group."
        : "This console runs without the app's bus: deliveries in flight and per minute are shown where the app serves the console (pb.console()).";
      return [
        h("h1", null, "Queues"),
        h("p", null, q.inStore
          ? "Consumer groups of " + q.transport + ", read from the store. A paused group's messages wait in its queue; every process consuming it stops within a second."
          : "The bus runs on " + q.transport + ": its queues live in the broker; see the broker's own console. Paused groups, and the groups this process consumes, are listed here."),
        h("p", null, here),
        q.inStore ? table("Queues", ["Group", "Queued", "Parked", "Oldest (age)", "In flight", "Last minute", "State", ""], q.groups.map(function (g) {
          return h("tr", null, h("td", null, g.group), h("td", null, String(g.depth)), h("td", null, String(g.parked)),
            h("td", null, g.oldestAgeMs === null ? "–" : Math.round(g.oldestAgeMs / 1000) + " s"), inFlightCell(g), minuteCell(g),
            pauseCell(g), pauseButton(g));
        })) : table("Consumer groups", ["Group", "In flight", "Last minute", "State", ""], q.groups.map(function (g) {
          return h("tr", null, h("td", null, g.group), inFlightCell(g), minuteCell(g), pauseCell(g), pauseButton(g));
        })),
        q.inStore ? null : pauseForm(),
      ];
    });
  }

  function bytes(n) {
    if (n < 1024) return n + " B";
    var units = ["KiB", "MiB", "GiB", "TiB"];
    var i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
    return n.toFixed(1) + " " + units[i];
  }
  function cdc() {
    return api("cdc").then(function (r) {
      return [
        h("h1", null, "CDC slots"),
        r.dialect === "postgres"
          ? h("p", null, "Every logical replication slot of the store's database, whoever consumes it. A slot keeps WAL on the server's disk until its consumer confirms it: an inactive slot with a growing lag is one to drop (patchbay cdc drop) or restart.")
          : h("p", null, "Change data capture reads PostgreSQL's logical replication slots; this store is " + r.dialect + ", which has none."),
        table("Replication slots", ["Slot", "Active", "Lag (not confirmed)", "WAL retained", "WAL status"], r.slots.map(function (x) {
          return h("tr", null, h("td", null, x.slot), h("td", null, x.active ? st("active") : st("inactive")),
            h("td", null, bytes(x.lagBytes)), h("td", null, bytes(x.retainedBytes)), h("td", null, x.walStatus || ""));
        })),
      ];
    });
  }

  function breakers() {
    return api("breakers").then(function (r) {
      function reset(name) {
        return function () {
          if (!confirm("Reset circuit breaker " + name + "? It closes now and forgets its failure counts.")) return;
          api("breakers/reset", { name: name }).then(function (x) {
            say("reset " + name + ": " + x.before + " → " + x.state);
            render();
          }).catch(fail);
        };
      }
      return [
        h("h1", null, "Circuit breakers"),
        h("p", null, "Breakers given to this console show their live state and can be reset; breakers other processes save under breaker/<name> in the store are shown as saved."),
        table("Circuit breakers", ["Name", "State", "Saved (UTC)", "Half-open from (UTC)", ""], r.breakers.map(function (b) {
          return h("tr", null, h("td", null, b.name),
            h("td", null, h("span", { class: b.state === "closed" ? "st-succeeded" : "st-failed", text: b.state })),
            h("td", null, when(b.updatedAt)), h("td", null, b.state === "open" && b.detail ? when(b.detail.openUntil) : ""),
            h("td", null, b.resettable ? button("Reset", reset(b.name), "primary") : "another process's"));
        })),
      ];
    });
  }

  function audit(params) {
    var offset = Number(params.get("offset") || 0);
    return api("audit?limit=50&offset=" + offset).then(function (a) {
      return [
        h("h1", null, "Audit"),
        h("p", null, "Every action taken in this console: who, what, on which filter, how many, when."),
        pager(a.total, offset, a.items.length, offset > 0 && "#/audit?offset=" + Math.max(0, offset - 50),
          offset + 50 < a.total && "#/audit?offset=" + (offset + 50)),
        table("Audit", ["When (UTC)", "Who", "Action", "On", "How many", "Outcome"], a.items.map(function (x) {
          return h("tr", null, h("td", null, when(x.at)), h("td", null, x.actor), h("td", null, x.action),
            h("td", { class: "wrap" }, JSON.stringify(x.target)), h("td", null, String(x.count)), h("td", null, h("span", { class: x.outcome === "ok" ? "st-succeeded" : "st-failed", text: x.outcome })));
        })),
      ];
    });
  }

  // ---- shell ---------------------------------------------------------------------------------
  var screens = { "/": overview, "/dead-letters": deadLetters, "/dead-letter": deadLetter, "/sagas": sagas, "/saga": saga,
    "/pipelines": pipelines, "/webhooks": webhooks, "/delivery": delivery, "/queues": queues, "/audit": audit,
    "/breakers": breakers, "/quarantine": quarantine, "/cdc": cdc };
  var sections = { "/dead-letter": "/dead-letters", "/saga": "/sagas", "/delivery": "/webhooks", "/quarantine": "/pipelines" };

  function render() {
    var r = route();
    var screen = screens[r.path] || overview;
    var section = sections[r.path] || r.path;
    Array.prototype.forEach.call(document.querySelectorAll("#nav a"), function (a) {
      if (a.getAttribute("href") === "#" + section) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    return screen(r.params).then(function (nodes) {
      main.textContent = "";
      add(main, nodes);
      document.title = (main.querySelector("h1") || { textContent: "" }).textContent + " · Patchbay console";
    }).catch(function (e) {
      main.textContent = "";
      add(main, [h("h1", null, "Could not load"), h("p", { class: "err" }, (e.code ? e.code + ": " : "") + e.message)]);
    });
  }
  // Screens without a selection to lose: redrawn with the counts, unless something is being typed
  // into them; a focused link or button keeps the focus (the one at the same place after the redraw).
  var LIVE = { "/": true, "/queues": true, "/pipelines": true, "/breakers": true, "/cdc": true };
  var FOCUSABLE = "a[href], button, input, select, textarea";
  function counts() {
    return api("overview").then(function (o) {
      document.getElementById("badge-dlq").textContent = o.totals.deadLetters ? String(o.totals.deadLetters) : "";
      document.getElementById("badge-sagas").textContent = o.totals.sagas.failed ? String(o.totals.sagas.failed) : "";
      if (!LIVE[route().path]) return;
      var focused = document.activeElement;
      var inside = focused && focused !== main && main.contains(focused);
      if (inside && /^(INPUT|SELECT|TEXTAREA)$/.test(focused.tagName)) return;
      var at = inside ? Array.prototype.indexOf.call(main.querySelectorAll(FOCUSABLE), focused) : -1;
      return render().then(function () {
        var again = at >= 0 ? main.querySelectorAll(FOCUSABLE)[at] : null;
        if (again) again.focus();
      });
    }).catch(function () { /* the screen shows errors */ });
  }

  function start() {
    api("config").then(function (c) {
      config = c;
      document.body.classList.toggle("read-only", c.readOnly);
      var mode = document.getElementById("mode");
      if (c.readOnly) { mode.hidden = false; mode.textContent = "Read-only: this console shows everything and changes nothing."; }
      document.getElementById("token-form").hidden = !c.tokenRequired;
    }).catch(fail);
    window.onhashchange = function () { render().then(function () { main.focus(); }); };
    render();
    counts();
    if (refreshTimer) clearInterval(refreshTimer);
    refreshTimer = setInterval(counts, 5000);
  }
  document.getElementById("token-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    sessionStorage.setItem("patchbay-console-token", document.getElementById("token").value);
    say("token set for this tab");
    start();
  });
  start();
})();
`;
