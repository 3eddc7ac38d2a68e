// The support page's amount chooser and card form (and finishing an unfinished pledge), the
// pledge page's card update, and the receipt's print button. Configuration comes from data- attributes; no inline scripts.
// Card details go from Stripe.js (or, offline, localstripe's fake of it) straight to Stripe;
// this script only passes the SetupIntent's id back to the server.
(function () {
  "use strict";

  // -- the amount chooser ---------------------------------------------------------------------

  function parseMajor(text) {
    var match = /^\s*(\d{1,9})(?:[.,](\d{1,2}))?\s*$/.exec(text || "");
    if (!match) return null;
    return parseInt(match[1], 10) * 100 + parseInt(((match[2] || "0") + "0").slice(0, 2), 10);
  }

  function chosen(form) {
    var currency = form.querySelector("input[name=currency]:checked");
    var amount = form.querySelector("input[name=amount]:checked");
    var other = form.querySelector("[data-other-amount]");
    var options = JSON.parse(form.getAttribute("data-options") || "{}");
    var code = currency ? currency.value : Object.keys(options)[0];
    var value = amount && amount.value !== "other" ? parseInt(amount.value, 10)
                                                    : parseMajor(other ? other.value : "");
    return { currency: code, option: options[code], amount: value };
  }

  // Amounts are formatted by the server (option.labels); one the reader typed, by the
  // browser with the same CLDR rules: cents only when there are some.
  function label(option, amount, currency) {
    if (option.labels && option.labels[String(amount)]) return option.labels[String(amount)];
    var lang = document.documentElement.lang || "en";
    var cents = amount % 100 !== 0;
    var digits = cents ? 2 : 0;
    return new Intl.NumberFormat(lang, { style: "currency", currency: currency,
      minimumFractionDigits: digits, maximumFractionDigits: digits }).format(amount / 100);
  }

  function drawAmounts(form, option, currency) {
    var list = form.querySelector("[data-amount-list]");
    if (!list || !option) return;
    var checked = list.querySelector("input[name=amount]:checked");
    var keepOther = checked && checked.value === "other";
    list.textContent = "";
    option.suggested.forEach(function (value, index) {
      var item = document.createElement("label");
      item.className = "amount-choice";
      var input = document.createElement("input");
      input.type = "radio"; input.name = "amount"; input.value = String(value);
      input.checked = !keepOther && index === 0;
      var sum = document.createElement("span");
      sum.className = "amount-choice__sum"; sum.textContent = label(option, value, currency);
      item.appendChild(input); item.appendChild(sum);
      if (index === 0) {
        var note = document.createElement("span");
        note.className = "amount-choice__note"; note.textContent = form.getAttribute("data-coffee") || "";
        item.appendChild(note);
      }
      list.appendChild(item);
    });
    var otherItem = document.createElement("label");
    otherItem.className = "amount-choice";
    var otherInput = document.createElement("input");
    otherInput.type = "radio"; otherInput.name = "amount"; otherInput.value = "other";
    otherInput.checked = keepOther; otherInput.setAttribute("data-other-choice", "");
    var otherSum = document.createElement("span");
    otherSum.className = "amount-choice__sum"; otherSum.textContent = form.getAttribute("data-other") || "";
    otherItem.appendChild(otherInput); otherItem.appendChild(otherSum);
    list.appendChild(otherItem);
    var bounds = form.querySelector("[data-bounds]");
    var template = form.getAttribute("data-bounds");
    if (bounds && template) {
      bounds.textContent = template.replace("{min}", label(option, option.min, currency))
                                   .replace("{max}", label(option, option.max, currency));
    }
    var ownLabel = form.querySelector("label[for=other_amount]");
    var ownTemplate = form.getAttribute("data-own-amount");
    if (ownLabel && ownTemplate) ownLabel.textContent = ownTemplate.replace("{currency}", currency);
  }

  function updateChoice(form) {
    var choice = chosen(form);
    var button = form.querySelector("#pledge-submit");
    var template = form.getAttribute("data-button");
    if (button && template && choice.option) {
      button.textContent = choice.amount ? template.replace("{amount}", label(choice.option, choice.amount, choice.currency))
                                         : template.replace("{amount}", "…");
    }
    var login = form.querySelector("[data-login-link]");
    if (login && choice.amount) {
      var back = "/support?currency=" + encodeURIComponent(choice.currency) + "&amount=" + choice.amount;
      login.href = "/login?next=" + encodeURIComponent(back);
    }
  }

  function setUpChooser(form) {
    form.querySelectorAll("[data-no-js]").forEach(function (el) { el.hidden = true; });
    form.addEventListener("change", function (event) {
      var target = event.target;
      if (target.hasAttribute("data-currency")) {
        var options = JSON.parse(form.getAttribute("data-options") || "{}");
        drawAmounts(form, options[target.value], target.value);
      }
      updateChoice(form);
    });
    form.addEventListener("input", function (event) {
      if (event.target.hasAttribute("data-other-amount")) {
        var other = form.querySelector("[data-other-choice]");
        if (other) other.checked = true;
        updateChoice(form);
      }
    });
    updateChoice(form);
  }

  document.querySelectorAll("#pledge-form, [data-amount-form]").forEach(setUpChooser);

  // -- talking to our server ------------------------------------------------------------------

  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return { ok: false }; });
    }, function () { return { ok: false }; });
  }

  function pause(ms) {
    return new Promise(function (resolve) { window.setTimeout(resolve, ms); });
  }

  // Another request of this reader is calling Stripe for the pledge: the server answers 202
  // {"status": "processing"} at once, and the page asks again (up to about 20 s).
  async function untilDone(first, again) {
    var answer = await first();
    for (var tries = 0; answer.ok && answer.status === "processing" && tries < 40; tries++) {
      await pause(500);
      answer = await again();
    }
    if (answer.ok && answer.status === "processing") return { ok: false };
    return answer;
  }

  function newAttempt() {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // -- the card forms -------------------------------------------------------------------------

  function setUpCard(form) {
    var message = form.querySelector("#pledge-message");
    var status = form.querySelector("#pledge-status");
    var button = form.querySelector("button[type=submit][data-js-only]");
    var csrf = form.getAttribute("data-csrf");

    function show(text) {
      status.textContent = "";
      message.textContent = text || form.getAttribute("data-failed");
      message.hidden = false;
      button.disabled = false;
    }
    function working(text) {
      message.hidden = true;
      status.textContent = text;
    }

    if (typeof window.Stripe !== "function") {
      show(form.getAttribute("data-no-script"));
      button.disabled = true;
      return;
    }
    button.hidden = false;
    var stripe = window.Stripe(form.getAttribute("data-publishable-key"));
    var card = stripe.elements().create("card");
    card.mount("#card-element");

    function billing() {
      var details = { email: form.getAttribute("data-email") };
      if (form.getAttribute("data-name")) details.name = form.getAttribute("data-name");
      return details;
    }

    async function confirmCard(secret) {
      var result = await stripe.confirmCardSetup(secret, {
        payment_method: { card: card, billing_details: billing() }
      });
      if (!result.error) return result.setupIntent;
      var intent = result.error.setup_intent;
      if (intent && intent.status === "succeeded") return intent;  // a retried, done setup
      // Stripe's words for what happened to the card, then ours for what to do next
      var hint = form.getAttribute("data-card-hint");
      throw new Error([result.error.message, hint].filter(Boolean).join(" "));
    }

    function refreshed() {
      return post(form.getAttribute("data-refresh-url"), csrf, {});
    }

    // The server's part is done: authenticate the payment if the bank asks, then go on.
    async function settle(done) {
      done = await untilDone(function () { return done; }, refreshed);
      while (done.ok && done.status === "requires_action") {
        working(form.getAttribute("data-authenticating"));
        var paid = await stripe.confirmCardPayment(done.client_secret);
        done = await untilDone(refreshed, refreshed);
        if (paid.error && done.ok && done.status === "requires_action") throw new Error(paid.error.message);
      }
      if (!done.ok) throw new Error(done.message);
      return done.redirect;
    }

    async function pledge() {
      var choice = {
        currency: chosen(form).currency,
        amount: (form.querySelector("input[name=amount]:checked") || {}).value || "",
        other_amount: (form.querySelector("[data-other-amount]") || {}).value || ""
      };
      function start() {
        return post(form.getAttribute("data-start-url"), csrf, Object.assign(
          { attempt: form.getAttribute("data-attempt") }, choice));
      }
      var started = await untilDone(start, start);
      if (!started.ok) throw new Error(started.message);
      var intent = await confirmCard(started.client_secret);
      // the amount goes along again: the server refuses it if another window changed it
      return settle(await post(form.getAttribute("data-subscribe-url"), csrf,
                               Object.assign({ setup_intent: intent.id }, choice)));
    }

    // An unfinished pledge: the bank's confirmation again, or another card for the first
    // payment (the card field shows when the server says one is needed).
    async function finish() {
      var answer = await post(form.getAttribute("data-finish-url"), csrf, {
        attempt: form.getAttribute("data-attempt")
      });
      if (answer.ok && answer.status === "needs_card") {
        var box = form.querySelector("[data-card-box]");
        if (box && box.hidden) {
          box.hidden = false;
          button.textContent = form.getAttribute("data-card-button") || button.textContent;
          throw new Error(form.getAttribute("data-need-card"));
        }
        var intent = await confirmCard(answer.client_secret);
        answer = await post(form.getAttribute("data-finish-card-url"), csrf, { setup_intent: intent.id });
      }
      return settle(answer);
    }

    async function updateCard() {
      var started = await post(form.getAttribute("data-start-url"), csrf, {
        attempt: form.getAttribute("data-attempt")
      });
      if (!started.ok) throw new Error(started.message);
      var intent = await confirmCard(started.client_secret);
      var done = await post(form.getAttribute("data-confirm-url"), csrf, { setup_intent: intent.id });
      if (!done.ok) throw new Error(done.message);
      return done.redirect;
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (button.disabled) return;  // one try at a time: a double click sends nothing more
      button.disabled = true;
      working(form.getAttribute("data-working"));
      var runs = { start: pledge, finish: finish, update: updateCard };
      var run = runs[form.getAttribute("data-card")] || updateCard;
      run().then(function (next) {
        window.location.assign(next);
      }, function (error) {
        form.setAttribute("data-attempt", newAttempt());  // the next try gets a new SetupIntent
        show(error && error.message);
      });
    });
  }

  document.querySelectorAll("form[data-card]").forEach(setUpCard);

  // -- the receipt ----------------------------------------------------------------------------

  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
})();
