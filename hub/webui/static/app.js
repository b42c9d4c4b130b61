// CRM Hub pages: small enhancements on top of server-rendered HTML and htmx.
// - the bell stays open while it refreshes (htmx re-renders it on each notification.created);
// - stage colours from data-color (inline styles are not allowed by our Content-Security-Policy);
// - <body data-live="true|false"> tells whether the event stream is connected (tests wait for it);
// - without htmx (webui/node_modules not installed) the bell still goes live: a plain
//   EventSource refetches it.
"use strict";

(function () {
  function paint(root) {
    root.querySelectorAll("[data-color]").forEach(function (el) {
      if (/^#[0-9a-fA-F]{3,8}$/.test(el.dataset.color)) {
        el.style.backgroundColor = el.dataset.color;
      }
    });
  }

  function bellIsOpen() {
    const details = document.querySelector("#bell details");
    return Boolean(details && details.open);
  }

  // On a narrow screen the sections are behind the «Меню» button: it opens them all, one per line.
  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("[data-menu-button]");
    if (!button) { return; }
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    button.closest(".topbar").classList.toggle("menu-open", open);
  });

  // A list's mass actions: «All on the page» ticks every row; only the chosen action's value shows.
  document.addEventListener("change", function (event) {
    const target = event.target;
    if (target.matches && target.matches("[data-select-all]")) {
      const form = target.closest("form");
      document.querySelectorAll('input[name="ids"][form="' + form.id + '"]').forEach(function (box) {
        box.checked = target.checked;
      });
    } else if (target.matches && target.matches("[data-bulk-action]")) {
      showBulkValue(target);
    }
  });
  function showBulkValue(select) {
    select.closest("form").querySelectorAll("[data-for]").forEach(function (el) {
      el.hidden = el.dataset.for !== select.value;
    });
  }
  document.querySelectorAll("[data-bulk-action]").forEach(showBulkValue);

  // The bell's menu closes on a click elsewhere and on Escape (focus goes back to the bell).
  document.addEventListener("click", function (event) {
    const open = document.querySelector("#bell details[open]");
    if (open && !open.contains(event.target)) {
      open.open = false;
    }
  });
  document.addEventListener("keydown", function (event) {
    const open = document.querySelector("#bell details[open]");
    if (event.key === "Escape" && open) {
      open.open = false;
      open.querySelector("summary").focus();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    paint(document);
    if (window.htmx) {
      document.body.addEventListener("htmx:configRequest", function (event) {
        const elt = event.detail.elt;
        if (elt && elt.id === "bell" && event.detail.verb === "get" && bellIsOpen()) {
          event.detail.parameters.open = "1";
        }
      });
      document.body.addEventListener("htmx:afterSwap", function (event) { paint(event.detail.elt); });
      document.body.addEventListener("htmx:sseOpen", function () { document.body.dataset.live = "true"; });
      document.body.addEventListener("htmx:sseError", function () { document.body.dataset.live = "false"; });
      return;
    }
    if (!window.EventSource || !document.getElementById("bell")) {
      return;
    }
    const source = new EventSource("/api/v1/events");
    function refresh() {
      fetch("/bell" + (bellIsOpen() ? "?open=1" : ""), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          const bell = document.getElementById("bell");
          if (html && bell) {
            bell.innerHTML = html;
          }
        });
    }
    source.addEventListener("open", function () { document.body.dataset.live = "true"; refresh(); });
    source.addEventListener("error", function () { document.body.dataset.live = "false"; });
    source.addEventListener("notification.created", refresh);
    source.addEventListener("resync", refresh);
  });
})();
