// Enhancements for the article page. Without this file everything still works.
(function () {
  "use strict";
  var article = document.querySelector("article[data-article-id]");
  if (!article) return;
  var articleId = article.getAttribute("data-article-id");
  var root = document.documentElement;

  function count(kind) {
    // aggregate, first-party counter; no identifiers, no cookies
    try {
      fetch("/e/" + articleId + "/" + kind, { method: "GET", keepalive: true, credentials: "omit" });
    } catch (e) { /* counting never breaks the page */ }
  }

  function dismissedKey(name) { return "patrons:dismissed:" + name; }

  // After hiding a box that held the focus, put the focus on what follows it (not on <body>),
  // so keyboard and screen-reader users carry on reading where they were.
  function focusAfter(element) {
    var next = element.nextElementSibling;
    while (next && (next.hidden || next.getAttribute("aria-hidden") === "true" ||
                    next.tagName === "DIALOG" || next.tagName === "SCRIPT")) {
      next = next.nextElementSibling;
    }
    var target = next || document.getElementById("main");
    if (!target) return;
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus({ preventScroll: true });
  }

  function dismiss(name, element) {
    var days = parseInt(element.getAttribute("data-dismiss-days") || "7", 10);
    try {
      localStorage.setItem(dismissedKey(name), String(Date.now() + days * 86400000));
    } catch (e) { /* storage blocked: dismissed for this page only */ }
    var hadFocus = element.contains(document.activeElement);
    root.classList.add(name + "-dismissed");
    element.hidden = true;
    if (hadFocus) focusAfter(element);
    count(name + "_dismiss");
  }

  count("view");

  // Support banner
  var banner = document.getElementById("support-banner");
  if (banner) {
    var bannerClose = banner.querySelector("[data-dismiss]");
    bannerClose.hidden = false;
    bannerClose.addEventListener("click", function () { dismiss("banner", banner); });
    if (!root.classList.contains("banner-dismissed")) count("banner_impression");
    var cta = document.getElementById("banner-cta");
    if (cta) cta.addEventListener("click", function () { count("banner_click"); });
  }

  // Ad-blocker notice: shown only when the bait element is hidden or the bait script was blocked
  var notice = document.getElementById("adblock-notice");
  var bait = document.getElementById("ad-bait");
  function adsBlocked() {
    if (!bait) return false;
    var style = window.getComputedStyle(bait);
    var hidden = bait.offsetHeight === 0 || style.display === "none" || style.visibility === "hidden";
    return hidden || window.__patronsAdsAllowed !== true;
  }
  function checkBlocker() {
    if (!notice || root.classList.contains("notice-dismissed")) return;
    if (adsBlocked()) {
      notice.hidden = false;
      count("notice_impression");
      notice.querySelector("[data-dismiss]").addEventListener("click", function () { dismiss("notice", notice); });
      var noticeCta = document.getElementById("notice-cta");
      if (noticeCta) noticeCta.addEventListener("click", function () { count("notice_click"); });
    }
  }
  if (document.readyState === "complete") {
    window.setTimeout(checkBlocker, 300);
  } else {
    window.addEventListener("load", function () { window.setTimeout(checkBlocker, 300); });
  }

  // Copy the canonical link
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var field = document.querySelector(button.getAttribute("data-copy"));
    button.hidden = false;
    button.addEventListener("click", function () {
      field.select();
      var done = function () { button.textContent = button.getAttribute("data-copied") || "Copied"; };
      if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, function () {});
      else { document.execCommand("copy"); done(); }
    });
  });

  // Correction suggestions: select text + Ctrl+Enter, or the visible link
  var dialog = document.getElementById("correction-dialog");
  var form = document.getElementById("correction-form");
  var body = document.getElementById("article-body");
  var header = article.querySelector(".article__header");
  if (!dialog || !form || typeof dialog.showModal !== "function") return;
  var status = form.querySelector(".form-status");
  var fields = form.querySelector("[data-fields]");
  var sendButton = form.querySelector("[type=submit]");
  var closeButton = dialog.querySelector("[data-close-dialog]");
  var sending = false;

  // Typos are reported from the article's text: its body, and its headline, summary and byline.
  function inArticleText(node) {
    return !!node && (body.contains(node) || (!!header && header.contains(node)));
  }

  function squash(text) { return text.replace(/\s+/g, " "); }

  function surroundingSentence(selection) {
    if (!selection.rangeCount) return "";
    var range = selection.getRangeAt(0);
    var node = range.commonAncestorContainer;
    var block = node.nodeType === 1 ? node : node.parentElement;
    block = block && block.closest("p, li, blockquote, h1, h2, h3, h4, figcaption, td") || block;
    if (!block) return "";
    var text = squash(block.textContent).trim();
    var chosen = squash(selection.toString()).trim();
    // where the selection starts in the block: the text before it, squashed the same way
    // (indexOf alone would find an earlier occurrence of the same words)
    var before = document.createRange();
    before.selectNodeContents(block);
    before.setEnd(range.startContainer, range.startOffset);
    var guess = squash(before.toString()).replace(/^ /, "").length;
    var at = text.indexOf(chosen, Math.max(0, guess - 1));
    if (at < 0 || at > guess + 1) at = text.indexOf(chosen);
    if (at < 0) return text.slice(0, 2000);
    var start = Math.max(text.lastIndexOf(". ", at), text.lastIndexOf("? ", at), text.lastIndexOf("! ", at));
    start = start < 0 ? 0 : start + 2;
    var from = at + Math.max(chosen.length - 1, 0);  // a selection ending in "." ends its sentence
    var ends = [". ", "? ", "! "].map(function (p) { return text.indexOf(p, from); })
      .filter(function (i) { return i >= 0; });
    var end = ends.length ? Math.min.apply(null, ends) + 1 : text.length;
    return text.slice(start, end).slice(0, 2000);
  }

  // the page's translated texts, from data-msg-* on the dialog (English if missing)
  function msg(name, fallback) { return dialog.dataset["msg" + name.charAt(0).toUpperCase() + name.slice(1)] || fallback; }

  function openDialog(selectionText, context) {
    form.elements.selection.value = (selectionText || "").slice(0, 1000);
    form.elements.context.value = context || "";
    status.textContent = "";
    fields.hidden = false;
    sendButton.hidden = false;
    closeButton.textContent = msg("cancel", "Cancel");
    dialog.showModal();
    (selectionText ? form.elements.comment : form.elements.selection).focus();
  }

  document.addEventListener("keydown", function (event) {
    if (!(event.ctrlKey || event.metaKey) || event.key !== "Enter" || dialog.open) return;
    var selection = window.getSelection();
    var text = selection ? selection.toString().trim() : "";
    if (!text || !inArticleText(selection.anchorNode)) return;
    event.preventDefault();
    openDialog(text, surroundingSentence(selection));
  });

  document.querySelectorAll(".js-suggest-correction").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var selection = window.getSelection();
      var text = selection && inArticleText(selection.anchorNode) ? selection.toString().trim() : "";
      openDialog(text, text ? surroundingSentence(selection) : "");
    });
  });

  closeButton.addEventListener("click", function () { dialog.close(); });

  function sent(message) {
    // Stay open until the reader closes it: the thanks is read out, and nothing vanishes on a timer.
    status.textContent = message;
    form.reset();
    fields.hidden = true;
    sendButton.hidden = true;
    closeButton.textContent = msg("close", "Close");
    closeButton.focus();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (sending) return;  // one suggestion per click, however impatient
    sending = true;
    sendButton.disabled = true;
    status.textContent = msg("sending", "Sending…");
    fetch("/csrf-token", { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        form.elements.csrf_token.value = data.token;
        return fetch(form.action, {
          method: "POST",
          body: new FormData(form),
          credentials: "same-origin",
          headers: { "Accept": "application/json" }
        });
      })
      .then(function (response) {
        return response.json().catch(function () { return { ok: false, message: "" }; })
          .then(function (data) { return { response: response, data: data }; });
      })
      .then(function (result) {
        if (result.data.ok) {
          sent(result.data.message);
        } else if (result.response.status === 429) {
          status.textContent = msg("tooMany", "Too many suggestions in a short time. Please try again in a minute.");
        } else {
          var errors = result.data.errors || {};
          var first = Object.keys(errors).map(function (k) { return errors[k][0]; })[0];
          status.textContent = first || msg("invalid", "That could not be sent. Please check the fields and try again.");
        }
      })
      .catch(function () { status.textContent = msg("offline", "That could not be sent. Please check your connection."); })
      .then(function () { sending = false; sendButton.disabled = false; });
  });
})();
