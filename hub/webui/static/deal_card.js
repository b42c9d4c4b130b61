// The deal card and the timeline piece (also used by the client and lead cards):
// - live: the timeline box and the deal's main part refresh on the stream's events about *this*
//   deal / client / lead only (htmx:confirm cancels the others; no eval in hx-trigger);
// - the stage bar opens the move dialog (without JavaScript the links render it open);
// - Ctrl+Enter saves a note, Escape cancels a field's form, errors of refused requests are shown.
// User data is never put into innerHTML here: only textContent and attributes.
"use strict";

(function () {
  function parse(event) {
    try {
      return JSON.parse(event.detail.triggeringEvent.detail.data || "{}");
    } catch (e) {
      return null;
    }
  }

  function isFor(elt, event) {
    const trigger = event.detail.triggeringEvent;
    if (!trigger || typeof trigger.type !== "string" || trigger.type.indexOf("sse:") !== 0 || trigger.type === "sse:resync") {
      return true;
    }
    const data = parse(event);
    if (!data) {
      return false;
    }
    if (elt.classList.contains("tl-box")) {
      const entry = data.entry || {};
      const from = data.moved_from || {};  // a message moved to another deal leaves this one
      return String(entry[elt.dataset.tlTarget + "_id"]) === elt.dataset.tlId ||
        String(from[elt.dataset.tlTarget + "_id"]) === elt.dataset.tlId;
    }
    if (elt.id === "deal-main") {
      return Boolean(data.deal) && String(data.deal.id) === elt.dataset.dealId;
    }
    return true;
  }

  function busy(main) {
    const dialog = main.querySelector("dialog.move-dialog");
    return Boolean(main.querySelector(".df-form") || (dialog && dialog.open));
  }

  function openDialog(dialog) {
    if (!dialog) { return; }
    if (dialog.open) { dialog.close(); }
    if (typeof dialog.showModal === "function") { dialog.showModal(); } else { dialog.setAttribute("open", ""); }
    const first = dialog.querySelector("textarea, input:not([type=hidden]), select");
    if (first) { first.focus(); }
  }

  function openMarkedDialogs(root) {
    (root || document).querySelectorAll("dialog[data-open]").forEach(function (dialog) {
      dialog.removeAttribute("data-open");
      openDialog(dialog);
    });
  }

  function status(box, text) {
    const place = box && box.querySelector("[data-tl-status]");
    if (place) {
      place.textContent = text;
      place.classList.toggle("shown", Boolean(text));
    }
  }

  document.addEventListener("htmx:confirm", function (event) {
    const elt = event.detail.elt;
    if (!elt || !(elt.classList.contains("tl-box") || elt.id === "deal-main")) { return; }
    if (!isFor(elt, event)) {
      event.preventDefault();
      return;
    }
    if (elt.id === "deal-main" && busy(elt)) {  // someone is editing: refresh after they are done
      event.preventDefault();
      elt.dataset.stale = "true";
    } else if (elt.id === "deal-main" && refreshing) {
      // a refresh is on its way: one more once it has landed (a request queued behind it would be
      // dropped, its element being the one the refresh replaces)
      event.preventDefault();
      again = true;
    }
  });

  let refreshing = null;  // the #deal-main whose refresh is on its way
  let again = false;
  document.addEventListener("htmx:beforeRequest", function (event) {
    const elt = event.detail.elt;
    if (!elt || elt.id !== "deal-main" || !event.detail.xhr) { return; }
    refreshing = elt;
    event.detail.xhr.addEventListener("loadend", function () {
      if (refreshing === elt) { refreshing = null; }
      // not swapped (kept for an editing, or failed): it is still the live one; when it was
      // replaced, the new one takes triggers only once settled (see afterSettle)
      if (again && window.htmx && document.body.contains(elt)) {
        again = false;
        window.htmx.trigger(elt, "deal-refresh");
      }
    });
  });
  document.addEventListener("htmx:afterSettle", function () {
    const now = document.getElementById("deal-main");
    if (again && !refreshing && now && window.htmx) {
      again = false;
      window.htmx.trigger(now, "deal-refresh");
    }
  });

  document.addEventListener("click", function (event) {
    const link = event.target.closest && event.target.closest("a[data-move-stage]");
    if (link) {
      const main = link.closest("#deal-main");
      const dialog = main && main.querySelector("dialog.move-dialog");
      if (!dialog) { return; }
      event.preventDefault();
      const kind = link.dataset.moveKind;
      dialog.querySelector("[data-move-stage-input]").value = link.dataset.moveStage;
      dialog.querySelector("[data-move-stage-name]").textContent = link.dataset.moveName;
      dialog.querySelector("[data-move-loss]").hidden = kind !== "lost";
      dialog.querySelector("[data-move-next]").hidden = kind === "won" || kind === "lost";  // nothing next
      dialog.querySelector("textarea[name=result]").required = "moveForward" in link.dataset;
      dialog.querySelectorAll(".field-error").forEach(function (el) { el.remove(); });
      openDialog(dialog);
      return;
    }
    const cancel = event.target.closest && event.target.closest("[data-move-cancel]");
    if (cancel) {
      const dialog = cancel.closest("dialog");
      if (dialog && window.htmx) {
        event.preventDefault();
        dialog.close();
      }
    }
  });

  document.addEventListener("close", function (event) {
    const dialog = event.target;
    if (dialog && dialog.classList && dialog.classList.contains("move-dialog")) {
      const main = dialog.closest("#deal-main");
      if (main && main.dataset.stale === "true" && window.htmx) {
        delete main.dataset.stale;
        window.htmx.trigger(main, "deal-refresh");
      }
    }
  }, true);

  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.matches && target.matches("form[data-note-form] textarea")) {
      event.preventDefault();
      target.form.requestSubmit();
    } else if (event.key === "Escape" && target.closest && target.closest(".df-form")) {
      const cancel = target.closest(".df-form").querySelector("[data-cancel]");
      if (cancel) {
        event.preventDefault();
        cancel.click();
      }
    }
  });

  document.addEventListener("change", function (event) {
    const input = event.target;
    if (input.matches && input.matches(".tl-file input[type=file]")) {
      const label = input.closest(".tl-file").querySelector("span");
      if (!label.dataset.text) { label.dataset.text = label.textContent; }
      label.textContent = input.files.length ? input.files[0].name : label.dataset.text;
    }
  });

  document.addEventListener("note-added", function (event) {
    const form = event.target.closest ? event.target.closest("form") : null;
    if (form) {
      form.reset();
      const label = form.querySelector(".tl-file span");
      if (label && label.dataset.text) { label.textContent = label.dataset.text; }
      const text = form.querySelector("textarea");
      if (text) { text.focus(); }
    }
  });

  // A live refresh of the deal's main part keeps the keyboard focus where it was.
  let refocus = null;
  // A field's request on its way (its form opening, saving, closing) answers into the element it
  // came from: a live refresh swapped in meanwhile would leave that answer nowhere to go.
  document.addEventListener("htmx:beforeRequest", function (event) {
    const elt = event.detail.elt;
    const main = elt && elt.closest ? elt.closest("#deal-main") : null;
    if (!main || elt === main || !elt.closest(".df") || !event.detail.xhr) { return; }
    main.dataset.fieldPending = String((Number(main.dataset.fieldPending) || 0) + 1);
    event.detail.xhr.addEventListener("loadend", function () {
      const left = (Number(main.dataset.fieldPending) || 1) - 1;
      if (left > 0) { main.dataset.fieldPending = String(left); } else { delete main.dataset.fieldPending; }
    });
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    const target = event.detail.target;
    // a live refresh that arrives while a field is being edited (its form open, or a request of
    // it on its way) or the move dialog is open would wipe that: not now — after the editing
    const config = event.detail.requestConfig;
    if (target && target.id === "deal-main" && config && config.elt === target &&
        (busy(target) || target.dataset.fieldPending)) {
      event.detail.shouldSwap = false;
      target.dataset.stale = "true";
      return;
    }
    const active = document.activeElement;
    refocus = null;
    if (target && target.id === "deal-main" && active && target.contains(active)) {
      const holder = active.closest("[id]");
      const edit = active.classList.contains("df-edit");
      refocus = holder ? "#" + holder.id + (edit ? " .df-edit" : "") : null;
      if (active.id) { refocus = "#" + active.id; }
    }
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    const target = event.detail.target;
    // only the refresh that saved the focus gives it back (another swap settling in between, such as
    // a field's form opening, keeps its own focus)
    if (refocus && target && target.id === "deal-main") {
      const again = document.querySelector(refocus);
      refocus = null;
      if (again && typeof again.focus === "function") { again.focus(); }
      return;
    }
    // a field's form just opened: its first input has the focus, whatever settled around it
    const form = target && target.classList && target.classList.contains("df") ? target.querySelector("form") : null;
    const first = form ? form.querySelector("[autofocus]") : null;
    if (first && !form.contains(document.activeElement)) { first.focus(); }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    const elt = event.detail.elt;
    openMarkedDialogs(elt.parentNode || document);
    // A field's form closed: focus its edit button; apply a refresh that waited for the editing.
    const field = event.detail.target && event.detail.target.closest ? document.getElementById(event.detail.target.id) : null;
    if (field && field.classList.contains("df") && !field.querySelector("form")) {
      const edit = field.querySelector(".df-edit");
      if (edit) { edit.focus(); }
      const main = field.closest("#deal-main");
      if (main && main.dataset.stale === "true" && !busy(main) && window.htmx) {
        delete main.dataset.stale;
        window.htmx.trigger(main, "deal-refresh");
      }
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    const elt = event.detail.elt;
    if (elt.id === "deal-main" && event.detail.xhr && event.detail.xhr.status === 404) {
      const gone = document.querySelector("[data-deal-gone]");
      if (gone) { gone.hidden = false; }
      return;
    }
    const page = document.querySelector(".deal-page, [data-tl-messages]");
    const box = elt.closest(".tl") ? elt.closest(".tl").querySelector(".tl-box") : null;
    const messages = document.querySelector("[data-tl-messages]") || page;
    if (!messages) { return; }
    const xhr = event.detail.xhr;
    const text = xhr && xhr.status === 403 ? messages.dataset.msgForbidden
      : xhr && xhr.status === 413 ? messages.dataset.msgTooLarge : messages.dataset.msgError;
    if (box) {
      status(box, text || "");
    } else if (elt.closest(".df")) {
      const place = elt.closest(".df").querySelector(".df-value");
      const note = document.createElement("p");
      note.className = "field-error";
      note.setAttribute("role", "alert");
      note.textContent = text || "";
      place.appendChild(note);
    }
  });

  // At phone width the stage bar scrolls: show the current stage.
  function showCurrentStage(root) {
    const current = (root || document).querySelector(".stage-bar .stage.current");
    const bar = current && current.closest(".stage-bar");
    if (bar && bar.scrollWidth > bar.clientWidth) {
      bar.scrollLeft = Math.max(0, current.offsetLeft - bar.offsetLeft - 16);
    }
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.elt && event.detail.elt.id === "deal-main") { showCurrentStage(document); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    openMarkedDialogs(document);
    showCurrentStage(document);
  });
})();
