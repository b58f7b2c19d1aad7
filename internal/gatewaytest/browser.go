package gatewaytest

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// Browser is a test's stand-in for a person's browser: a cookie jar, the
// redirects followed, Accept: text/html on every request (so the gateway
// treats it as a browser navigating), and forms submitted as a browser (or a
// page's auto-submit script) would. The headless Chromium test checks that
// a real browser behaves the same.
type Browser struct {
	t      testing.TB
	Client *http.Client
	Jar    *cookiejar.Jar
}

// Page is a response with its body read.
type Page struct {
	Status int
	URL    *url.URL // after redirects
	Header http.Header
	Body   string
}

// NewBrowser returns a browser with an empty cookie jar.
func NewBrowser(t testing.TB) *Browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Browser{t: t, Jar: jar, Client: &http.Client{Jar: jar, Timeout: 15 * time.Second}}
}

// Do sends req (adding Accept: text/html unless it has an Accept header)
// and reads the final response.
func (b *Browser) Do(req *http.Request) Page {
	b.t.Helper()
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
	}
	resp, err := b.Client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		b.t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return Page{Status: resp.StatusCode, URL: resp.Request.URL, Header: resp.Header, Body: string(body)}
}

// Get navigates to u.
func (b *Browser) Get(u string) Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.Do(req)
}

// PostForm posts form to u, as a form submission does.
func (b *Browser) PostForm(u string, form url.Values) Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

// SubmitForm submits the first form of p with the values of its inputs,
// replaced by fill where fill names them.
func (b *Browser) SubmitForm(p Page, fill map[string]string) Page {
	b.t.Helper()
	f, ok := FirstForm(p.Body)
	if !ok {
		b.t.Fatalf("no form on %s (%d):\n%s", p.URL, p.Status, p.Body)
	}
	for k, v := range fill {
		f.Values.Set(k, v)
	}
	target, err := p.URL.Parse(f.Action)
	if err != nil {
		b.t.Fatalf("form action %q: %v", f.Action, err)
	}
	if strings.EqualFold(f.Method, http.MethodGet) {
		target.RawQuery = f.Values.Encode()
		return b.Get(target.String())
	}
	return b.PostForm(target.String(), f.Values)
}

// Cookie returns the value of the jar's cookie name for u, or "".
func (b *Browser) Cookie(u, name string) string {
	pu, err := url.Parse(u)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range b.Jar.Cookies(pu) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// StopRedirects makes the browser return redirects instead of following
// them (until FollowRedirects).
func (b *Browser) StopRedirects() {
	b.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
}

// FollowRedirects undoes StopRedirects.
func (b *Browser) FollowRedirects() { b.Client.CheckRedirect = nil }

// Form is an HTML form: where it goes and what its inputs hold.
type Form struct {
	Action string
	Method string
	Values url.Values
}

// FirstForm parses the first <form> of an HTML page: its action, method and
// the names and values of its inputs (submit buttons left out).
func FirstForm(body string) (Form, bool) {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return Form{}, false
	}
	form := findElement(doc, "form")
	if form == nil {
		return Form{}, false
	}
	f := Form{Action: attr(form, "action"), Method: attr(form, "method"), Values: url.Values{}}
	var inputs func(*html.Node)
	inputs = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "input" || n.Data == "textarea") {
			name := attr(n, "name")
			if name != "" && attr(n, "type") != "submit" {
				value := attr(n, "value")
				if n.Data == "textarea" && n.FirstChild != nil {
					value = n.FirstChild.Data
				}
				f.Values.Set(name, value)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			inputs(c)
		}
	}
	inputs(form)
	return f, true
}

func findElement(n *html.Node, tag string) *html.Node {
	if n.Type == html.ElementNode && n.Data == tag {
		return n
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if found := findElement(c, tag); found != nil {
			return found
		}
	}
	return nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
