// The call journal (/calls): a recording whose file is gone (the server answers 404
// recording_missing) is shown as "file missing" instead of a broken player.
//
// The player's "error" event alone is not enough: this script is deferred, and a fast 404
// can fail the <audio> (and fire its non-bubbling "error") while the page is still being
// parsed, before the listener below exists. An element that has already failed keeps its
// MediaError in audio.error, so every player is also checked when the script starts and
// after each htmx swap (the live refresh of the rows re-renders the players, which may
// fail while htmx is still inserting them).
"use strict";

(function () {
  function showMissing(audio) {
    const note = audio.parentNode && audio.parentNode.querySelector(".recording-missing");
    if (note) {
      audio.hidden = true;
      note.hidden = false;
    }
  }

  function sweep(root) {
    (root || document).querySelectorAll(".call-recording audio").forEach(function (audio) {
      if (audio.error) {
        showMissing(audio);
      }
    });
  }

  document.addEventListener("error", function (event) {
    const audio = event.target;
    if (!audio || audio.tagName !== "AUDIO" || !audio.closest(".call-recording")) {
      return;
    }
    showMissing(audio);
  }, true);

  document.addEventListener("htmx:afterSettle", function () { sweep(document); });
  sweep(document);
})();
