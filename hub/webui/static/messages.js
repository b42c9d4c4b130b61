// Messages: the composer (cards and the inbox) posts to POST /api/v1/messages (multipart, with a
// file), Enter sends and Shift+Enter is a new line; "Reply" on a message sets reply_to; "Retry"
// queues a failed message again; the inbox's chat panel refreshes only on its own conversation's
// events and stays scrolled to the newest message ("show older" loads the earlier ones above).
// User data only through textContent/attributes.
//
// E-mail: the Subject field is shown (and sent) only while e-mail is the chosen channel; the API's
// refusal of a field is said next to it. A letter's sanitised HTML (data-html) is shown only on
// "HTML version", in an <iframe sandbox srcdoc> built here: the sandbox has no allow-scripts (nothing in
// the letter can run, so allow-same-origin only lets it load the hub's own attachment URLs with the
// user's cookie) and allows popups for the letter's links; the document is parsed with DOMParser
// (inert: nothing loads), `cid:` images become /api/v1/attachments/{id} through data-cids, every
// other src is dropped, and remote images (data-remote-src, which the sanitiser left without a
// src) get a src only after "show images" (http:// upgraded to https://). The srcdoc carries its
// own CSP (img-src 'self', plus https: after the click) on top of the hub's, which it inherits; the
// hub's CSP allows remote images (img-src https:) for that, and nothing else: the letter's own
// inline styles stay off.
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
    if (fields.subject && fieldError(form, "subject", form.dataset.msgSubject || fields.subject)) {
      const input = form.elements.subject;
      if (input && input.focus) { input.focus(); }
      return form.dataset.msgRefused + " " + (form.dataset.msgSubject || fields.subject);
    }
    const parts = Object.keys(fields).map(function (k) { return fields[k]; });
    return form.dataset.msgRefused + " " + (parts.length ? parts.join("; ") : error.message);
  }

  function fieldError(form, name, text) {
    const place = form.querySelector("[data-field-error='" + name + "']");
    if (place) { place.textContent = text || ""; }
    const input = form.elements[name];
    if (input && input.setAttribute) {
      if (text) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
    }
    return Boolean(place);
  }

  function channelOf(form) {
    const fixed = form.querySelector("input[type=hidden][name=channel]");
    if (fixed) { return fixed.value; }
    const checked = form.querySelector("input[name=channel]:checked");
    return checked ? checked.value : "";
  }

  // The Subject field: shown and sent only for a letter.
  function showSubject(form) {
    const row = form.querySelector("[data-subject-row]");
    if (!row) { return; }
    const mail = channelOf(form) === "email";
    row.hidden = !mail;
    const input = row.querySelector("input[name=subject]");
    if (input) { input.disabled = !mail; }
  }

  // WhatsApp: the template row while WhatsApp is the channel; a chosen template's variables are
  // enabled (and sent), the text is off (a template goes as it is).
  function showTemplate(form) {
    const row = form.querySelector("[data-template-row]");
    if (!row) { return; }
    const whatsapp = channelOf(form) === "whatsapp";
    row.hidden = !whatsapp;
    const select = row.querySelector("[data-template-select]");
    const sid = whatsapp && select ? select.value : "";
    if (select) { select.disabled = !whatsapp; }
    row.querySelectorAll("[data-template-vars]").forEach(function (box) {
      const shown = box.dataset.templateVars === sid;
      box.hidden = !shown;
      box.querySelectorAll("input").forEach(function (input) { input.disabled = !shown; });
    });
    const closed = whatsapp && row.dataset.windowOpen !== "1";
    const text = form.querySelector("textarea[name=text]");
    if (text) { text.disabled = Boolean(sid) || closed; }
  }

  function templateChosen(form) {
    const select = form.querySelector("[data-template-select]");
    return Boolean(select && !select.disabled && select.value);
  }

  // Back to the default (the inbox's e-mail composer answers the latest letter), or to no reply.
  function clearReply(form, toDefault) {
    const input = form.querySelector("[data-reply-to]");
    const box = form.querySelector("[data-reply-box]");
    const subject = form.querySelector("input[name=subject]");
    const reply = toDefault ? (form.dataset.defaultReply || "") : "";
    if (input) { input.value = reply; }
    if (box) {
      box.hidden = !reply;
      const label = box.querySelector("[data-reply-text]");
      if (label) { label.textContent = reply ? (form.dataset.defaultReplyText || "…") : ""; }
    }
    if (subject && toDefault) { subject.value = form.dataset.defaultSubject || ""; }
  }

  function send(form) {
    const text = form.querySelector("textarea[name=text]");
    const file = form.querySelector("input[type=file]");
    if ((!text || !text.value.trim()) && !(file && file.files.length) && !templateChosen(form)) {
      say(form, form.dataset.msgEmpty, true);
      return;
    }
    const data = new FormData(form);
    if (!data.get("reply_to")) { data.delete("reply_to"); }
    if (file && !file.files.length) { data.delete(file.name); }
    const button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; }
    fieldError(form, "subject", "");
    fetch("/api/v1/messages", {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "Accept": "application/json" }
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (response.status === 201) {
          if (text) { text.value = ""; }
          if (file) { file.value = ""; }
          form.querySelectorAll("[data-template-vars] input").forEach(function (input) { input.value = ""; });
          const name = form.querySelector("[data-file-name]");
          if (name) { name.textContent = ""; }
          clearReply(form, true);
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
    if (event.key === "Enter" && !event.isComposing && target.matches &&
        target.matches("form[data-compose] input[name=subject]")) {
      event.preventDefault();  // the subject is not the letter: Enter goes on to the text
      const text = target.form.querySelector("textarea[name=text]");
      if (text) { text.focus(); }
      return;
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && target.matches &&
        target.matches("form[data-compose] textarea")) {
      event.preventDefault();
      target.form.requestSubmit();
    }
  });

  document.addEventListener("change", function (event) {
    const input = event.target;
    if (input.matches && input.matches("form[data-compose] input[name=channel]")) {
      showSubject(input.form);
      showTemplate(input.form);
      return;
    }
    if (input.matches && input.matches("form[data-compose] [data-template-select]")) {
      showTemplate(input.form);
      return;
    }
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
      showSubject(form);
      showTemplate(form);
      form.querySelector("[data-reply-to]").value = reply.dataset.reply;
      form.querySelector("[data-reply-text]").textContent = reply.dataset.replyText || "…";
      form.querySelector("[data-reply-box]").hidden = false;
      const subject = form.querySelector("input[name=subject]");
      if (subject && reply.dataset.replySubject !== undefined) {
        subject.value = reply.dataset.replySubject;
        fieldError(form, "subject", "");
      }
      const text = form.querySelector("textarea");
      if (text) { text.focus(); }
      return;
    }
    const cancel = event.target.closest && event.target.closest("[data-reply-cancel]");
    if (cancel) {
      clearReply(cancel.closest("form"), false);
      return;
    }
    const toggle = event.target.closest && event.target.closest("[data-letter-toggle]");
    if (toggle) {
      toggleLetter(toggle.closest("[data-letter]"), toggle);
      return;
    }
    const images = event.target.closest && event.target.closest("[data-letter-images]");
    if (images) {
      const box = images.closest("[data-letter]");
      const frame = box.querySelector("iframe");
      if (frame) { frame.srcdoc = letterDocument(box, true); }
      images.hidden = true;
      box.dataset.imagesShown = "true";
      return;
    }
    const lead = event.target.closest && event.target.closest("[data-make-lead]");
    if (lead) {
      makeLead(lead);
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

  // A letter's HTML: see the comment at the top. The frame is built on the first click.
  function letterDocument(box, withImages) {
    const parsed = new DOMParser().parseFromString(box.dataset.html || "", "text/html");
    let cids = {};
    try { cids = JSON.parse(box.dataset.cids || "{}"); } catch (e) { cids = {}; }
    parsed.querySelectorAll("script, iframe, object, embed, base, meta, link").forEach(function (node) { node.remove(); });
    parsed.querySelectorAll("img").forEach(function (img) {
      const src = (img.getAttribute("src") || "").trim();
      img.removeAttribute("src");
      img.removeAttribute("srcset");
      if (/^cid:/i.test(src)) {
        const key = src.slice(4);
        let id = cids[key];
        if (id === undefined) { try { id = cids[decodeURIComponent(key)]; } catch (e) { id = undefined; } }
        if (id !== undefined) { img.setAttribute("src", "/api/v1/attachments/" + encodeURIComponent(id)); }
      }
      const remote = (img.getAttribute("data-remote-src") || "").trim();
      if (withImages && /^https?:\/\//i.test(remote)) {
        img.setAttribute("src", remote.replace(/^http:/i, "https:"));
      }
    });
    const head = parsed.head;
    const policy = parsed.createElement("meta");
    policy.setAttribute("http-equiv", "Content-Security-Policy");
    policy.setAttribute("content", "default-src 'none'; style-src 'self'; img-src 'self'" + (withImages ? " https:" : ""));
    const charset = parsed.createElement("meta");
    charset.setAttribute("charset", "utf-8");
    const base = parsed.createElement("base");
    base.setAttribute("target", "_blank");
    const style = parsed.createElement("link");
    style.setAttribute("rel", "stylesheet");
    style.setAttribute("href", "/static/letter.css");
    head.prepend(charset, policy, base, style);
    return "<!DOCTYPE html>" + parsed.documentElement.outerHTML;
  }

  function toggleLetter(box, toggle) {
    let frame = box.querySelector("iframe");
    const images = box.querySelector("[data-letter-images]");
    if (!frame) {
      frame = document.createElement("iframe");
      frame.className = "letter-frame";
      frame.setAttribute("sandbox", "allow-same-origin allow-popups allow-popups-to-escape-sandbox");
      frame.setAttribute("referrerpolicy", "no-referrer");
      frame.setAttribute("title", box.dataset.title || "");
      frame.srcdoc = letterDocument(box, box.dataset.imagesShown === "true");
      box.appendChild(frame);
    } else {
      frame.hidden = !frame.hidden;
    }
    const open = !frame.hidden;
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (images && box.dataset.imagesShown !== "true") { images.hidden = !open; }
  }

  // "Create a lead" for a conversation that belongs to nobody; the stream refreshes the panel.
  function makeLead(button) {
    const box = button.closest("[data-make-lead-box]");
    const status = box && box.querySelector("[data-make-lead-status]");
    button.disabled = true;
    fetch("/api/v1/conversations/" + encodeURIComponent(button.dataset.makeLead) + "/lead", {
      method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf(), "Accept": "application/json" }
    }).then(function (response) {
      if (response.status === 201) {
        refreshChat();
        return;
      }
      button.disabled = false;
      return response.json().catch(function () { return null; }).then(function (body) {
        const error = body && body.error;
        const fields = (error && error.fields) || {};
        const parts = Object.keys(fields).map(function (k) { return fields[k]; });
        if (status) { status.textContent = parts.length ? parts.join("; ") : ((box && box.dataset.msgError) || ""); }
      });
    }).catch(function () {
      button.disabled = false;
      if (status && box) { status.textContent = box.dataset.msgError || ""; }
    });
  }

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

  function scrollChat(event) {
    const info = event && event.detail && event.detail.pathInfo;
    if (info && /[?&]cursor=/.test(info.requestPath || "")) { return; }  // "show older": stay put
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

  // The WhatsApp window's state as the page last rendered it (outside the preserved form).
  function applyWindowState(state) {
    const form = document.getElementById(state.dataset.windowState);
    const row = form && form.querySelector("[data-template-row]");
    if (!row) { return; }
    const open = state.dataset.windowOpen === "1";
    row.dataset.windowOpen = open ? "1" : "0";
    const note = row.querySelector("[data-window-note]");
    if (note) {
      note.textContent = state.dataset.note || "";
      note.classList.toggle("muted", open);
      note.classList.toggle("warn", !open);
    }
    const free = row.querySelector("[data-free-text]");
    const select = row.querySelector("[data-template-select]");
    if (free) {
      free.hidden = !open;
      free.disabled = !open;
    }
    if (select && !open && !select.value) {
      const first = select.querySelector("option:not([data-free-text])");
      if (first) { select.value = first.value; }
    }
  }

  function initTemplates() {
    document.querySelectorAll("[data-window-state]").forEach(applyWindowState);
    document.querySelectorAll("form[data-compose]").forEach(showTemplate);
  }
  document.addEventListener("DOMContentLoaded", initTemplates);
  document.addEventListener("htmx:afterSettle", initTemplates);
})();
