// The sample SPA: MSAL.js (@azure/msal-browser 4.x, redirect flows) signs
// the user in to the local tenant, and each button calls a route of the
// gateway with a token from acquireTokenSilent. The gateway's two
// interactive answers are handled as MSAL.js users do (docs/frontend.md):
//   401 + WWW-Authenticate error="insufficient_claims", claims="<base64>"
//     -> acquireTokenRedirect({scopes, claims}) -> retry;
//   403 {"error":"consent_required"}
//     -> acquireTokenRedirect({scopes, prompt: "consent"}) -> retry.
// A redirect reloads the page: each result is kept in sessionStorage, and
// the route to retry travels in the request's state.
"use strict";

const $ = (id) => document.getElementById(id);

function log(msg) {
  $("log").textContent += new Date().toISOString().slice(11, 19) + " " + msg + "\n";
}

function show(route, status, body) {
  sessionStorage.setItem("result:" + route, JSON.stringify({ status, body }));
  render(route);
}

function render(route) {
  const r = JSON.parse(sessionStorage.getItem("result:" + route) || "null");
  if (!r) return;
  $("status-" + route).textContent = String(r.status);
  let body = r.body;
  try { body = JSON.stringify(JSON.parse(body), null, 2); } catch (e) { /* not JSON */ }
  $("body-" + route).textContent = body;
}

// claimsChallenge returns the decoded claims of a WWW-Authenticate header
// with error="insufficient_claims", or "".
function claimsChallenge(header) {
  if (!header || !/error="insufficient_claims"/.test(header)) return "";
  const m = /claims="([^"]+)"/.exec(header);
  if (!m) return "";
  return atob(m[1].replace(/-/g, "+").replace(/_/g, "/"));
}

async function main() {
  const cfg = await (await fetch("config.json")).json();
  $("msal-version").textContent = msal.version;
  const scopes = [cfg.scope];
  const pca = new msal.PublicClientApplication({
    auth: {
      clientId: cfg.clientId,
      authority: cfg.authority,
      // The local tenant is a host MSAL.js does not know: trust it as an
      // authority (its discovery document is read from it).
      knownAuthorities: [cfg.authorityHost],
      redirectUri: window.location.origin + "/",
      postLogoutRedirectUri: window.location.origin + "/",
    },
    cache: { cacheLocation: "sessionStorage" },
  });
  await pca.initialize();

  let redirect = null;
  try {
    redirect = await pca.handleRedirectPromise();
  } catch (e) {
    log("redirect: " + e);
    $("error").textContent = String(e);
  }
  if (redirect) {
    pca.setActiveAccount(redirect.account);
  } else if (!pca.getActiveAccount() && pca.getAllAccounts().length > 0) {
    pca.setActiveAccount(pca.getAllAccounts()[0]);
  }
  const account = () => pca.getActiveAccount();
  const showAccount = () => { $("account").textContent = account() ? account().username : "nobody"; };
  showAccount();
  for (const r of Object.keys(cfg.routes)) render(r);

  // call calls route with token (else one from acquireTokenSilent). After
  // an interaction (retried), it does not ask again.
  async function call(route, token, retried) {
    $("error").textContent = "";
    if (!account()) {
      $("error").textContent = "sign in first";
      return;
    }
    if (!token) {
      try {
        token = (await pca.acquireTokenSilent({ scopes, account: account() })).accessToken;
      } catch (e) {
        if (e instanceof msal.InteractionRequiredAuthError) {
          log(route + ": silent renewal needs interaction (" + e.errorCode + ")");
          return pca.acquireTokenRedirect({ scopes, account: account(), state: route });
        }
        throw e;
      }
    }
    log(route + ": GET " + cfg.routes[route]);
    const resp = await fetch(cfg.gatewayUrl + cfg.routes[route], { headers: { Authorization: "Bearer " + token } });
    const text = await resp.text();
    show(route, resp.status, text);
    log(route + ": " + resp.status);
    if (retried) return;
    if (resp.status === 401) {
      const claims = claimsChallenge(resp.headers.get("WWW-Authenticate"));
      if (claims) {
        log(route + ": claims challenge " + claims + ": acquireTokenRedirect with claims");
        return pca.acquireTokenRedirect({ scopes, account: account(), claims, state: route });
      }
    }
    if (resp.status === 403) {
      let code = "";
      try { code = JSON.parse(text).error; } catch (e) { /* not JSON */ }
      if (code === "consent_required") {
        log(route + ": consent_required: acquireTokenRedirect with prompt=consent");
        return pca.acquireTokenRedirect({ scopes, account: account(), prompt: "consent", state: route });
      }
    }
  }

  const guard = (f) => () => f().catch((e) => { log(String(e)); $("error").textContent = String(e); });
  $("sign-in").onclick = guard(() => pca.loginRedirect({ scopes }));
  $("sign-out").onclick = guard(() => {
    for (const r of Object.keys(cfg.routes)) sessionStorage.removeItem("result:" + r);
    return pca.logoutRedirect({ account: account() });
  });
  for (const r of Object.keys(cfg.routes)) {
    $("call-" + r).onclick = guard(() => call(r, "", false));
  }

  // Back from an interaction started by a call: retry it with the new token.
  if (redirect && redirect.state && cfg.routes[redirect.state]) {
    log(redirect.state + ": back from the tenant, retrying");
    await guard(() => call(redirect.state, redirect.accessToken, true))();
  }
  document.body.dataset.ready = "true";
}

main().catch((e) => { log(String(e)); $("error").textContent = String(e); });
