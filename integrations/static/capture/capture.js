/*! Switchyard visitor capture. No dependencies.
 * <script src="https://switchyard.example/capture.js" data-key="SITE_KEY" defer></script>
 * Records a page view on load; window.switchyard.identify(email, traits) and
 * .track(event, properties) for "Product Viewed", "Product List Viewed", "Product Added",
 * "Checkout Started" and "Order Completed"; a <form data-switchyard-capture> sends its email
 * field on submit. Requests use fetch(…, {keepalive: true}) (or sendBeacon), so nothing is lost
 * when the visitor navigates away. */
(function (w, d) {
  "use strict";
  var script = d.currentScript || d.querySelector("script[data-key][src*='capture.js']");
  if (!script || w.__switchyardCapture) return;
  w.__switchyardCapture = true;
  var key = script.getAttribute("data-key") || "";
  var endpoint = new URL(script.src, location.href).origin + "/capture/events?key=" + encodeURIComponent(key);
  var COOKIE = "sy_aid";
  var queue = [];
  var timer = null;

  function hex(n) {
    var bytes = new Uint8Array(n);
    (w.crypto || w.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function anonymousId() {
    var match = d.cookie.match(/(?:^|;\s*)sy_aid=([A-Za-z0-9_-]{8,64})/);
    var id = match ? match[1] : hex(16);
    // First-party, renewed on every visit: a year from the last one.
    d.cookie = COOKIE + "=" + id + "; path=/; max-age=31536000; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : "");
    return id;
  }
  var aid = anonymousId();

  function base(type) {
    return {
      type: type, messageId: hex(12), timestamp: new Date().toISOString(),
      url: location.href, title: d.title || "", referrer: d.referrer || ""
    };
  }

  function post(body, attempt) {
    try {
      if (w.fetch) {
        w.fetch(endpoint, {
          method: "POST", body: body, keepalive: true, credentials: "omit", mode: "cors",
          headers: { "Content-Type": "text/plain" }
        }).then(function (r) {
          if ((r.status >= 500 || r.status === 429) && attempt < 2) retry(body, attempt);
        }, function () { if (attempt < 2) retry(body, attempt); });
        return;
      }
    } catch (e) { /* fall through to sendBeacon */ }
    if (navigator.sendBeacon) navigator.sendBeacon(endpoint, new Blob([body], { type: "text/plain" }));
  }

  function retry(body, attempt) {
    // The same messageIds: Switchyard keeps one copy whatever arrives twice.
    setTimeout(function () { post(body, attempt + 1); }, 1000 * (attempt + 1));
  }

  function flush() {
    if (timer) { clearTimeout(timer); timer = null; }
    while (queue.length) {
      var events = queue.splice(0, 20);
      post(JSON.stringify({ anonymousId: aid, sentAt: new Date().toISOString(), events: events }), 0);
    }
  }

  function add(event, now) {
    queue.push(event);
    if (now || queue.length >= 20) flush();
    else if (!timer) timer = setTimeout(flush, 50);
  }

  var api = {
    anonymousId: function () { return aid; },
    page: function () { add(base("page")); },
    track: function (event, properties) {
      var e = base("track");
      e.event = String(event);
      e.properties = properties || {};
      add(e, e.event === "Order Completed" || e.event === "Checkout Started");
    },
    identify: function (email, traits) {
      var e = base("identify");
      e.email = String(email || "");
      e.traits = traits || {};
      add(e, true);
    },
    flush: flush
  };

  function field(form, names) {
    for (var i = 0; i < names.length; i++) {
      var input = form.querySelector(names[i]);
      if (input && input.value) return input.value.trim();
    }
    return "";
  }

  d.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || !form.hasAttribute || !form.hasAttribute("data-switchyard-capture")) return;
    var email = field(form, ["input[type=email]", "input[name=email]"]);
    if (!email) return;
    var traits = {};
    var first = field(form, ["input[name=first_name]", "input[name=firstName]"]);
    var last = field(form, ["input[name=last_name]", "input[name=lastName]"]);
    if (first) traits.first_name = first;
    if (last) traits.last_name = last;
    api.identify(email, traits);
  }, true);

  w.addEventListener("pagehide", flush);
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") flush(); });

  // Calls made before the script loaded: window.switchyard = [["track", "Product Viewed", {…}], …]
  var early = Array.isArray(w.switchyard) ? w.switchyard : [];
  w.switchyard = api;
  api.page();
  for (var i = 0; i < early.length; i++) {
    var call = early[i];
    if (call && api[call[0]]) api[call[0]].apply(api, call.slice(1));
  }
})(window, document);
