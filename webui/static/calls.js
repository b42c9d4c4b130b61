// The call journal (/calls): a recording whose file is gone (the server answers 404
// recording_missing) is shown as "file missing" instead of a broken player.
"use strict";

(function () {
  document.addEventListener("error", function (event) {
    const audio = event.target;
    if (!audio || audio.tagName !== "AUDIO" || !audio.closest(".call-recording")) {
      return;
    }
    const note = audio.parentNode.querySelector(".recording-missing");
    if (note) {
      audio.hidden = true;
      note.hidden = false;
    }
  }, true);
})();
