// The tasks page: the create / edit form opens in a <dialog> (htmx loads it), closes when saved
// ("task-saved" from the server's HX-Trigger) or on Cancel / Escape; focus goes back where it was.
"use strict";

(function () {
  let opener = null;

  function dialog() { return document.getElementById("task-dialog"); }

  document.addEventListener("click", function (event) {
    const open = event.target.closest("[data-opens-dialog]");
    if (open && window.htmx && dialog()) {
      opener = open;
      const body = document.getElementById("task-dialog-body");
      body.replaceChildren();
      const p = document.createElement("p");
      p.className = "muted loading";
      p.textContent = body.dataset.loading || "…";
      body.appendChild(p);
      if (!dialog().open) { dialog().showModal(); }
      return;  // htmx fetches the form into the dialog
    }
    const close = event.target.closest("[data-closes-dialog]");
    if (close && close.closest("dialog")) {
      event.preventDefault();
      close.closest("dialog").close();
      return;
    }
    const confirmer = event.target.closest("[data-confirm]");
    if (confirmer && !window.confirm(confirmer.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // Enter in a search box of the form narrows its list; it must not submit the task.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.matches("#task-form input[type=search]")) {
      event.preventDefault();
    }
  });

  // A search box narrows the list below it and picks its first match, so that typing a name is
  // enough; a pick made so gives way to the next search, one the user made stays (the server keeps
  // a chosen item in the list).
  function listOf(input) {
    const next = input.nextElementSibling;
    return next && next.tagName === "SELECT" ? next : null;
  }

  document.addEventListener("input", function (event) {
    const list = event.target.matches && event.target.matches("#task-form input.narrow") ? listOf(event.target) : null;
    if (list && list.dataset.picked === "auto") {
      list.value = "";
      delete list.dataset.picked;
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("#task-form select")) {
      delete event.target.dataset.picked;
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    const list = event.detail.target;
    const input = list && list.previousElementSibling;
    if (!list || list.tagName !== "SELECT" || !input || !input.matches("#task-form input.narrow")) { return; }
    const first = Array.from(list.options).find(function (o) { return o.value && !o.disabled; });
    if (list.value === "" && input.value.trim() && first) {
      list.value = first.value;
      list.dataset.picked = "auto";
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    const d = dialog();
    if (!d) { return; }
    d.addEventListener("close", function () {
      if (opener && document.body.contains(opener)) { opener.focus(); }
      opener = null;
    });
    document.body.addEventListener("htmx:afterSwap", function (event) {
      if (event.detail.target && event.detail.target.id === "task-dialog-body") {
        const first = event.detail.target.querySelector("[aria-invalid=true], input[name=subject]");
        if (first) { first.focus(); }
      }
    });
    document.body.addEventListener("task-saved", function () {
      if (d.open) { d.close(); }
    });
    document.body.addEventListener("htmx:beforeRequest", function (event) {
      if (event.detail.elt && event.detail.elt.id === "tasks-live") {
        event.detail.elt.querySelector(".tasks-body")?.setAttribute("aria-busy", "true");
      }
    });
  });
})();
