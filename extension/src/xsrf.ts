/**
 * The Jupyter server's XSRF token, for requests that cannot carry the X-XSRFToken header.
 *
 * An EventSource sends no headers of its own. A JupyterHub single-user server (JupyterHub
 * >= 4.1) accepts its login cookie on a browser's GET that is not a navigation
 * (Sec-Fetch-Mode: cors, as an EventSource's is) only with the XSRF token, which it also
 * takes as the `_xsrf` query argument; without it every event stream answers 403 and the
 * panel can only poll. JupyterLab's own download links carry the token the same way.
 */

/** The `_xsrf` cookie of this page (or of `cookies`), if there is one. */
export function xsrfToken(cookies?: string): string | undefined {
  if (cookies === undefined) {
    try {
      cookies = typeof document === 'undefined' ? '' : document.cookie;
    } catch {
      cookies = '';
    }
  }
  const match = cookies.match(/(?:^|;)\s*_xsrf=([^;]*)/);
  return match ? match[1] : undefined;
}

/** `url` with the token as its `_xsrf` query argument (unchanged when there is no token). */
export function withXsrf(url: string, token: string | undefined = xsrfToken()): string {
  if (!token) {
    return url;
  }
  return `${url}${url.includes('?') ? '&' : '?'}_xsrf=${encodeURIComponent(token)}`;
}
