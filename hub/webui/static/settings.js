// Settings pages: the stage editor (drag with SortableJS, arrow buttons for the keyboard, add and
// delete rows) and confirmations for deletions (data-confirm). The forms work without it too.
"use strict";

(function () {
  function rows(list) {
    return Array.prototype.slice.call(list.querySelectorAll("[data-stage-row]"));
  }

  function nameOf(row) {
    const input = row.querySelector("input[name=stage_name]");
    return input ? input.value : "";
  }

  function announce(text) {
    const live = document.getElementById("stage-announce");
    if (live) {
      live.textContent = text;
    }
  }

  function refreshButtons(list) {
    const all = rows(list);
    all.forEach(function (row, index) {
      row.querySelector("[data-move=up]").disabled = index === 0;
      row.querySelector("[data-move=down]").disabled = index === all.length - 1;
    });
  }

  function move(list, row, direction, button) {
    if (direction === "up" && row.previousElementSibling) {
      list.insertBefore(row, row.previousElementSibling);
    } else if (direction === "down" && row.nextElementSibling) {
      list.insertBefore(row.nextElementSibling, row);
    } else {
      return;
    }
    refreshButtons(list);
    const again = row.querySelector("[data-move=" + direction + "]");
    (again && !again.disabled ? again : button.parentNode.querySelector("button:not(:disabled)")).focus();
    const position = rows(list).indexOf(row) + 1;
    announce((list.dataset.movedLabel || "{name}: {position}").replace("{name}", nameOf(row))
      .replace("{position}", String(position)));
  }

  function toggleRemove(list, row, button) {
    const flag = row.querySelector("[data-remove-flag]");
    const id = row.querySelector("input[name=stage_id]").value;
    if (!id) {  // a stage not saved yet simply goes
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      refreshButtons(list);
      const focus = next ? next.querySelector("input[name=stage_name]") : document.getElementById("add-stage");
      if (focus) {
        focus.focus();
      }
      return;
    }
    const removing = flag.value !== "1";
    flag.value = removing ? "1" : "0";
    row.classList.toggle("removed", removing);
    row.querySelector("input[name=stage_name]").readOnly = removing;
    button.textContent = removing ? button.dataset.labelUndo : button.dataset.labelRemove;
  }

  function setupStages() {
    const list = document.getElementById("stage-list");
    const template = document.getElementById("stage-template");
    if (!list) {
      return;
    }
    list.dataset.movedLabel = list.closest("form").dataset.movedLabel || "";
    list.addEventListener("click", function (event) {
      const button = event.target.closest("button");
      if (!button || !list.contains(button)) {
        return;
      }
      const row = button.closest("[data-stage-row]");
      if (button.dataset.move) {
        move(list, row, button.dataset.move, button);
      } else if (button.hasAttribute("data-remove")) {
        toggleRemove(list, row, button);
      }
    });
    const add = document.getElementById("add-stage");
    if (add && template) {
      add.addEventListener("click", function () {
        const fresh = template.content.firstElementChild.cloneNode(true);
        // Before the first closing (won/lost) stage, so that a new stage is a step of the work.
        const closing = rows(list).find(function (row) {
          return row.querySelector("select[name=stage_kind]").value !== "active";
        });
        list.insertBefore(fresh, closing || null);
        refreshButtons(list);
        fresh.querySelector("input[name=stage_name]").focus();
      });
    }
    if (window.Sortable) {
      window.Sortable.create(list, {
        handle: ".drag",
        animation: 150,
        ghostClass: "stage-ghost",
        onEnd: function () { refreshButtons(list); },
      });
      list.classList.add("sortable");
    }
    refreshButtons(list);
  }

  document.addEventListener("submit", function (event) {
    const submitter = event.submitter;
    const message = (submitter && submitter.dataset.confirm) || event.target.dataset.confirm;
    if (message && !window.confirm(message)) {
      event.preventDefault();
      return;
    }
    // Busy until the next page comes: no second submit, and the button says it is working.
    const form = event.target;
    form.setAttribute("aria-busy", "true");
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit]:not(:disabled)").forEach(function (button) {
        button.disabled = true;
        button.dataset.busy = "1";
      });
    }, 0);
  });
  window.addEventListener("pageshow", function () {  // back to a page kept in the history cache
    document.querySelectorAll("form[aria-busy=true]").forEach(function (form) {
      form.removeAttribute("aria-busy");
      form.querySelectorAll("button[data-busy]").forEach(function (button) {
        button.disabled = false;
        delete button.dataset.busy;
      });
    });
  });

  function setupFieldType() {
    const select = document.querySelector("[data-field-type]");
    const choices = document.querySelector("[data-choices]");
    if (!select || !choices) {
      return;
    }
    function sync() { choices.hidden = select.value !== "choice"; }
    select.addEventListener("change", sync);
    sync();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupStages();
    setupFieldType();
    // A form that came back with errors: the first field to fix has the focus.
    const invalid = document.querySelector("main [aria-invalid=true]");
    if (invalid) {
      invalid.focus();
    }
  });
})();
