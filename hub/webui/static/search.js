// The header's search box: «/» focuses it (unless one is typing somewhere), Escape or a click elsewhere
// closes the suggestions, arrow keys move between them.
"use strict";

(function () {
  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function box() {
    return document.getElementById("search-box");
  }

  function close() {
    const suggest = document.getElementById("search-suggest");
    if (suggest) {
      suggest.innerHTML = "";
    }
  }

  function hits() {
    return Array.from(document.querySelectorAll("#search-suggest a"));
  }

  document.addEventListener("keydown", function (event) {
    const input = document.getElementById("search-q");
    if (!input) {
      return;
    }
    if (event.key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey && !typing(event.target)) {
      event.preventDefault();
      input.focus();
      input.select();
      return;
    }
    if (!box().contains(event.target)) {
      return;
    }
    if (event.key === "Escape") {
      close();
      input.focus();
      return;
    }
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const links = hits();
      if (!links.length) {
        return;
      }
      event.preventDefault();
      const at = links.indexOf(document.activeElement);
      const next = event.key === "ArrowDown" ? Math.min(at + 1, links.length - 1) : at - 1;
      if (next < 0) {
        input.focus();
      } else {
        links[next].focus();
      }
    }
  });

  document.addEventListener("click", function (event) {
    const form = box();
    if (form && !form.contains(event.target)) {
      close();
    }
  });
})();
