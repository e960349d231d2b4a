/* Proof of work for the tip line's forms, as progressive enhancement: without this
   script (or without WebCrypto) the form is still sent, and the server applies the
   slower path for browsers without JavaScript. Finds a nonce such that
   SHA-256(challenge + nonce) starts with as many zero bits as the challenge asks. */
(function () {
  "use strict";
  var subtle = window.crypto && window.crypto.subtle;
  if (!subtle || !window.TextEncoder || !window.Promise) {
    return;
  }
  var encoder = new TextEncoder();
  var BATCH = 256;

  function zeroBits(buffer) {
    var bytes = new Uint8Array(buffer);
    var count = 0;
    for (var i = 0; i < bytes.length; i += 1) {
      if (bytes[i] === 0) {
        count += 8;
        continue;
      }
      var byte = bytes[i];
      while ((byte & 0x80) === 0) {
        count += 1;
        byte <<= 1;
      }
      return count;
    }
    return count;
  }

  function solve(challenge) {
    var difficulty = parseInt(challenge.split(".")[2], 10) || 0;
    function batch(start) {
      var digests = [];
      for (var n = start; n < start + BATCH; n += 1) {
        digests.push(subtle.digest("SHA-256", encoder.encode(challenge + n)));
      }
      return Promise.all(digests).then(function (results) {
        for (var i = 0; i < results.length; i += 1) {
          if (zeroBits(results[i]) >= difficulty) {
            return String(start + i);
          }
        }
        return batch(start + BATCH);
      });
    }
    return batch(0);
  }

  function enhance(form) {
    var challenge = form.querySelector("input[name=challenge]");
    var nonce = form.querySelector("input[name=nonce]");
    var status = form.querySelector(".pow-status");
    if (!challenge || !nonce) {
      return;
    }
    var waiting = false;
    var done = solve(challenge.value).then(function (found) {
      nonce.value = found;
      if (waiting && status) {
        status.textContent = status.getAttribute("data-ready");
      }
      return found;
    });
    form.addEventListener("submit", function (event) {
      if (nonce.value) {
        return;
      }
      event.preventDefault();
      if (waiting) {
        return;
      }
      waiting = true;
      if (status) {
        status.textContent = status.getAttribute("data-working");
        status.hidden = false;
      }
      done.then(function () {
        form.submit();
      });
    });
  }

  var forms = document.querySelectorAll("form[data-pow]");
  for (var i = 0; i < forms.length; i += 1) {
    enhance(forms[i]);
  }
})();
