// The deals kanban (/deals): drag a card (SortableJS) or press its ⇄ button to move the deal; a
// dialog asks for the result of the last interaction, the next one and, for a lost stage, the
// reason; the move goes to POST /api/v1/deals/{id}/move. After a move and on every deal event
// from the stream, the changed card and the column totals are re-read from the server (the
// database is the truth). Server HTML is parsed with DOMParser, never assigned to innerHTML.
"use strict";

(function () {
  // After the event stream reconnects (the network dropped), what happened meanwhile may not be
  // replayed: the deal pages re-read what they show ("deals:resync"; the table's box listens too).
  let opened = 0;
  document.addEventListener("htmx:sseOpen", function () {
    opened += 1;
    if (opened > 1) {
      document.body.dispatchEvent(new CustomEvent("deals:resync"));
    }
  });

  const board = document.getElementById("board");
  const dialog = document.getElementById("move-dialog");
  if (!board || !dialog) {
    return;
  }
  // Each column fits in the window below where the board starts, whatever wraps above it.
  function fitColumns() {
    const top = board.getBoundingClientRect().top + window.scrollY;
    board.style.setProperty("--board-top", Math.ceil(top) + "px");
  }
  fitColumns();
  window.addEventListener("resize", fitColumns);
  const form = document.getElementById("move-form");
  const pipeline = board.dataset.pipeline;
  const query = board.dataset.query;
  const csrf = (document.querySelector("meta[name=csrf-token]") || {}).content || "";
  const status = document.getElementById("board-status");
  let pending = null; // {card, from, oldIndex} while the dialog is open
  let queue = Promise.resolve(); // refreshes run one after another, in the order they were asked
  function later(job) {
    queue = queue.then(job).catch(function () {});
    return queue;
  }
  const movedHere = new Set(); // deals this page moved: they stay in sight in their new column

  function msg(name) { return dialog.dataset["msg" + name.charAt(0).toUpperCase() + name.slice(1)] || ""; }

  function parse(html) {
    return new DOMParser().parseFromString(html, "text/html");
  }

  function paint(root) {
    root.querySelectorAll("[data-color]").forEach(function (el) {
      if (/^#[0-9a-fA-F]{3,8}$/.test(el.dataset.color)) {
        el.style.backgroundColor = el.dataset.color;
      }
    });
  }

  function nextAt(card) {
    const time = card.querySelector(".deal-next time");
    return time ? time.getAttribute("datetime") : "";
  }

  function keyOf(card) {
    const at = nextAt(card) ? Date.parse(nextAt(card)) : Infinity;
    return [isNaN(at) ? Infinity : at, Number(card.dataset.id)];
  }

  function before(a, b) {
    return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  }

  // Put a card where the column's order (nearest interaction first) wants it. A column that has
  // more cards to load keeps a card that sorts after its last loaded one for "load more" to bring —
  // unless the user just moved it there (`keep`): then it stays in sight at the end.
  function place(card, keep) {
    const list = document.getElementById("cards-" + card.dataset.stage);
    if (!list) {
      return false;
    }
    const key = keyOf(card);
    const cards = Array.prototype.filter.call(list.children, function (el) { return el !== card; });
    const next = cards.find(function (el) { return before(key, keyOf(el)); });
    const more = document.querySelector("#more-" + card.dataset.stage + " button");
    if (!next && more && cards.length && !keep) {
      card.remove();
      return false;
    }
    list.insertBefore(card, next || null);
    return true;
  }

  function url(path) {
    return path + (path.indexOf("?") < 0 ? "?" : "&") + query;
  }

  async function refreshTotals() {
    const response = await fetch(url("/deals/board/totals"), { credentials: "same-origin" });
    if (!response.ok) {
      return;
    }
    parse(await response.text()).querySelectorAll("li[data-stage]").forEach(function (item) {
      const column = document.getElementById("col-" + item.dataset.stage);
      if (!column) {
        return;
      }
      column.querySelector(".kcol-sum").textContent = item.dataset.sum;
      column.querySelector(".kcol-count").textContent = item.dataset.countText;
    });
  }

  // Re-read one card from the server and put it where it belongs (or take it away). Callers go
  // through `later` so that two refreshes of one card never interleave.
  async function refreshCard(id, keep) {
    const response = await fetch(url("/deals/board/card/" + encodeURIComponent(id)), { credentials: "same-origin" });
    const html = response.ok && response.status !== 204 ? await response.text() : null;
    if (html === null && response.status !== 204 && response.status !== 404) {
      return; // a passing failure: keep what is shown
    }
    document.querySelectorAll("#deal-" + CSS.escape(String(id))).forEach(function (old, i) {
      if (i > 0) { old.remove(); }
    });
    const old = document.getElementById("deal-" + id);
    const fresh = html === null ? null : parse(html).querySelector("li.deal-card");
    if (!fresh) {
      if (old) { old.remove(); }
      return;
    }
    const card = document.importNode(fresh, true);
    paint(card);
    const hadFocus = old && old.contains(document.activeElement);
    if (old) { old.remove(); }
    if (place(card, keep) && hadFocus) {
      card.querySelector("[data-move]").focus();
    }
  }

  async function refreshUnsorted() {
    const response = await fetch("/deals/board/unsorted", { credentials: "same-origin" });
    if (!response.ok) {
      return;
    }
    const doc = parse(await response.text());
    const list = document.getElementById("cards-unsorted");
    list.replaceChildren.apply(list, Array.prototype.map.call(
      doc.querySelectorAll("li.lead-card"), function (el) { return document.importNode(el, true); }));
    const count = doc.getElementById("unsorted-count");
    const shown = document.getElementById("unsorted-count");
    if (count && shown) { shown.textContent = count.textContent; }
    const more = doc.getElementById("more-unsorted");
    const mine = document.getElementById("more-unsorted");
    if (more && mine) {
      more.removeAttribute("hx-swap-oob");
      const node = document.importNode(more, true);
      mine.replaceWith(node);
      if (window.htmx) { window.htmx.process(node); }
    }
  }

  // --- the dialog -------------------------------------------------------------------------------

  function clearErrors() {
    form.querySelectorAll(".field-error, #err-form").forEach(function (el) { el.hidden = true; el.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
  }

  function showError(field, text) {
    const box = document.getElementById(field === "_form" ? "err-form" : "err-" + field);
    if (!box) {
      return showError("_form", text);
    }
    box.textContent = text;
    box.hidden = false;
    const input = field === "loss_reason"
      ? form.querySelector(form.elements.loss_reason.value === "other" ? "[name=loss_reason_text]" : "[name=loss_reason]")
      : form.querySelector("[name=" + field + "]");
    if (input) {
      input.setAttribute("aria-invalid", "true");
    }
    return input;
  }

  function kindOf(stageId) {
    const option = form.elements.stage_id.querySelector("option[value='" + stageId + "']");
    return option ? option.dataset.kind : "active";
  }

  function isClosed(kind) { return kind === "won" || kind === "lost"; }

  // forward: to a stage after the deal's own in the pipeline (won and lost come last)
  function forward() {
    const options = Array.from(form.elements.stage_id.options).map(function (o) { return o.value; });
    return options.indexOf(String(form.elements.stage_id.value)) > options.indexOf(String(form.dataset.from));
  }

  // a lost stage asks why; won and lost plan nothing next; a move forward needs the result
  function syncLoss() {
    const kind = kindOf(form.elements.stage_id.value);
    const lost = kind === "lost";
    form.querySelector(".move-loss").hidden = !lost;
    form.querySelector(".move-loss-text").hidden = !(lost && form.elements.loss_reason.value === "other");
    form.querySelector(".move-next").hidden = isClosed(kind);
    form.elements.result.required = forward();
  }

  // Times are typed and shown in the server's time zone (data-zone), as on the deal card and in
  // every page the server renders, whatever zone the browser is in.
  const ZONE = board.dataset.zone || undefined;

  function zoneOffset(instant) {
    const parts = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: ZONE, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(instant).forEach(function (p) { parts[p.type] = p.value; });
    const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
    return wall - Math.floor(instant.getTime() / 1000) * 1000;
  }

  function localInput(iso) {
    if (!iso) {
      return "";
    }
    const d = new Date(iso);
    if (isNaN(d.getTime())) {
      return "";
    }
    const wall = new Date(d.getTime() + zoneOffset(d));
    const pad = function (n) { return String(n).padStart(2, "0"); };
    return wall.getUTCFullYear() + "-" + pad(wall.getUTCMonth() + 1) + "-" + pad(wall.getUTCDate()) + "T" +
      pad(wall.getUTCHours()) + ":" + pad(wall.getUTCMinutes());
  }

  function fromLocalInput(value) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value);
    if (!m) {
      return value; // the server says what is wrong with it
    }
    const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    const first = wall - zoneOffset(new Date(wall));
    return new Date(wall - zoneOffset(new Date(first))).toISOString();
  }

  function open(card, stageId) {
    clearErrors();
    form.reset();
    form.dataset.deal = card.dataset.id;
    form.dataset.from = card.dataset.stage;
    const note = card.querySelector(".deal-note");
    document.getElementById("move-deal").textContent = card.querySelector(".deal-title").textContent;
    form.elements.stage_id.value = stageId;
    form.elements.next_interaction_at.value = localInput(nextAt(card));
    form.elements.next_interaction_note.value = card.dataset.note || (note ? note.textContent : "");
    syncLoss();
    dialog.showModal();
    const first = pending ? form.elements.result : form.elements.stage_id;
    first.focus();
  }

  function putBack() {
    if (!pending) {
      return;
    }
    const p = pending;
    pending = null;
    if (p.card.parentNode !== p.from) {
      p.from.insertBefore(p.card, p.from.children[p.oldIndex] || null);
    }
  }

  function body() {
    const data = {
      stage_id: Number(form.elements.stage_id.value),
      result: form.elements.result.value.trim(),
      next_interaction_note: form.elements.next_interaction_note.value.trim(),
    };
    const at = form.elements.next_interaction_at.value;
    if (at) {
      data.next_interaction_at = fromLocalInput(at);
    } else {
      data.next_interaction_at = null;
    }
    if (isClosed(kindOf(data.stage_id))) {
      data.next_interaction_at = null;
      data.next_interaction_note = "";
    }
    if (kindOf(data.stage_id) === "lost") {
      const reason = form.elements.loss_reason.value;
      if (reason === "other") {
        data.loss_reason = form.elements.loss_reason_text.value.trim() || null;
      } else {
        data.loss_reason = reason ? Number(reason) : null;
      }
    }
    return data;
  }

  const FIELD_MESSAGES = {
    loss_reason: "reason", next_interaction_at: "date", stage_id: "stage",
    result: "text", next_interaction_note: "text",
  };

  async function save(event) {
    event.preventDefault();
    clearErrors();
    const id = form.dataset.deal;
    const data = body();
    if (kindOf(data.stage_id) === "lost" && (data.loss_reason === null || data.loss_reason === undefined)) {
      showError("loss_reason", msg("reason")).focus();
      return;
    }
    if (forward() && !data.result) {
      showError("result", msg("result")).focus();
      return;
    }
    if (form.elements.next_interaction_at.validity.badInput) {
      showError("next_interaction_at", msg("date")).focus();
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    let response;
    try {
      response = await fetch("/api/v1/deals/" + encodeURIComponent(id) + "/move", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(data),
      });
    } catch (err) {
      showError("_form", msg("network"));
      return;
    } finally {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
    }
    if (response.ok) {
      pending = null;
      dialog.close("saved");
      status.textContent = msg("moved");
      movedHere.add(String(id));
      await later(async function () {
        await refreshCard(id, true);
        await refreshTotals();
      });
      return;
    }
    let fields = {};
    try {
      fields = ((await response.json()).error || {}).fields || {};
    } catch (err) {
      fields = {};
    }
    const names = Object.keys(fields);
    if (response.status === 422 && names.length) {
      let first = null;
      names.forEach(function (name) {
        const input = showError(name in FIELD_MESSAGES ? name : "_form", msg(FIELD_MESSAGES[name] || "field"));
        first = first || input;
      });
      if (first) { first.focus(); }
      return;
    }
    showError("_form", msg(response.status === 403 ? "forbidden" : response.status === 404 ? "gone" : "failed"));
  }

  form.addEventListener("submit", save);
  form.elements.stage_id.addEventListener("change", syncLoss);
  form.elements.loss_reason.addEventListener("change", syncLoss);
  form.querySelector("[data-cancel]").addEventListener("click", function () { dialog.close("cancel"); });
  dialog.addEventListener("close", function () {
    putBack();
    delete form.dataset.deal;
  });

  // The keyboard (and touch) way: each card's ⇄ button opens the dialog with a stage to choose.
  board.addEventListener("click", function (event) {
    const button = event.target.closest("[data-move]");
    if (!button) {
      return;
    }
    const card = button.closest(".deal-card");
    pending = null;
    open(card, card.dataset.stage);
  });

  // --- drag and drop ------------------------------------------------------------------------------

  if (window.Sortable) {
    board.querySelectorAll("ul.kcards[data-stage]").forEach(function (list) {
      window.Sortable.create(list, {
        group: "deals",
        sort: false,
        draggable: ".deal-card",
        filter: "button",
        preventOnFilter: false,
        forceFallback: true, // mouse and touch alike, no native drag image of the title link
        fallbackTolerance: 4, // a click on the title stays a click
        delay: 250, // on a touch screen a short swipe scrolls, a long press drags
        delayOnTouchOnly: true,
        animation: 120,
        ghostClass: "drag-ghost",
        chosenClass: "drag-chosen",
        onEnd: function (evt) {
          if (evt.from === evt.to) {
            return;
          }
          pending = { card: evt.item, from: evt.from, oldIndex: evt.oldIndex };
          open(evt.item, evt.to.dataset.stage);
        },
      });
    });
  }

  // --- live ---------------------------------------------------------------------------------------

  const live = document.getElementById("board-live");

  function onDeal(event) {
    let data = {};
    try {
      data = JSON.parse(event.detail.data).deal || {};
    } catch (err) {
      return;
    }
    if (!data.id) {
      return;
    }
    if (pending && String(data.id) === pending.card.dataset.id) {
      return; // the dialog for this card is open; the save re-reads it
    }
    const here = document.getElementById("deal-" + data.id);
    if (String(data.pipeline_id) !== String(pipeline) && !here) {
      return;
    }
    later(async function () {
      if (event.type === "sse:deal.deleted") {
        if (here) { here.remove(); }
      } else {
        await refreshCard(data.id, movedHere.has(String(data.id)));
      }
      await refreshTotals();
    });
  }

  function resync() {
    later(async function () {
      const cards = Array.prototype.map.call(board.querySelectorAll(".deal-card"), function (el) { return el.dataset.id; });
      for (const id of cards) {
        if (!pending || pending.card.dataset.id !== id) {
          await refreshCard(id, movedHere.has(id));
        }
      }
      await refreshTotals();
      await refreshUnsorted();
    });
  }

  if (live) {
    ["sse:deal.created", "sse:deal.updated", "sse:deal.deleted"].forEach(function (name) {
      live.addEventListener(name, onDeal);
    });
    ["sse:lead.created", "sse:lead.updated", "sse:lead.deleted"].forEach(function (name) {
      live.addEventListener(name, function () { later(refreshUnsorted); });
    });
    live.addEventListener("sse:resync", resync);
    document.body.addEventListener("deals:resync", resync);
  }

  // Cards that "load more" brings in may already be on the board (moved here live): keep one.
  document.body.addEventListener("htmx:afterSwap", function (event) {
    const target = event.detail.target;
    if (!target || !target.classList || !target.classList.contains("kcards")) {
      return;
    }
    const seen = {};
    Array.prototype.slice.call(board.querySelectorAll(".deal-card")).forEach(function (card) {
      if (seen[card.id]) {
        card.remove();
      } else {
        seen[card.id] = true;
      }
    });
  });

  // Filters apply as soon as they change (the button stays for keyboards and no-script use).
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
  });
})();
