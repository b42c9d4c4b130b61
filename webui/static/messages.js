// Messages: the composer (cards and the inbox) posts to POST /api/v1/messages (multipart, with a
// file), Enter sends and Shift+Enter is a new line; "Reply" on a message sets reply_to; "Retry"
// queues a failed message again; the inbox's chat panel refreshes only on its own conversation's
// events and stays scrolled to the newest message. User data only through textContent/attributes.
"use strict";

(function () {
  function csrf() {
    const meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.content : "";
  }

  function say(form, text, bad) {
    const place = form.querySelector("[data-compose-status]");
    if (place) {
      place.textContent = text || "";
      place.classList.toggle("bad", Boolean(bad));
    }
  }

  function refreshChat() {
    const chat = document.querySelector("#chat[data-conversation-id]");
    if (chat && window.htmx) { window.htmx.trigger(chat, "chat-refresh"); }
  }

  function reasonOf(form, body, status) {
    if (status === 413) { return form.dataset.msgTooLarge; }
    const error = body && body.error;
    if (!error) { return form.dataset.msgError; }
    const fields = error.fields || {};
    if (fields.text && /is required/.test(fields.text)) { return form.dataset.msgEmpty; }
    const parts = Object.keys(fields).map(function (k) { return fields[k]; });
    return form.dataset.msgRefused + " " + (parts.length ? parts.join("; ") : error.message);
  }

  function clearReply(form) {
    const input = form.querySelector("[data-reply-to]");
    const box = form.querySelector("[data-reply-box]");
    if (input) { input.value = ""; }
    if (box) { box.hidden = true; }
  }

  function send(form) {
    const text = form.querySelector("textarea[name=text]");
    const file = form.querySelector("input[type=file]");
    if ((!text || !text.value.trim()) && !(file && file.files.length)) {
      say(form, form.dataset.msgEmpty, true);
      return;
    }
    const data = new FormData(form);
    if (!data.get("reply_to")) { data.delete("reply_to"); }
    if (file && !file.files.length) { data.delete(file.name); }
    const button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; }
    fetch("/api/v1/messages", {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "Accept": "application/json" }
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (response.status === 201) {
          if (text) { text.value = ""; }
          if (file) { file.value = ""; }
          const name = form.querySelector("[data-file-name]");
          if (name) { name.textContent = ""; }
          clearReply(form);
          say(form, form.dataset.msgQueued, false);
          document.body.dispatchEvent(new CustomEvent("message-queued", { detail: body }));
          refreshChat();
          if (text) { text.focus(); }
        } else {
          say(form, reasonOf(form, body, response.status), true);
        }
      });
    }).catch(function () {
      say(form, form.dataset.msgError, true);
    }).finally(function () {
      if (button) { button.disabled = false; }
    });
  }

  // Move a message's entry to another open deal of the same person (the stream refreshes the boxes).
  function move(form) {
    const button = form.querySelector("button");
    button.disabled = true;
    fetch("/api/v1/timeline/" + encodeURIComponent(form.dataset.moveEntry) + "/move", {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "Content-Type": "application/json" },
      body: JSON.stringify({ deal_id: parseInt(form.elements.deal_id.value, 10) })
    }).then(function (response) {
      button.disabled = false;
      if (!response.ok) {
        const box = form.closest(".tl");
        const place = box && box.querySelector("[data-tl-status]");
        if (place) {
          place.textContent = box.dataset.msgError || "";
          place.classList.add("shown");
        }
      }
    }).catch(function () { button.disabled = false; });
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.matches && form.matches("form[data-compose]")) {
      event.preventDefault();
      send(form);
    } else if (form.matches && form.matches("form[data-move-entry]")) {
      event.preventDefault();
      move(form);
    }
  });

  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && target.matches &&
        target.matches("form[data-compose] textarea")) {
      event.preventDefault();
      target.form.requestSubmit();
    }
  });

  document.addEventListener("change", function (event) {
    const input = event.target;
    if (input.matches && input.matches("form[data-compose] input[type=file]")) {
      const name = input.form.querySelector("[data-file-name]");
      if (name) { name.textContent = input.files.length ? input.files[0].name : ""; }
    }
  });

  function composerFor(button) {
    const chat = button.closest("#chat");
    return (chat && chat.querySelector("form[data-compose]")) || document.querySelector("form[data-compose]");
  }

  document.addEventListener("click", function (event) {
    const reply = event.target.closest && event.target.closest("[data-reply]");
    if (reply) {
      const form = composerFor(reply);
      if (!form) { return; }
      const radio = form.querySelector("input[name=channel][value='" + reply.dataset.replyChannel + "']");
      if (radio && radio.disabled) { return; }
      if (radio) { radio.checked = true; }
      form.querySelector("[data-reply-to]").value = reply.dataset.reply;
      form.querySelector("[data-reply-text]").textContent = reply.dataset.replyText || "…";
      form.querySelector("[data-reply-box]").hidden = false;
      const text = form.querySelector("textarea");
      if (text) { text.focus(); }
      return;
    }
    const cancel = event.target.closest && event.target.closest("[data-reply-cancel]");
    if (cancel) {
      clearReply(cancel.closest("form"));
      return;
    }
    const retry = event.target.closest && event.target.closest("[data-retry]");
    if (retry) {
      retry.disabled = true;
      fetch("/api/v1/messages/" + encodeURIComponent(retry.dataset.retry) + "/retry", {
        method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf() }
      }).then(function (response) {
        if (!response.ok) { retry.disabled = false; }
        refreshChat();
      }).catch(function () { retry.disabled = false; });
    }
  });

  // The chat panel refreshes only on events of its own conversation.
  function parse(event) {
    try {
      return JSON.parse(event.detail.triggeringEvent.detail.data || "{}");
    } catch (e) {
      return null;
    }
  }

  function forChat(chat, event) {
    const trigger = event.detail.triggeringEvent;
    if (!trigger || typeof trigger.type !== "string" || trigger.type.indexOf("sse:") !== 0 || trigger.type === "sse:resync") {
      return true;
    }
    const data = parse(event);
    if (!data) { return false; }
    const id = chat.dataset.conversationId;
    if (data.message) { return String(data.message.conversation_id) === id; }
    if (data.conversation) { return String(data.conversation.id) === id; }
    if (data.entry) {
      const p = data.entry.payload || {};
      return data.entry.kind === chat.dataset.channel && String(p.address) === chat.dataset.address;
    }
    return false;
  }

  document.addEventListener("htmx:confirm", function (event) {
    const elt = event.detail.elt;
    if (elt && elt.id === "chat" && elt.dataset.conversationId && !forChat(elt, event)) {
      event.preventDefault();
    }
  });

  function scrollChat() {
    const list = document.querySelector("#chat [data-chat-messages]");
    if (list) { list.scrollTop = list.scrollHeight; }
  }
  document.addEventListener("htmx:afterSettle", scrollChat);
  // At phone width the chat is below the list: show it when a conversation is chosen.
  document.addEventListener("htmx:afterSettle", function (event) {
    const chat = document.querySelector("#chat[data-conversation-id]");
    if (event.detail.elt && event.detail.elt.id === "inbox" && chat && window.innerWidth < 900) {
      chat.scrollIntoView({ block: "start" });
    }
  });
  document.addEventListener("DOMContentLoaded", scrollChat);
})();
