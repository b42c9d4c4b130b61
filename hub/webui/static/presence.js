// "Who is free": the header's dropdown closes on a click elsewhere and on Escape (htmx keeps its list live).
"use strict";

(function () {
  document.addEventListener("click", function (event) {
    const open = document.querySelector("#presence[open]");
    if (open && !open.contains(event.target)) {
      open.open = false;
    }
  });
  document.addEventListener("keydown", function (event) {
    const open = document.querySelector("#presence[open]");
    if (event.key === "Escape" && open) {
      open.open = false;
      open.querySelector("summary").focus();
    }
  });
})();
