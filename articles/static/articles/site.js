/* BRE page behaviour: star ratings and "Not interested" saved with fetch(), and the read beacon.
   Every form also works without JavaScript (plain POST, then a redirect back). */
(function () {
  "use strict";

  function announce(text) {
    var live = document.getElementById("live-status");
    if (live) { live.textContent = ""; window.setTimeout(function () { live.textContent = text; }, 30); }
  }

  function postForm(form, data) {
    return fetch(form.action, {
      method: "POST",
      body: data || new FormData(form),
      headers: { "Accept": "application/json", "X-Requested-With": "fetch" },
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          if (body.error) { throw new Error(body.error); }
          if (response.status === 403) { throw new Error("Your session expired: reload the page and try again."); }
          throw new Error("Could not save (the server said " + response.status + "). Please try again.");
        }
        return body;
      });
    });
  }

  /* Star rating: save as soon as a star is chosen (click, or arrow keys then Enter/Space). */
  function setUpRating(form) {
    var status = form.querySelector(".rating__status");
    var saved = (form.querySelector("input[name=stars]:checked") || {}).value || null;
    function save() {
      var chosen = form.querySelector("input[name=stars]:checked");
      if (!chosen || chosen.value === saved) { return; }
      status.classList.remove("is-error");
      status.textContent = "Saving…";
      postForm(form).then(function (body) {
        saved = chosen.value;
        status.textContent = "Saved";
        announce(body.message || "Rating saved.");
        form.dataset.saved = saved;
        var prediction = document.querySelector("[data-prediction]");
        if (prediction) { prediction.hidden = true; }
        onboardingProgress(body.rating_count);
      }).catch(function (error) {
        status.classList.add("is-error");
        status.textContent = error.message;
        announce(error.message);
      });
    }
    form.addEventListener("change", save);
    form.addEventListener("submit", function (event) { event.preventDefault(); save(); });
  }

  function onboardingProgress(count) {
    var box = document.querySelector("[data-onboarding]");
    if (!box || typeof count !== "number") { return; }
    var needed = parseInt(box.dataset.needed, 10);
    var counter = box.querySelector("[data-onboarding-count]");
    var bar = box.querySelector("progress");
    if (counter) { counter.textContent = String(Math.min(count, needed)); }
    if (bar) { bar.value = Math.min(count, needed); }
    if (count >= needed) { box.querySelector("[data-onboarding-done]").hidden = false; }
  }

  /* "Not interested": in a grid the card leaves; on a detail page the button toggles. */
  function setUpNotInterested(form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button");
      button.disabled = true;
      postForm(form).then(function (body) {
        announce(body.message);
        var card = form.closest(".card");
        if (card && body.not_interested) {
          card.classList.add("is-leaving");
          window.setTimeout(function () { card.remove(); }, 260);
          return;
        }
        var undo = form.querySelector("input[name=undo]");
        if (body.not_interested && !undo) {
          undo = document.createElement("input");
          undo.type = "hidden"; undo.name = "undo"; undo.value = "1";
          form.appendChild(undo);
          button.textContent = "Marked not interested · Undo";
          button.setAttribute("aria-pressed", "true");
        } else if (!body.not_interested && undo) {
          undo.remove();
          button.textContent = "Not interested";
          button.setAttribute("aria-pressed", "false");
        }
      }).catch(function (error) { announce(error.message); window.alert(error.message); })
        .then(function () { button.disabled = false; });
    });
  }

  /* Read beacon: seconds the page was visible and how far the reader scrolled, sent when the page
     is hidden. sendBeacon cannot set headers, so the CSRF token travels as a form field. */
  function setUpBeacon() {
    var url = document.body.dataset.beaconUrl;
    if (!url || !navigator.sendBeacon) { return; }
    var csrf = document.body.dataset.csrf;
    var visibleMs = 0;
    var visibleSince = document.visibilityState === "visible" ? performance.now() : null;
    var progress = 0;
    function measure() {
      var doc = document.documentElement;
      var height = Math.max(doc.scrollHeight, document.body.scrollHeight);
      var seen = window.scrollY + window.innerHeight;
      progress = Math.max(progress, height > 0 ? Math.min(1, seen / height) : 1);
    }
    function send() {
      if (visibleSince !== null) { visibleMs += performance.now() - visibleSince; visibleSince = null; }
      measure();
      var data = new FormData();
      data.append("csrfmiddlewaretoken", csrf);
      data.append("dwell_seconds", (visibleMs / 1000).toFixed(1));
      data.append("progress", progress.toFixed(3));
      navigator.sendBeacon(url, data);
    }
    measure();
    window.addEventListener("scroll", measure, { passive: true });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") { send(); }
      else { visibleSince = performance.now(); }
    });
    window.addEventListener("pagehide", function () { if (visibleSince !== null) { send(); } });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.js-rate").forEach(setUpRating);
    document.querySelectorAll("form.js-not-interested").forEach(setUpNotInterested);
    setUpBeacon();
  });
})();
