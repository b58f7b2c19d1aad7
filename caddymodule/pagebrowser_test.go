package caddymodule

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// pageBrowser is a headless Chromium that the page tests drive the way a
// person does, checking the gateway's pages and saving a screenshot of
// each into the test's temp dir (or PORTCULLIS_SCREENSHOTS).
type pageBrowser struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

// newPageBrowser starts Chromium (execPath) for the test, with a deadline
// for everything it does.
func newPageBrowser(t *testing.T, execPath string, deadline time.Duration) *pageBrowser {
	t.Helper()
	shots := t.TempDir()
	if dir := os.Getenv("PORTCULLIS_SCREENSHOTS"); dir != "" {
		shots = dir
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(execPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(900, 700),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, deadline)
	t.Cleanup(cancelTimeout)
	return &pageBrowser{t: t, ctx: ctx, shots: shots}
}

// on is the browser reporting to t (a subtest).
func (b *pageBrowser) on(t *testing.T) *pageBrowser {
	c := *b
	c.t = t
	return &c
}

// nav opens u as if typed into the address bar.
func (b *pageBrowser) nav(u string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Navigate(u)); err != nil {
		b.t.Fatalf("opening %s: %v", u, err)
	}
}

// click clicks the element matched by the CSS selector.
func (b *pageBrowser) click(selector string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
		b.t.Fatalf("clicking %s: %v", selector, err)
	}
}

// location is the URL the browser is on.
func (b *pageBrowser) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("reading the location: %v", err)
	}
	return loc
}

// signIn fills in and submits devidp's login form.
func (b *pageBrowser) signIn(user string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx,
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), "pw"),
		chromedp.Click(chromedp.ID("submit")),
	); err != nil {
		b.t.Fatalf("signing in as %s: %v", user, err)
	}
}

// settle waits until the browser has finished navigating and is on a page
// of site: after a click the old page (the IdP's form) may still answer
// queries, or vanish under them ("Cannot find context with specified id"),
// while the redirects run.
func (b *pageBrowser) settle(name, site string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		state, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.readyState`))
		var loc string
		if err == nil {
			loc, err = chromedp.Run(b.ctx, chromedp.Location())
		}
		if err == nil && state == "complete" && strings.HasPrefix(loc, site+"/") {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: the browser did not settle on %s: state %q at %q (%v)", name, site, state, loc, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// page checks the gateway page the browser is on at site: its h1, words
// and links (by id, and the path each leads to), and saves a screenshot
// named name.
func (b *pageBrowser) page(site, name, h1 string, words []string, links map[string]string) {
	t := b.t
	t.Helper()
	b.settle(name, site)
	if err := chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	// A form posted on the same site leaves the old page complete and
	// in place until the answer arrives: wait for the page's title.
	var title string
	for deadline := time.Now().Add(10 * time.Second); ; {
		var err error
		title, err = chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("h1")))
		if err == nil && title == h1 {
			break
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	text, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("%s: screenshot: %v", name, err)
	}
	file := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(file, png, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: screenshot %s", name, file)
	if title != h1 {
		t.Errorf("%s: h1 %q, want %q", name, title, h1)
	}
	for _, w := range words {
		if !strings.Contains(text, w) {
			t.Errorf("%s: page lacks %q:\n%s", name, w, text)
		}
	}
	for id, want := range links {
		res, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.ID(id), "href", chromedp.AtLeast(0)))
		href := res.Value
		if err != nil || href == "" {
			t.Errorf("%s: no link #%s (%v)", name, id, err)
			continue
		}
		if !strings.HasPrefix(href, want) {
			t.Errorf("%s: link #%s to %q, want %q", name, id, href, want)
		}
	}
}

// text is the text of the element matched by the CSS selector.
func (b *pageBrowser) text(selector string) (string, error) {
	return chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(selector)))
}
