// Signing in: an API key pasted into the page, or Cognito's hosted UI (OAuth 2.0 authorization
// code with PKCE, S256, RFC 7636): no key to paste.
//
// Credentials live in sessionStorage (this tab only) and travel only in request headers
// (X-API-Key or Authorization: Bearer) or, for WebSockets, in the first frame: never in a URL.
// The one URL that briefly holds something is the hosted UI's redirect back here with a one-time
// `code`, which the page exchanges at once (with the verifier only this tab has) and removes from
// the address bar.

const KEY_STORAGE = "ytr.apiKey";
const TOKENS_STORAGE = "ytr.tokens"; // {access_token, refresh_token, id_token, expires_at}
const PKCE_STORAGE = "ytr.pkce"; // {verifier, state, hash}: one sign-in under way in this tab
const REFRESH_MARGIN_MS = 60_000; // refresh an access token this long before it expires

function read(name) {
  try {
    return sessionStorage.getItem(name);
  } catch {
    return null;
  }
}

function readJson(name) {
  try {
    return JSON.parse(read(name) || "null");
  } catch {
    return null;
  }
}

// --------------------------------------------------------------------------- PKCE

/** Bytes as base64url without padding (RFC 4648 §5), as PKCE and JWTs use it. */
export function base64url(bytes) {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A fresh code verifier: 32 random bytes, 43 characters of [A-Za-z0-9_-] (RFC 7636 §4.1). */
export function randomVerifier() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** The S256 code challenge of a verifier: BASE64URL(SHA256(ASCII(verifier))) (RFC 7636 §4.2). */
export async function pkceChallenge(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(digest);
}

/** Where the hosted UI sends the browser back: this page (registered as a callback URL). */
export function redirectUri() {
  return `${location.origin}/`;
}

// --------------------------------------------------------------------------- credentials

/** The credentials of this tab: an API key, or Cognito tokens (with the config to refresh them). */
export const credentials = {
  key: null,
  tokens: null,
  cognito: null, // the page config's `cognito` (hosted_ui_url, client_id, scope) when offered
  renewing: null,

  load() {
    this.key = read(KEY_STORAGE);
    this.tokens = readJson(TOKENS_STORAGE);
    if (this.tokens && typeof this.tokens.access_token !== "string") this.tokens = null;
    return this.kind;
  },

  get kind() {
    if (this.tokens) return "token";
    return this.key ? "key" : null;
  },

  setKey(key) {
    this.key = key;
    this.tokens = null;
    sessionStorage.setItem(KEY_STORAGE, key);
    sessionStorage.removeItem(TOKENS_STORAGE);
  },

  setTokens(tokens) {
    this.tokens = tokens;
    this.key = null;
    sessionStorage.setItem(TOKENS_STORAGE, JSON.stringify(tokens));
    sessionStorage.removeItem(KEY_STORAGE);
  },

  clear() {
    this.key = null;
    this.tokens = null;
    sessionStorage.removeItem(KEY_STORAGE);
    sessionStorage.removeItem(TOKENS_STORAGE);
  },

  /** The request headers that authenticate (none when signed out). */
  headers() {
    if (this.tokens) return { Authorization: `Bearer ${this.tokens.access_token}` };
    if (this.key) return { "X-API-Key": this.key };
    return {};
  },

  /** The WebSocket's first frame. */
  authFrame() {
    if (this.tokens) return { type: "auth", token: this.tokens.access_token };
    return { type: "auth", api_key: this.key || "" };
  },

  /** Who is signed in, for the top bar: the email in the ID token, or "API key". */
  label() {
    if (!this.tokens) return this.key ? "Signed in with an API key (this tab only)" : "";
    const claims = jwtClaims(this.tokens.id_token);
    const who = typeof claims?.email === "string" ? claims.email : "your account";
    return `Signed in as ${who}`;
  },

  /** Before a request: refresh an access token about to expire. */
  async fresh() {
    const tokens = this.tokens;
    if (tokens && tokens.refresh_token && Date.now() > Number(tokens.expires_at || 0) - REFRESH_MARGIN_MS) {
      await this.renew();
    }
  },

  /**
   * A refused token: refresh it once (concurrent callers share one refresh). True when a new
   * access token is there to retry with; false for an API key or when the refresh failed.
   */
  async renew() {
    if (!this.tokens?.refresh_token || !this.cognito) return false;
    if (!this.renewing) {
      const before = this.tokens;
      this.renewing = tokenRequest(this.cognito, {
        grant_type: "refresh_token",
        client_id: this.cognito.client_id,
        refresh_token: before.refresh_token,
      })
        .then((tokens) => {
          if (this.tokens === before) this.setTokens({ ...tokens, refresh_token: tokens.refresh_token || before.refresh_token });
          return true;
        })
        .catch(() => false)
        .finally(() => {
          this.renewing = null;
        });
    }
    return this.renewing;
  },
};

/** The claims of a JWT, only to show who is signed in (the server verifies tokens, not the page). */
function jwtClaims(token) {
  try {
    const payload = String(token || "").split(".")[1] || "";
    const binary = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

// --------------------------------------------------------------------------- the hosted UI

/** Go to the hosted UI's sign-in page, with a fresh verifier and state kept in this tab. */
export async function startSignIn(cognito) {
  const verifier = randomVerifier();
  const state = randomVerifier();
  const challenge = await pkceChallenge(verifier);
  sessionStorage.setItem(PKCE_STORAGE, JSON.stringify({ verifier, state, hash: location.hash }));
  const url = new URL("/oauth2/authorize", cognito.hosted_ui_url);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: cognito.client_id,
    redirect_uri: redirectUri(),
    scope: cognito.scope,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  location.assign(url.href);
}

/**
 * Back from the hosted UI (`?code=...&state=...`, or `?error=...`): the code exchanged for tokens.
 * Resolves to the tokens, or to null when this URL is not such an answer; throws on a refusal.
 */
export async function finishSignIn(cognito) {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return null;
  const pending = readJson(PKCE_STORAGE);
  sessionStorage.removeItem(PKCE_STORAGE);
  // The one-time code leaves the address bar (and the history) at once.
  history.replaceState(null, "", location.pathname + (pending?.hash || ""));
  if (params.has("error")) {
    throw new Error(`Sign-in did not complete: ${params.get("error_description") || params.get("error")}`);
  }
  if (!cognito) throw new Error("This server does not offer sign-in with an account.");
  if (!pending || !pending.verifier || pending.state !== params.get("state")) {
    throw new Error("That sign-in answer was not for this tab's request; sign in again.");
  }
  return tokenRequest(cognito, {
    grant_type: "authorization_code",
    client_id: cognito.client_id,
    code: params.get("code"),
    redirect_uri: redirectUri(),
    code_verifier: pending.verifier,
  });
}

/** POST the hosted UI's token endpoint (form-encoded, no credentials of the browser's). */
async function tokenRequest(cognito, fields) {
  let response;
  try {
    response = await fetch(new URL("/oauth2/token", cognito.hosted_ui_url), {
      method: "POST",
      body: new URLSearchParams(fields),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new Error("Could not reach the sign-in service.");
  }
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = {};
  }
  if (!response.ok || typeof body.access_token !== "string") {
    throw new Error(`Sign-in was refused: ${body.error_description || body.error || response.status}`);
  }
  return {
    access_token: body.access_token,
    id_token: typeof body.id_token === "string" ? body.id_token : null,
    refresh_token: typeof body.refresh_token === "string" ? body.refresh_token : null,
    expires_at: Date.now() + 1000 * (Number(body.expires_in) || 3600),
  };
}

/** The hosted UI's sign-out page, which comes back here (registered as a sign-out URL). */
export function signOutUrl(cognito) {
  const url = new URL("/logout", cognito.hosted_ui_url);
  url.search = new URLSearchParams({ client_id: cognito.client_id, logout_uri: redirectUri() }).toString();
  return url.href;
}
