import { useCallback, useEffect, useMemo, useState } from "react";
import { Api, ApiError, loadConfig, storedKey, type Config } from "./api";
import { ApiContext } from "./hooks";
import { href, useRoute } from "./router";
import { SessionsView } from "./views/Sessions";
import { SessionView } from "./views/Session";
import { SnapshotView } from "./views/Snapshot";
import { DiffView } from "./views/Diff";

export function App() {
  const [config, setConfig] = useState<Config | null>(null);
  const [key, setKey] = useState<string | null>(() => storedKey.get());
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    loadConfig().then(setConfig);
  }, []);

  const signOut = useCallback((message: string | null) => {
    storedKey.clear();
    setKey(null);
    setNotice(message);
  }, []);

  const api = useMemo(() => {
    if (!config || !key) return null;
    return new Api(config.api_url, key, () =>
      signOut("The API refused this key (401 unauthorized): it is wrong, revoked, or of another deployment. Sign in again."),
    );
  }, [config, key, signOut]);

  if (!config) return <main className="center">Loading…</main>;
  if (!api || !key) {
    return (
      <SignIn
        config={config}
        notice={notice}
        onSignedIn={(k) => {
          storedKey.set(k);
          setNotice(null);
          setKey(k);
        }}
      />
    );
  }
  return (
    <ApiContext.Provider value={{ api, config }}>
      <Shell onSignOut={() => signOut(null)} />
    </ApiContext.Provider>
  );
}

function Shell({ onSignOut }: { onSignOut: () => void }) {
  const route = useRoute();
  let view;
  switch (route.name) {
    case "session":
      view = <SessionView key={route.session} sessionId={route.session} />;
      break;
    case "snapshot":
      view = <SnapshotView key={route.snapshot} sessionId={route.session} snapshotId={route.snapshot} />;
      break;
    case "diff":
      view = <DiffView sessionId={route.session} from={route.from} to={route.to} />;
      break;
    default:
      view = <SessionsView />;
  }
  return (
    <>
      <header className="top">
        <a className="brand" href={href.sessions()}>
          Kontex
        </a>
        <nav aria-label="main">
          <a href={href.sessions()}>Sessions</a>
        </nav>
        <button type="button" className="link" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main id="main">{view}</main>
    </>
  );
}

function SignIn({
  config,
  notice,
  onSignedIn,
}: {
  config: Config;
  notice: string | null;
  onSignedIn: (key: string) => void;
}) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(notice);
  const [busy, setBusy] = useState(false);

  useEffect(() => setError(notice), [notice]);

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    const key = value.trim();
    if (!key) return;
    setBusy(true);
    setError(null);
    try {
      await new Api(config.api_url, key).get("/v1/sessions?limit=1");
      onSignedIn(key);
    } catch (e) {
      const err = e as ApiError;
      setError(
        err.status === 401
          ? "The API refused this key (401 unauthorized): check that you copied the whole key (kontex_…) and that it is not revoked."
          : `Could not sign in: ${err.message}`,
      );
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="center">
      <form className="card signin" onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Kontex</h1>
        <p className="muted">Sign in with an API key. It stays in this tab only (session storage).</p>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autoComplete="off"
          autoFocus
          placeholder="kontex_…"
          value={value}
          onChange={(e) => setValue(e.target.value)}
        />
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy || !value.trim()}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
