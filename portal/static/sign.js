/* A school's Ed25519 key in this browser (WebCrypto, non-extractable, kept in IndexedDB) and
   its signature over the exact statement bytes the server sends. Plain ES2017, no library. */
(function () {
  "use strict";
  var section = document.getElementById("signing");
  if (!section) { return; }
  var school = section.getAttribute("data-school");
  var base = section.getAttribute("data-base");
  var csrf = section.getAttribute("data-csrf");
  var statusLine = document.getElementById("sign-status");
  var keyLine = document.getElementById("browser-key");
  var enrolButton = document.getElementById("enrol");
  var signButton = document.getElementById("sign");

  function say(text) { statusLine.textContent = text; }

  function openStore() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open("examflow-signing-keys", 1);
      request.onupgradeneeded = function () {
        request.result.createObjectStore("keys", { keyPath: "school" });
      };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function stored(mode, action) {
    return openStore().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction("keys", mode);
        var request = action(tx.objectStore("keys"));
        tx.oncomplete = function () { resolve(request.result); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }

  function toBase64(buffer) {
    var bytes = new Uint8Array(buffer), text = "";
    for (var i = 0; i < bytes.length; i++) { text += String.fromCharCode(bytes[i]); }
    return btoa(text);
  }

  function fromBase64(text) {
    var raw = atob(text), bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes;
  }

  function post(path, fields) {
    var body = new URLSearchParams(fields);
    body.append("csrf", csrf);
    return fetch(base + path, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) { return response.json(); });
  }

  function newKeyPair() {
    return crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  }

  function showKey(entry) {
    keyLine.textContent = entry
      ? "本浏览器中的签名密钥：" + entry.keyId + "（指纹 " + entry.fingerprint + "）"
      : "本浏览器中还没有本校的签名密钥。";
  }

  function unsupported() {
    document.getElementById("unsupported").hidden = false;
    keyLine.textContent = "";
  }

  function enrol() {
    enrolButton.disabled = true;
    var pair;
    newKeyPair().then(function (made) {
      pair = made;
      return crypto.subtle.exportKey("raw", made.publicKey);
    }).then(function (raw) {
      return post("/keys", { public_key: toBase64(raw) });
    }).then(function (answer) {
      if (!answer.ok) { throw new Error(answer.message); }
      var entry = { school: school, keyId: answer.key_id, fingerprint: answer.fingerprint,
                    privateKey: pair.privateKey, publicKey: pair.publicKey };
      return stored("readwrite", function (keys) { return keys.put(entry); }).then(function () {
        showKey(entry);
        say(answer.message + " 密钥编号 " + answer.key_id + "，指纹 " + answer.fingerprint);
      });
    }).catch(function (error) {
      say("生成签名密钥失败：" + error.message);
    }).then(function () { enrolButton.disabled = false; });
  }

  function sign() {
    signButton.disabled = true;
    say("正在签署……");
    stored("readonly", function (keys) { return keys.get(school); }).then(function (entry) {
      if (!entry) { throw new Error("本浏览器中没有本校的签名密钥，请先生成签名密钥。"); }
      // the root the school was shown: the server refuses if a review changed the batch since
      var shown = document.getElementById("root").textContent.trim();
      var query = "/statement?key_id=" + encodeURIComponent(entry.keyId) +
                  "&root=" + encodeURIComponent(shown);
      return fetch(base + query, { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (statement) {
          if (!statement.ok) { throw new Error(statement.message); }
          var bytes = fromBase64(statement.message_b64);
          return crypto.subtle.sign({ name: "Ed25519" }, entry.privateKey, bytes)
            .then(function (signature) {
              return post("/signature", {
                key_id: entry.keyId, created: statement.created, digest: statement.digest,
                signature: toBase64(signature)
              });
            });
        });
    }).then(function (answer) {
      if (!answer.ok) { throw new Error(answer.message); }
      say(answer.message);
    }).catch(function (error) {
      say("未签署：" + error.message);
    }).then(function () { signButton.disabled = false; });
  }

  if (!window.crypto || !crypto.subtle || !window.indexedDB) { unsupported(); return; }
  newKeyPair().then(function () {
    enrolButton.disabled = false;
    enrolButton.addEventListener("click", enrol);
    if (signButton) {
      signButton.disabled = false;
      signButton.addEventListener("click", sign);
    }
    return stored("readonly", function (keys) { return keys.get(school); }).then(showKey);
  }, unsupported);
})();
