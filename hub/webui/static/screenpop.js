// Screen-pop: on every page, a `call.ringing` event from the event stream (/api/v1/events) shows a
// popup with who is calling (the identification is inside the event: client / contact / lead,
// company, main manager, open deals, the last three interactions, open tasks — or an unknown
// number) and buttons to open the card, create a lead or a deal. Several ringing calls stack.
// A popup closes on `call.answered` by someone else, on `call.ring_ended` (this agent's phone no
// longer rings), on `call.ended`, on its × or on Escape.
// When the tab is hidden a browser notification is shown too (permission is asked only after
// the user clicks "notify me" in a popup, never on load).
// All user data goes through textContent: no innerHTML anywhere in this file.
"use strict";

(function () {
  const RU = document.documentElement.lang !== "en";
  // The texts come from the catalogues, rendered into the page (_script_texts.html).
  const TEXTS = JSON.parse((document.getElementById("script-texts") || {}).textContent || "{}");
  const T = TEXTS.popup || { kinds: {} };
  const ME = Number((document.currentScript && document.currentScript.dataset.user) || 0);
  const csrf = function () { return (document.querySelector("meta[name=csrf-token]") || {}).content || ""; };
  // call_key → {box, note}: a popup arrives before its call is written (call_id null), and
  // call.recorded brings the ids it lacked (the popup is drawn again in place)
  const popups = new Map();
  let stack = null;
  let lastFocus = null;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function money(value) {
    if (value === null || value === undefined || value === "") { return ""; }
    const n = Number(value);
    return isNaN(n) ? String(value) : n.toLocaleString(RU ? "ru-RU" : "en-GB", { maximumFractionDigits: 2 }) + " ₽";
  }

  function phone(number) {
    const ru = /^\+7(\d{3})(\d{3})(\d{2})(\d{2})$/.exec(number || "");
    return ru ? "+7 " + ru[1] + " " + ru[2] + "-" + ru[3] + "-" + ru[4] : (number || "");
  }

  function when(iso) {
    if (!iso) { return ""; }
    const d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleString(RU ? "ru-RU" : "en-GB",
      { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" });
  }

  function cardUrl(match) {
    if (!match) { return null; }
    if (match.type === "client") { return "/clients/" + match.id; }
    if (match.type === "contact" && match.client_id) { return "/clients/" + match.client_id; }
    if (match.type === "lead") { return "/leads/" + match.id; }
    return null;
  }

  function ensureStack() {
    if (stack && document.body.contains(stack)) { return stack; }
    stack = el("div", "screenpop-stack");
    stack.id = "screenpop";
    stack.setAttribute("aria-live", "assertive");
    document.body.appendChild(stack);
    return stack;
  }

  function section(title, items) {
    const wrap = el("div", "sp-section");
    wrap.appendChild(el("h3", "sp-h", title));
    const list = el("ul", "sp-list");
    items.forEach(function (item) { list.appendChild(item); });
    wrap.appendChild(list);
    return wrap;
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (!response.ok) {
          throw new Error((json.error && (json.error.message || json.error.code)) || String(response.status));
        }
        return json;
      });
    });
  }

  function close(callId) {
    const entry = popups.get(String(callId));
    if (!entry) { return; }
    popups.delete(String(callId));
    const hadFocus = entry.box.contains(document.activeElement);
    entry.box.remove();
    if (entry.note) { try { entry.note.close(); } catch (e) { /* already gone */ } }
    if (hadFocus) {
      const next = stack && stack.querySelector(".screenpop button");
      if (next) { next.focus(); } else if (lastFocus && document.body.contains(lastFocus)) { lastFocus.focus(); }
    }
  }

  function notify(data, title, name) {
    if (!("Notification" in window) || Notification.permission !== "granted" || !document.hidden) {
      return null;
    }
    try {
      const note = new Notification(title, { body: name + (data.number ? " · " + phone(data.number) : ""),
        tag: "call-" + (data.call_key || data.call_id) });
      note.onclick = function () { window.focus(); note.close(); };
      return note;
    } catch (e) {
      return null;
    }
  }

  function keyOf(data) {
    const key = data && (data.call_key || data.call_id);
    return key === undefined || key === null || key === "" ? null : String(key);
  }

  function show(data, inPlace) {
    const id = keyOf(data);
    if (id === null) { return; }
    const previous = popups.get(id);
    if (previous && !inPlace) { close(id); }
    const recorded = data.call_id !== undefined && data.call_id !== null;
    const matches = Array.isArray(data.matches) ? data.matches : [];
    const match = matches[0] || null;
    const title = data.direction === "outbound" ? T.outgoing : data.direction === "internal" ? T.internal : T.incoming;
    // no match: the name the PBX gave the caller, else «Скрытый номер» or «Неизвестный номер»
    const name = match ? (match.name || data.number || "")
      : data.caller_name || (data.hidden_number ? T.hidden : T.unknown);

    const box = el("section", "screenpop");
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", title + ": " + name);
    box.dataset.callKey = id;
    box.dataset.callId = recorded ? String(data.call_id) : "";
    box.tabIndex = -1;

    const head = el("header", "sp-head");
    head.appendChild(el("span", "sp-title", "☎ " + title));
    const x = el("button", "sp-close ghost small", "×");
    x.type = "button";
    x.setAttribute("aria-label", T.close);
    x.addEventListener("click", function () { close(id); });
    head.appendChild(x);
    box.appendChild(head);

    const who = el("p", "sp-name");
    const url = cardUrl(match);
    if (url) {
      const a = el("a", null, name);
      a.href = url;
      who.appendChild(a);
    } else {
      who.textContent = name;
    }
    if (match) {
      const kind = { client: T.client, contact: T.contact, lead: T.leadKind, user: T.user }[match.type];
      if (kind) { who.appendChild(el("span", "sp-kind", kind)); }
    }
    box.appendChild(who);
    if (data.number) { box.appendChild(el("p", "sp-number", phone(data.number))); }

    if (match) {
      const facts = el("dl", "sp-facts");
      if (match.company && match.company.name) {
        facts.appendChild(el("dt", null, T.company));
        facts.appendChild(el("dd", null, match.company.name));
      }
      if (match.manager && match.manager.name) {
        facts.appendChild(el("dt", null, T.manager));
        facts.appendChild(el("dd", null, match.manager.name));
      }
      if (facts.childNodes.length) { box.appendChild(facts); }
      const deals = (match.open_deals || []).map(function (d) {
        const li = el("li");
        const a = el("a", null, d.title || ("#" + d.id));
        a.href = "/deals/" + d.id;
        li.appendChild(a);
        const stage = d.stage && typeof d.stage === "object" ? d.stage.name : d.stage;
        li.appendChild(el("span", "sp-meta", [stage, money(d.amount)].filter(Boolean).join(" · ")));
        return li;
      });
      if (deals.length) { box.appendChild(section(T.deals, deals)); }
      const last = (match.last_interactions || []).slice(0, 3).map(function (i) {
        const li = el("li");
        li.appendChild(el("span", "sp-meta", [when(i.occurred_at), T.kinds[i.kind] || i.kind].filter(Boolean).join(" · ")));
        if (i.text) { li.appendChild(el("span", "sp-text", i.text)); }
        return li;
      });
      if (last.length) { box.appendChild(section(T.last, last)); }
      const tasks = (match.open_tasks || []).map(function (t) {
        const li = el("li", t.overdue ? "sp-overdue" : null, t.subject);
        if (t.due_at) { li.appendChild(el("span", "sp-meta", when(t.due_at) + (t.overdue ? " · " + T.overdue : ""))); }
        return li;
      });
      if (tasks.length) { box.appendChild(section(T.tasks, tasks)); }
      if (matches.length > 1) { box.appendChild(el("p", "sp-more muted", T.more + (matches.length - 1))); }
    }

    const actions = el("div", "sp-actions");
    const status = el("p", "sp-status");
    status.setAttribute("role", "status");
    if (url) {
      const open = el("a", "button primary small", T.open);
      open.href = url;
      actions.appendChild(open);
    }
    if (!match || match.type === "user") {
      if (data.lead_created) {
        const lead = el("a", "button small", T.open);
        lead.href = "/leads/" + data.lead_created;
        actions.appendChild(lead);
      } else if (!recorded && data.unknown_caller === "auto" && !data.ignored) {
        // the lead for this caller is being made: its link comes with call.recorded
      } else if (data.direction !== "internal" && !data.hidden_number) {
        const make = el("button", "small", T.lead);
        make.type = "button";
        make.addEventListener("click", function () {
          make.disabled = true;
          const callId = box.dataset.callId;
          if (!callId) { make.disabled = false; return; } // not written yet: a moment later
          post("/api/v1/calls/" + encodeURIComponent(callId) + "/lead", {}).then(function (json) {
            const lead = json.lead || {};
            status.textContent = T.leadMade;
            const go = el("a", "button primary small", T.open);
            go.href = "/leads/" + lead.id;
            make.replaceWith(go);
            go.focus();
          }).catch(function (err) {
            make.disabled = false;
            status.textContent = T.failed + err.message;
          });
        });
        actions.appendChild(make);
      }
    }
    if (match && (match.type === "client" || match.type === "contact") && match.client_id) {
      const deal = el("a", "button small", T.deal);
      deal.href = "/deals/new?client=" + encodeURIComponent(match.client_id);
      actions.appendChild(deal);
    } else if (match && match.type === "lead") {
      const deal = el("a", "button small", T.deal);
      deal.href = "/deals/new?lead=" + encodeURIComponent(match.id);
      actions.appendChild(deal);
    }
    if ("Notification" in window && Notification.permission === "default"
        && !(stack && stack.querySelector(".sp-notify"))) {
      const ask = el("button", "ghost small sp-notify", T.notify);
      ask.type = "button";
      ask.addEventListener("click", function () {
        Notification.requestPermission().then(function () { ask.remove(); });
      });
      actions.appendChild(ask);
    }
    box.appendChild(actions);
    box.appendChild(status);

    if (previous && inPlace) {
      const hadFocus = previous.box.contains(document.activeElement);
      previous.box.replaceWith(box);
      popups.set(id, { box: box, note: previous.note });
      if (hadFocus) { box.focus(); }
      return;
    }
    if (!stack || !stack.querySelector(".screenpop")) { lastFocus = document.activeElement; }
    ensureStack().appendChild(box);
    popups.set(id, { box: box, note: notify(data, title, name) });
  }

  function parse(event) {
    try { return JSON.parse(event.data); } catch (e) { return null; }
  }

  function onRinging(event) { show(parse(event)); }
  // the popup's call is written now: its id, and a lead made for an unknown caller
  function onRecorded(event) {
    const data = parse(event);
    const id = keyOf(data);
    if (id !== null && popups.has(id)) { show(data, true); }
  }
  function onAnswered(event) {
    const data = parse(event);
    if (!data) { return; }
    const me = ME;
    const agent = data.agent && data.agent.id;
    if (!me || !agent || Number(agent) !== me) {
      close(keyOf(data));
    } else {
      const entry = popups.get(keyOf(data));
      if (entry) { entry.box.classList.add("sp-answered"); }
    }
  }
  function onEnded(event) {
    const data = parse(event);
    if (data) { close(keyOf(data)); }
  }
  // my phone stopped ringing while the call waits on (a queue moved on to a colleague)
  function onRingEnded(event) {
    const data = parse(event);
    if (data) { close(keyOf(data)); }
  }

  // After a reconnect the stream may say "resync" (what happened meanwhile is not replayed): a popup
  // whose call has ended since (or that the user may no longer read) closes.
  function recheck() {
    popups.forEach(function (entry, id) {
      const callId = entry.box.dataset.callId;
      // never written: its call.recorded was lost with the old stream (the hub restarted)
      if (!callId) { close(id); return; }
      fetch("/api/v1/calls/" + encodeURIComponent(callId), { credentials: "same-origin" }).then(function (r) {
        if (r.status === 404) { close(id); return null; }
        return r.ok ? r.json() : null;
      }).then(function (call) {
        if (call && call.ended_at) { close(id); }
      }).catch(function () { /* offline: keep it */ });
    });
  }

  const attached = typeof WeakSet === "function" ? new WeakSet() : null;
  function attach(source) {
    if (!source || (attached && attached.has(source))) { return; }
    if (attached) { attached.add(source); }
    source.addEventListener("call.ringing", onRinging);
    source.addEventListener("call.recorded", onRecorded);
    source.addEventListener("call.answered", onAnswered);
    source.addEventListener("call.ended", onEnded);
    source.addEventListener("call.ring_ended", onRingEnded);
    source.addEventListener("resync", recheck);
  }

  // htmx's SSE extension owns the page's one connection; it hands us its EventSource on open.
  document.addEventListener("htmx:sseOpen", function (event) {
    attach(event.detail && event.detail.source);
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.htmx && window.EventSource && document.body.hasAttribute("sse-connect")) {
      attach(new EventSource("/api/v1/events")); // no htmx: a connection of our own
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !stack) { return; }
    const inside = event.target && event.target.closest ? event.target.closest(".screenpop") : null;
    const box = inside || stack.querySelector(".screenpop:last-child");
    if (box && (inside || !document.querySelector("dialog[open], details[open]"))) {
      event.preventDefault();
      close(box.dataset.callKey);
    }
  });

  // Click-to-call: the "Позвонить" buttons next to phones (_call_button.html) are rendered off; they
  // are turned on when the hub has telephony. Errors are said next to the button.
  const CALL = TEXTS.call || {};
  // The page says whether the hub has telephony (base.html, from the configured channels): /healthz
  // names the channels only to an administrator.
  function canCall() {
    return document.body && document.body.dataset.telephony === "1";
  }

  function enableCallButtons(root) {
    const buttons = (root || document).querySelectorAll("button[data-call-number]");
    if (!buttons.length) { return; }
    if (!canCall()) { return; }
    buttons.forEach(function (button) {
      if (button.dataset.callReady) { return; }
      button.dataset.callReady = "1";
      button.disabled = false;
      button.title = CALL.ready;
      button.removeAttribute("aria-describedby");
    });
  }

  function callError(status, json) {
    const error = (json && json.error) || {};
    const fields = error.fields || {};
    if (fields.extension) { return CALL.noExtension; }
    if (fields.number) { return CALL.bad; }
    if (status === 503 || error.code === "telephony_unavailable") { return CALL.down; }
    if (status === 502 || error.code === "originate_failed") { return CALL.refused; }
    return CALL.failed + (error.message ? ": " + error.message : "");
  }

  document.addEventListener("click", function (event) {
    const button = event.target && event.target.closest ? event.target.closest("button[data-call-number]") : null;
    if (!button || button.disabled) { return; }
    const note = button.parentNode.querySelector(".call-error");
    button.disabled = true;
    fetch("/api/v1/calls/originate", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify({ number: button.dataset.callNumber }),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        return response.ok ? null : callError(response.status, json);
      });
    }, function () { return CALL.down; }).then(function (problem) {
      if (note) {
        note.textContent = problem || CALL.ringing;
        note.classList.toggle("call-bad", Boolean(problem));
        note.hidden = false;
      }
      window.setTimeout(function () { button.disabled = false; }, problem ? 0 : 3000);
    });
  });
  document.addEventListener("DOMContentLoaded", function () { enableCallButtons(document); });
  document.addEventListener("htmx:afterSettle", function () { enableCallButtons(document); });

  // For tests and the journal: the popups shown now.
  window.crmScreenPop = { show: show, close: close, open: function () { return Array.from(popups.keys()); } };
})();
