// Client and lead pages: open the "new" forms and the convert dialog, confirm deletions, and keep
// the live regions honest — a server-sent event re-renders a list or card only when it concerns
// what is on screen, and never while the reader is filling in a form there.
"use strict";

(function () {
  document.documentElement.classList.add("cl-js");
  const owners = {
    "client.updated": function (d) { return d.client && { client: d.client.id }; },
    "lead.created": function (d) { return d.lead && { lead: d.lead.id }; },
    "lead.updated": function (d) { return d.lead && { lead: d.lead.id, client: d.lead.converted_client_id }; },
    "timeline.added": function (d) { return d.entry && { client: d.entry.client_id, lead: d.entry.lead_id }; },
    "deal.created": function (d) { return d.deal && { client: d.deal.client_id, lead: d.deal.lead_id }; },
    "deal.updated": function (d) { return d.deal && { client: d.deal.client_id, lead: d.deal.lead_id }; },
    "deal.deleted": function (d) { return d.deal && { client: d.deal.client_id, lead: d.deal.lead_id }; },
    "task.updated": function (d) { return d.task && { client: d.task.client_id, lead: d.task.lead_id }; }
  };

  function concerns(region, name, data) {
    if (name === "resync") {
      return true;
    }
    const about = owners[name] ? owners[name](data || {}) : null;
    if (!about) {
      return false;
    }
    const kind = region.dataset.live;
    const id = Number(region.dataset.id);
    if (kind === "client") {
      return about.client === id;
    }
    if (kind === "lead") {
      return about.lead === id;
    }
    if (kind === "clients") {
      return Boolean(region.querySelector('[data-client-id="' + about.client + '"]'));
    }
    return kind === "leads";
  }

  function busy(region) {
    const active = document.activeElement;
    if (active && region.contains(active) && active.closest("form") && active.matches("input, select, textarea")) {
      return true;
    }
    return Boolean(region.querySelector("form.dirty, [aria-invalid=true], details[open].edit-form, details[open].inner-edit"));
  }

  function openDetails(id) {
    const details = document.getElementById(id);
    if (!details) {
      return;
    }
    details.open = true;
    const first = details.querySelector("input:not([type=hidden]), select, textarea");
    if (first) {
      first.focus();
    }
  }

  function openDialog(dialog) {
    if (dialog && !dialog.open && dialog.showModal) {
      dialog.showModal();
      const first = dialog.querySelector("[aria-invalid=true]") ||
        dialog.querySelector("input:not([type=hidden]), select, textarea");
      if (first) {
        first.focus();
      }
    }
  }

  document.addEventListener("click", function (event) {
    const opener = event.target.closest("[data-open-details]");
    if (opener) {
      event.preventDefault();
      openDetails(opener.dataset.openDetails);
      return;
    }
    const dialogOpener = event.target.closest("[data-open-dialog]");
    if (dialogOpener) {
      event.preventDefault();
      openDialog(document.getElementById(dialogOpener.dataset.openDialog));
      return;
    }
    const closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      closer.closest("dialog").close();
    }
  });

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    const button = form.querySelector("button[type=submit]");
    if (button) {
      // Loading state; the page that answers replaces this one.
      window.setTimeout(function () { button.disabled = true; button.classList.add("loading"); }, 0);
    }
  });

  document.addEventListener("input", function (event) {
    const form = event.target.closest("form");
    if (form && form.method.toLowerCase() === "post" && !form.closest(".tl")) {  // the timeline minds its own
      form.classList.add("dirty");
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]")) {
      event.target.form.requestSubmit();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("dialog[data-open-now]").forEach(openDialog);
    // A refused form comes back with its reasons: start at the first field to fix.
    const invalid = document.querySelector("main form [aria-invalid=true]");
    if (invalid && !invalid.closest("dialog")) {
      invalid.focus();
    }
    document.body.addEventListener("htmx:confirm", function (event) {
      const region = event.detail.elt;
      const trigger = event.detail.triggeringEvent;
      if (!region || !region.dataset || !region.dataset.live || !trigger || trigger.type.indexOf("sse:") !== 0) {
        return;
      }
      let data = null;
      try {
        data = trigger.detail && trigger.detail.data ? JSON.parse(trigger.detail.data) : null;
      } catch (e) {
        data = null;
      }
      if (!concerns(region, trigger.type.slice(4), data) || busy(region)) {
        event.preventDefault();
      }
    });
  });
})();
