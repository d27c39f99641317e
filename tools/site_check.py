"""Check the built documentation site in a real browser (headless Chromium over the DevTools protocol).

For every HTML page of the site it loads the page in Chromium, waits for the load event and for
every image to decode, and reports: images that did not load, links to a local file that does not
exist (or to an anchor the target page does not have), resources fetched from the network (the
site must work offline) and JavaScript exceptions. tests/test_docs.py runs it on a fresh build.

Usage: python tools/site_check.py [SITE_DIR] [--shots DIR PAGE...]
       (SITE_DIR defaults to _docs/html/; --shots saves a 1280-wide screenshot of each PAGE, e.g. nbs/07_gnn.html)
"""
import base64, json, re, shutil, subprocess, tempfile, time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

BROWSERS = ("chromium", "chromium-browser", "google-chrome")

# Runs in the page: waits for every image to decode, then describes the page.
INSPECT = r"""(async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  const abs = e => e.src || e.href;
  return JSON.stringify({
    title: document.title,
    imgs: imgs.map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0,
                         in_article: !!i.closest('article'), shown: i.width, natural: i.naturalWidth})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    article_links: [...document.querySelectorAll('article a[href]')].filter(a => !a.classList.contains('headerlink')).length,
    // code a reader sees (not inside a closed <details>) that is wider than its column: it scrolls sideways
    wide_code: [...document.querySelectorAll('article pre')]
                 .filter(p => p.checkVisibility() && p.scrollWidth > p.clientWidth + 1)
                 .map(p => ({width: p.scrollWidth, column: p.clientWidth, line: p.textContent.split('\n')
                   .reduce((a, b) => b.length > a.length ? b : a, '').slice(0, 120)})),
    resources: [...document.querySelectorAll('script[src], link[href], img[src], iframe[src]')]
                 .filter(e => e.tagName !== 'LINK' || /stylesheet|icon|preload/.test(e.rel)).map(abs),
  });
})()"""


def find_browser():
    for b in BROWSERS:
        if p := shutil.which(b): return p
    return None


class Chromium:
    "A headless Chromium and one tab, driven over the DevTools protocol (websocket-client)."

    def __init__(self, exe=None, width=1280, height=1400, timeout=60):
        import websocket          # websocket-client, in the `docs` extra
        self.exe, self.timeout = exe or find_browser(), timeout
        if not self.exe: raise FileNotFoundError(f"none of {BROWSERS} found on PATH")
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        self.proc = subprocess.Popen(
            [self.exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             "--hide-scrollbars", "--allow-file-access-from-files", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url, t0 = None, time.time()
        while url is None and time.time() - t0 < timeout:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None: break
            if m := re.search(r"DevTools listening on (ws://\S+)", line): url = m.group(1)
        if url is None:
            self.close(); raise RuntimeError(f"{self.exe} did not start its DevTools endpoint")
        self.ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
        self._id, self.events, self.session = 0, [], None
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable"); self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def send(self, method, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."): msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        while True:
            r = json.loads(self.ws.recv())
            if r.get("id") == self._id:
                if "error" in r: raise RuntimeError(f"{method}: {r['error']}")
                return r.get("result", {})
            self.events.append(r)

    def _wait_event(self, name):
        t0 = time.time()
        while time.time() - t0 < self.timeout:
            for i, e in enumerate(self.events):
                if e.get("method") == name: return self.events.pop(i)
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(f"no {name} within {self.timeout}s")

    def load(self, url):
        "Navigate and wait for the load event; returns the JavaScript exceptions the page threw."
        self.events.clear()
        r = self.send("Page.navigate", url=url)
        if r.get("errorText"): raise RuntimeError(f"{url}: {r['errorText']}")
        self._wait_event("Page.loadEventFired")
        return [_exception(e["params"]["exceptionDetails"]) for e in self.events if e.get("method") == "Runtime.exceptionThrown"]

    def inspect(self):
        r = self.send("Runtime.evaluate", expression=INSPECT, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r: raise RuntimeError(f"inspect failed: {r['exceptionDetails']}")
        return json.loads(r["result"]["value"])

    def screenshot(self, path, full_page=False):
        params = {"format": "png"}
        if full_page: params["captureBeyondViewport"] = True
        Path(path).write_bytes(base64.b64decode(self.send("Page.captureScreenshot", **params)["data"]))
        return Path(path)

    def close(self):
        try: self.ws.close()
        except Exception: pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try: self.proc.wait(10)
            except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self): return self
    def __exit__(self, *a): self.close()


def _exception(d: dict) -> str:
    return (d.get("exception") or {}).get("description") or d.get("text", "exception")


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__(); self.ids = set()
    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("id", "name") and v: self.ids.add(v)


def _anchors(path: Path, cache={}):
    if path not in cache:
        p = _Ids(); p.feed(path.read_text(errors="replace")); cache[path] = p.ids
    return cache[path]


def missing_target(url: str):
    "Why a file:// link is broken (missing file, missing anchor), or None when it resolves."
    u = urlparse(url)
    if u.scheme != "file": return None
    path = Path(unquote(u.path))
    if not path.exists(): return f"missing file {path}"
    if u.fragment and path.suffix == ".html" and unquote(u.fragment) not in _anchors(path):
        return f"missing anchor #{u.fragment} in {path.name}"
    return None


def check_page(browser: Chromium, page: Path) -> dict:
    "Load one page and list what is wrong with it (empty lists when nothing is)."
    errors = browser.load(page.resolve().as_uri())
    info = browser.inspect()
    return {"page": page, "title": info["title"], "js_errors": errors,
            "wide_code": info["wide_code"], "article_links": info["article_links"],
            "images": info["imgs"], "loaded_images": [i for i in info["imgs"] if i["ok"]],
            "broken_images": [i["src"] for i in info["imgs"] if not i["ok"]],
            "broken_links": sorted({f"{l} ({why})" for l in info["links"] if (why := missing_target(l))}),
            "network": sorted({r for r in info["resources"] if urlparse(r).scheme in ("http", "https")})}


def site_pages(site: Path):
    "Every HTML page of a Sphinx build (not its copied sources and static assets)."
    return sorted(p for p in site.rglob("*.html") if not {"_static", "_sources", "_images", "_downloads"} & set(p.relative_to(site).parts))


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("site", nargs="?", type=Path, default=Path(__file__).resolve().parents[1] / "_docs" / "html")
    ap.add_argument("--shots", nargs="+", metavar=("DIR", "PAGE"))
    a = ap.parse_args(argv)
    bad = 0
    with Chromium() as b:
        for p in site_pages(a.site):
            r = check_page(b, p)
            probs = {k: r[k] for k in ("js_errors", "broken_images", "broken_links", "network") if r[k]}
            if probs: bad += 1; print(p.relative_to(a.site), json.dumps(probs, indent=1))
        if a.shots:
            out = Path(a.shots[0]); out.mkdir(parents=True, exist_ok=True)
            for pg in a.shots[1:]:
                b.load((a.site / pg).resolve().as_uri())
                b.inspect()
                print("screenshot", b.screenshot(out / (pg.replace("/", "_").removesuffix(".html") + ".png")))
    print(f"{len(site_pages(a.site))} pages checked, {bad} with problems")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
