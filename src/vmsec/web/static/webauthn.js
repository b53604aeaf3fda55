// vmsec: WebAuthn ceremonies for the account page (register) and the sign-in page (second factor).
// No inline script (the CSP allows only 'self'); the CSRF token comes from <meta name="csrf-token">.
"use strict";
(function () {
  function b64urlToBuf(s) {
    const pad = "=".repeat((4 - (s.length % 4)) % 4);
    const bin = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
  }
  function bufToB64url(buf) {
    let bin = "";
    new Uint8Array(buf).forEach((b) => { bin += String.fromCharCode(b); });
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function csrf() {
    const m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  async function post(url, body) {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: body === undefined ? "{}" : JSON.stringify(body),
    });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { throw new Error(data.detail || ("HTTP " + r.status)); }
    return data;
  }
  function say(text) {
    const out = document.getElementById("webauthn-status");
    if (out) { out.textContent = text; }
  }
  async function register() {
    const o = await post("/account/webauthn/options");
    o.challenge = b64urlToBuf(o.challenge);
    o.user.id = b64urlToBuf(o.user.id);
    (o.excludeCredentials || []).forEach((c) => { c.id = b64urlToBuf(c.id); });
    const cred = await navigator.credentials.create({ publicKey: o });
    const name = (document.getElementById("webauthn-name") || {}).value || "security key";
    await post("/account/webauthn", {
      name: name,
      credential: {
        id: cred.id, rawId: bufToB64url(cred.rawId), type: cred.type,
        response: {
          clientDataJSON: bufToB64url(cred.response.clientDataJSON),
          attestationObject: bufToB64url(cred.response.attestationObject),
          transports: cred.response.getTransports ? cred.response.getTransports() : [],
        },
        clientExtensionResults: cred.getClientExtensionResults(),
      },
    });
    say("Authenticator registered.");
    window.location.reload();
  }
  async function signIn() {
    const o = await post("/login/webauthn/options");
    o.challenge = b64urlToBuf(o.challenge);
    (o.allowCredentials || []).forEach((c) => { c.id = b64urlToBuf(c.id); });
    const a = await navigator.credentials.get({ publicKey: o });
    await post("/login/webauthn", {
      credential: {
        id: a.id, rawId: bufToB64url(a.rawId), type: a.type,
        response: {
          clientDataJSON: bufToB64url(a.response.clientDataJSON),
          authenticatorData: bufToB64url(a.response.authenticatorData),
          signature: bufToB64url(a.response.signature),
          userHandle: a.response.userHandle ? bufToB64url(a.response.userHandle) : null,
        },
        clientExtensionResults: a.getClientExtensionResults(),
      },
    });
    const next = document.body.getAttribute("data-next") || "/";
    window.location.assign(next.charAt(0) === "/" && next.charAt(1) !== "/" ? next : "/");
  }
  document.addEventListener("DOMContentLoaded", function () {
    const reg = document.getElementById("webauthn-register");
    if (reg) { reg.addEventListener("click", () => register().catch((e) => say("Failed: " + e.message))); }
    const login = document.getElementById("webauthn-login");
    if (login) { login.addEventListener("click", () => signIn().catch((e) => say("Failed: " + e.message))); }
  });
})();
