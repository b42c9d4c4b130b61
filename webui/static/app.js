// The live event stream of the logged-in user: opens /api/v1/events and lists what arrives.
"use strict";

(function () {
  const list = document.getElementById("events");
  const state = document.getElementById("stream-state");
  if (!list || !window.EventSource) {
    return;
  }
  const MAX_ITEMS = 50;
  const names = [
    "call.ringing", "call.answered", "call.ended", "timeline.added", "timeline.updated",
    "deal.created", "deal.updated", "deal.deleted", "client.updated", "lead.created", "lead.updated",
    "task.updated", "message.received", "notification.created", "resync",
  ];

  function show(name, data) {
    const item = document.createElement("li");
    const time = document.createElement("time");
    time.textContent = new Date().toLocaleTimeString("ru-RU");
    const label = document.createElement("strong");
    label.textContent = name;
    const body = document.createElement("code");
    body.textContent = data;
    item.append(time, " ", label, " ", body);
    list.prepend(item);
    while (list.children.length > MAX_ITEMS) {
      list.lastElementChild.remove();
    }
  }

  const source = new EventSource("/api/v1/events");
  source.addEventListener("open", function () {
    state.textContent = "подключено";
    state.className = "state ok";
  });
  source.addEventListener("error", function () {
    state.textContent = "переподключение…";
    state.className = "state warn";
  });
  names.forEach(function (name) {
    source.addEventListener(name, function (event) { show(name, event.data); });
  });
  source.addEventListener("message", function (event) { show("message", event.data); });
})();
